"""The pystray icon: its picture shows the state (idle / listening / recording / processing); its menu calls AppActions."""

from __future__ import annotations

import logging
import threading

from PIL import Image, ImageDraw

from .actions import AppActions
from .xorg_tray import XorgIconBridge, is_xorg_icon

log = logging.getLogger(__name__)
STATE_COLOURS = {"idle": (106, 169, 255), "listening": (60, 190, 110), "recording": (230, 60, 60),
                 "processing": (240, 180, 60)}


def icon_image(state: str, size: int = 64) -> Image.Image:
    """A round badge: blue idle, green listening, red recording, amber processing."""
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    colour = STATE_COLOURS.get(state, STATE_COLOURS["idle"])
    d.ellipse((4, 4, size - 4, size - 4), fill=colour + (255,))
    d.ellipse((size * 0.36, size * 0.22, size * 0.64, size * 0.62), fill=(255, 255, 255, 230))  # a microphone head
    d.rectangle((size * 0.47, size * 0.6, size * 0.53, size * 0.78), fill=(255, 255, 255, 230))
    return img


class Tray:
    """Owns the pystray icon and refreshes its picture/menu from AppActions.state()."""

    def __init__(self, actions: AppActions):
        import pystray

        self.actions = actions
        self.state = "idle"
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._stale = False
        self._xorg: XorgIconBridge | None = None
        self._loop_thread: threading.Thread | None = None  # ours, for the xorg backend
        self._poll_thread: threading.Thread | None = None
        self.shown = threading.Event()  # set once the icon is visible with the current state
        # where a backend has no menu of its own (pystray's xorg), a right click calls on_menu(x, y): the desktop
        # app shows menu_entries() there as a Qt popup
        self.on_menu = None
        item = pystray.MenuItem
        self.icon = pystray.Icon(
            "voice-weaver", icon_image("idle"), "Voice Weaver",
            menu=pystray.Menu(
                item(lambda _: "Stop capture" if self.state in ("listening", "recording") else "Listen",
                     lambda icon, _: self._bg(actions.toggle_listen)),
                item(lambda _: "Recording…" if self.state == "recording" else "Record",
                     lambda icon, _: self._bg(actions.toggle_capture)),
                item("Keep last line", lambda icon, _: self._bg(actions.keep_last_line)),
                item("Save last 5 minutes", lambda icon, _: self._bg(actions.save_last, 5.0)),
                item("Open panel", lambda icon, _: actions.open_panel(), default=True),
                item("Quick chat…", lambda icon, _: actions.open_quick_chat()),
                item("Recent items", pystray.Menu(lambda: self._recent_menu())),
                pystray.Menu.SEPARATOR,
                item("Quit", lambda icon, _: self.quit()),
            ))

    def _right_click(self, x: int, y: int) -> None:
        if self.on_menu is not None:
            self.on_menu(x, y)
        else:  # nothing can show a menu: do what a left click does
            self.icon()

    def menu_entries(self, menu=None) -> list[dict]:
        """The menu as plain data for a GUI toolkit: [{'text', 'enabled', 'default', 'run' | 'submenu'} or
        {'separator': True}], evaluated now (dynamic texts and the recent items included)."""
        import pystray

        out: list[dict] = []
        for item in (menu or self.icon.menu).items:
            if item is pystray.Menu.SEPARATOR:
                out.append({"separator": True})
                continue
            if not item.visible:
                continue
            entry = {"text": item.text, "enabled": item.enabled, "default": item.default}
            if item.submenu:
                entry["submenu"] = self.menu_entries(item.submenu)
            else:
                entry["run"] = lambda item=item: item(self.icon)
            out.append(entry)
        return out

    def _recent_menu(self):
        import pystray

        items = self.actions.recent_items()
        if not items:
            return [pystray.MenuItem("(library is empty)", None, enabled=False)]
        return [pystray.MenuItem(f"{m['id']}: {m['title']}", lambda icon, _: self.actions.open_panel()) for m in items]

    def _bg(self, fn, *args):
        """Run a menu action off the tray's loop thread; whatever happens, refresh the picture after it."""

        def run():
            try:
                fn(*args)
            except Exception as e:  # AppActions reports WeaverErrors itself; keep anything else visible too
                self.actions.last_error = f"{type(e).__name__}: {e}"
                self.actions.notify(self.actions.last_error)
            finally:
                try:
                    self.refresh()
                except Exception:
                    log.warning("tray refresh failed", exc_info=True)

        t = threading.Thread(target=run, daemon=True, name="tray-action")
        t.start()
        return t

    def refresh(self) -> str:
        """Re-read the state and update the picture; returns the state."""
        with self._lock:
            return self._refresh()

    def _refresh(self) -> str:
        state = self.actions.state()
        if state != self.state or self._stale:
            self._stale = True  # stays set if an update below fails, so the next poll tries again
            self.icon.icon = icon_image(state)
            # plain ASCII: pystray's xorg backend stores the title as a latin-1 WM_NAME (an em dash raised there)
            self.icon.title = "Voice Weaver" if state == "idle" else f"Voice Weaver: {state}"
            try:
                self.icon.update_menu()
            except Exception:
                pass
            self.state = state
            self._stale = not self.icon.visible  # pystray drops picture/title updates while hidden: redo at show
        return state

    def _poll(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.refresh()
                if self._xorg is not None:
                    with self._lock:
                        self._xorg.check_docked()
            except Exception:
                log.warning("tray refresh failed", exc_info=True)
        if self._xorg is not None:
            self._xorg.close()

    def run_detached(self) -> None:
        """Show the icon without blocking (the GUI loop of the panel window owns the main thread)."""
        if is_xorg_icon(self.icon):
            self._xorg = XorgIconBridge(self.icon, on_menu=self._right_click)
            # pystray's xorg run_detached() starts a second, never-ending setup thread (non-daemon: the process
            # cannot exit) and its setup may set `visible` before the loop thread is registered, which fails
            # silently and leaves the icon undocked. Run the loop in our own daemon thread and retry the show.
            self._loop_thread = threading.Thread(target=self.icon.run, kwargs={"setup": self._show_when_ready},
                                                 daemon=True, name="tray-loop")
            self._loop_thread.start()
        else:
            self.icon.run_detached(self._show_when_ready)
        self._poll_thread = threading.Thread(target=self._poll, daemon=True, name="tray-poll")
        self._poll_thread.start()

    def _show_when_ready(self, icon) -> None:
        for _ in range(200):
            try:
                icon.visible = True
            except AttributeError:  # the loop thread is not registered yet
                if self._stop.wait(0.025):
                    return
                continue
            try:
                self.refresh()  # shows a state change that came while the icon was hidden
            except Exception:
                log.warning("tray refresh failed", exc_info=True)
            self.shown.set()
            return

    def stop(self) -> None:
        """Remove the icon and end its threads (the app goes on)."""
        self._stop.set()
        self.icon.stop()
        for thread in (self._loop_thread, self._poll_thread):
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout=5)  # they hold the icon (and its X connection): let them end first

    def quit(self) -> None:
        self._stop.set()
        self.actions.quit_app()
        self.icon.stop()
