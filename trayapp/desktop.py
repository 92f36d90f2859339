"""Tray + native panel windows (pywebview, Qt backend on Linux). The panel is the same page the server serves."""

from __future__ import annotations

import os
import sys
import threading

from .actions import AppActions
from .panel import start_panel


class PanelBridge:
    """JS → Python calls available to the page inside the native window (window.pywebview.api)."""

    def __init__(self, actions: AppActions):
        self._actions = actions

    def ping(self) -> str:
        return "pong"

    def state(self) -> str:
        return self._actions.state()

    def pick_file(self) -> str | None:
        import webview

        win = webview.active_window()
        result = win.create_file_dialog(webview.OPEN_DIALOG) if win else None
        return result[0] if result else None


def hide_on_close(window, quitting=lambda: False) -> None:
    """Make the window's close button hide it (the app lives on in the tray); once quitting() is true it closes."""

    def on_closing():
        if quitting():
            return True
        window.hide()
        return False

    window.events.closing += on_closing


class QtTrayMenu:
    """Shows the tray's menu as a Qt popup where pystray's backend has none (its xorg backend on Linux).

    Create it on the GUI thread (before ``webview.start``); ``popup(x, y)`` may be called from any thread. The
    chosen entry runs on a worker thread, as pystray runs menu actions off the GUI loop.
    """

    def __init__(self, entries):
        from qtpy.QtCore import QObject, Qt, Signal, Slot

        self.entries = entries  # () -> Tray.menu_entries()
        self.menu = None  # the QMenu on screen (kept referenced while it shows)
        self.shown: list[list[str]] = []  # the texts of each menu shown, for tests and logs
        owner = self

        class Requests(QObject):
            popup = Signal(int, int)

            @Slot(int, int)
            def show(self, x, y):
                owner._show(x, y)

        self._requests = Requests()
        self._requests.popup.connect(self._requests.show, Qt.ConnectionType.QueuedConnection)

    def popup(self, x: int, y: int) -> None:
        """Ask the GUI thread to show the menu at screen position (x, y)."""
        self._requests.popup.emit(int(x), int(y))

    def _build(self, menu, entries) -> list[str]:
        from qtpy.QtWidgets import QMenu

        texts = []
        for e in entries:
            if e.get("separator"):
                menu.addSeparator()
                continue
            texts.append(e["text"])
            if "submenu" in e:
                sub = QMenu(e["text"], menu)
                self._build(sub, e["submenu"])
                sub.setEnabled(e["enabled"])
                menu.addMenu(sub)
                continue
            action = menu.addAction(e["text"])
            action.setEnabled(e["enabled"])
            if e.get("default"):
                font = action.font()
                font.setBold(True)
                action.setFont(font)
            action.triggered.connect(lambda _=False, run=e["run"]: threading.Thread(target=run, daemon=True).start())
        return texts

    def _show(self, x: int, y: int) -> None:
        from qtpy.QtCore import QPoint
        from qtpy.QtWidgets import QMenu

        menu = QMenu()
        menu.setObjectName("voice-weaver-tray-menu")
        texts = self._build(menu, self.entries())
        self.menu = menu
        menu.popup(QPoint(x, y))
        self.shown.append(texts)


def run_desktop(debug: bool = False) -> int:
    """Start the server, the tray icon and the panel window; closing the window hides it, Quit ends the app."""
    import webview

    if sys.platform.startswith("linux"):
        os.environ.setdefault("PYSTRAY_BACKEND", "xorg")
        if os.geteuid() == 0:
            os.environ.setdefault("QTWEBENGINE_CHROMIUM_FLAGS", "--no-sandbox")
    running = start_panel()
    server = running.server
    actions = AppActions(home=running.home)
    bridge = PanelBridge(actions)
    panel = webview.create_window("Voice Weaver", server.url, js_api=bridge, width=1200, height=800, hidden=False)
    quick = {"win": None}
    quitting = {"now": False}

    def hide_instead_of_close(window):
        hide_on_close(window, lambda: quitting["now"])

    hide_instead_of_close(panel)

    def open_panel():
        panel.show()

    def open_quick_chat():
        if quick["win"] is None:
            quick["win"] = webview.create_window("Quick chat", server.url + "#chat?quick=1&handsfree=1", js_api=bridge, width=420, height=560)
            hide_instead_of_close(quick["win"])
        else:
            quick["win"].show()

    def quit_app():
        quitting["now"] = True
        for w in list(webview.windows):
            w.destroy()

    actions.open_panel, actions.open_quick_chat, actions.quit_app = open_panel, open_quick_chat, quit_app
    tray = None
    try:
        from .tray import Tray

        tray = Tray(actions)
        if sys.platform.startswith("linux"):
            menu = QtTrayMenu(tray.menu_entries)
            tray.on_menu = menu.popup
        tray.run_detached()
    except Exception as e:  # no tray host (e.g. a bare X server): the window still works
        print(f"tray icon unavailable: {e}", file=sys.stderr, flush=True)
    try:
        webview.start(gui="qt" if sys.platform.startswith("linux") else None, debug=debug)
    finally:
        if tray is not None:
            tray.stop()
        running.stop()
    return 0
