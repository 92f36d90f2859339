"""A bridge that makes pystray's xorg backend (what Linux gets without GTK's AppIndicator) reliable.

pystray runs icon updates (show, title, picture, stop) on its X loop thread: the calling thread sends a
ClientMessage and a flush() over the *same* python-xlib connection the loop thread is reading, then waits.
python-xlib is not safe for that: a flush() may return early while another thread is marked as sending, and a
thread waiting for a reply can wait forever when the sender leaves through its early-return path. Under CPU load
this lost title updates and dock requests, and once deadlocked the loop (CI and local stress runs saw both).

``XorgIconBridge`` gives the callers a connection of their own: the ClientMessage travels over it (X delivers it
to the window's creator, the loop's connection), so pystray's connection is used by its loop thread only. The
same private connection answers "is the icon docked?"; pystray asks the tray host to dock once, and a host that
has just taken the tray selection may drop that request (one that starts after the app never hears of it), so
``check_docked`` asks again while the icon window is still a top-level window.

pystray looks up the tray host inside an X server grab. While the server is grabbed, a Qt call on the GUI thread
that waits for an X reply without releasing Python's GIL (PyQt holds it through QWebEngineProfile's constructor)
blocks the grabbing thread too: the app froze at start (a stress run caught it). The bridge looks the owner up
without the grab; the tray spec needs no atomicity there (a host that vanishes is handled by DestroyNotify).

pystray's xorg icon has no menu (X has none) and never selects button events on its window, so it cannot even be
clicked. The bridge selects them: a left click runs the default menu item, a right click calls ``on_menu(x, y)``
(the desktop app shows the same menu as a Qt popup there).
"""

from __future__ import annotations

import logging
import queue
import threading
import time

log = logging.getLogger(__name__)

LOOP_CALLS = ("_show", "_hide", "_update_icon", "_update_title", "_stop")


def is_xorg_icon(icon) -> bool:
    """True for an icon of pystray's xorg backend."""
    return type(icon).__module__.endswith("._xorg")


class XorgIconBridge:
    """Routes a pystray xorg icon's loop calls over a private X connection and re-docks an undocked icon.

    Install it before the icon's loop starts (``Icon.run``); call ``check_docked`` now and then; ``close`` at the end.
    """

    def __init__(self, icon, *, redock_after: float = 3.0, reply_timeout: float = 30.0, on_menu=None):
        from Xlib import X

        self.icon = icon
        self.on_menu = on_menu  # called as on_menu(x_root, y_root) on a right click, from the icon's loop thread
        self.redock_after = redock_after
        self.reply_timeout = reply_timeout
        self.dock_requests = 0  # how often the tray host had to be asked again
        self._lock = threading.Lock()
        self._display = None
        self._atoms: dict[str, int] = {}
        self._undocked_since = time.monotonic()
        self._on_loop = {name: getattr(icon, name) for name in LOOP_CALLS}  # pystray's own: run directly on the loop
        for name in LOOP_CALLS:
            setattr(icon, name, lambda name=name: self.call(name))
        icon._get_systray_manager = self._tray_host_without_grab
        # the loop has not started: pystray's connection is still ours to use from this thread
        icon._window.change_attributes(event_mask=X.ExposureMask | X.StructureNotifyMask | X.ButtonPressMask)
        icon._display.flush()
        icon._message_handlers[X.ButtonPress] = self._on_button_press

    def _tray_host_without_grab(self):
        """On the loop thread: the window owning the tray selection, or None (pystray's version grabs the server)."""
        from Xlib import X

        owner = self.icon._display.get_selection_owner(self.icon._net_system_tray_sx)
        if owner == X.NONE:
            return None
        return self.icon._display.create_resource_object("window", owner.id)

    def _on_button_press(self, event) -> None:
        """On the loop thread: left click → the default menu item; right click → the menu (when one is shown)."""
        if event.detail == 3 and self.on_menu is not None:
            threading.Thread(target=self.on_menu, args=(event.root_x, event.root_y), daemon=True,
                             name="tray-menu").start()
        elif event.detail in (1, 3):
            threading.Thread(target=self.icon, daemon=True, name="tray-default").start()

    def _connection(self):
        from Xlib.display import Display

        if self._display is None:
            self._display = Display()  # $DISPLAY, as pystray's own connection
            self._atoms = {name: self._display.intern_atom(f"_PYSTRAY_{name.upper()}") for name in LOOP_CALLS}
        return self._display

    def call(self, name: str) -> None:
        """Run pystray's implementation `name` on its loop thread and wait for it (directly when already there)."""
        loop = getattr(self.icon, "_thread", None)
        if loop is None:
            raise AttributeError("the icon's loop thread has not started yet")
        if threading.current_thread() is loop:
            return self._on_loop[name]()
        if not loop.is_alive():
            return None  # the loop has ended (icon stopped or X gone): nothing left to update
        from Xlib import X
        from Xlib.protocol import event

        with self._lock:
            display = self._connection()
            window = display.create_resource_object("window", self.icon._window.id)
            window.send_event(event.ClientMessage(window=window, type=X.ClientMessage, client_type=self._atoms[name],
                                                  data=(32, (X.CurrentTime, 0, 0, 0, 0))),
                              event_mask=X.NoEventMask)
            display.flush()
            try:
                result = self.icon._queue.get(timeout=self.reply_timeout)
            except queue.Empty:
                raise TimeoutError(f"the tray icon's X loop did not answer {name} in {self.reply_timeout:.0f} s") from None
        if result is not True:
            raise result[1].with_traceback(result[2])
        return None

    def docked(self) -> bool:
        """Whether a tray host has reparented the icon window."""
        with self._lock:
            window = self._connection().create_resource_object("window", self.icon._window.id)
            tree = window.query_tree()
        return tree.parent.id != tree.root.id

    def check_docked(self) -> bool:
        """Returns whether the visible icon is docked; asks the tray host again when it has not been for a while."""
        if not self.icon.visible:
            self._undocked_since = time.monotonic()
            return False
        try:
            if self.docked():
                self._undocked_since = time.monotonic()
                return True
        except Exception:  # the X server went away, or the window is gone (icon stopped)
            log.debug("tray dock check failed", exc_info=True)
            return False
        if time.monotonic() - self._undocked_since >= self.redock_after:
            self._undocked_since = time.monotonic()
            self.dock_requests += 1
            log.info("tray icon not docked yet: asking the tray host again")
            self.call("_show")  # pystray's show sends the dock request to the current tray selection owner
        return False

    def close(self) -> None:
        """Close the private connection (the icon's own connection is pystray's to close)."""
        with self._lock:
            if self._display is not None:
                try:
                    self._display.close()
                except Exception:
                    pass
                self._display = None
