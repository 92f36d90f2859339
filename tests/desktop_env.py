"""Helpers for the desktop tests: a private X display with a tray host, binary checks, and the pywebview child.

Xvfb and PulseAudio come from tests/pulse_env.py (``xvfb_display``, ``private_pulseaudio``); this adds the
tray host (trayer), an X window lookup, and ``python -m tests.desktop_env webview URL HOME``: a child process
that opens the panel in a real pywebview (Qt) window and is driven over stdin/stdout with JSON lines
(the GUI loop must own the child's main thread, so it cannot run inside pytest).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from tests.pulse_env import stop_process

REPO = Path(__file__).resolve().parents[1]


def skip_or_fail(msg: str) -> None:
    """Skip the test with `msg`, or fail it when CI is set: CI has every tool and data set, so absence is a bug."""
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


def need_binaries(*names: str) -> None:
    """Skip when a binary is missing, unless CI is set (then a missing binary is a failure)."""
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        skip_or_fail(f"missing binaries: {', '.join(missing)} (Debian: xvfb trayer chromium pulseaudio pulseaudio-utils)")


@contextmanager
def panel_page(home) -> Iterator[tuple[object, list[str]]]:
    """(page, page errors) of the panel served from library ``home`` in headless Chromium (Playwright), ready."""
    chromium = os.environ.get("WEAVER_CHROMIUM", "/usr/bin/chromium")
    if not Path(chromium).exists():
        skip_or_fail(f"Chromium not found at {chromium}")
    need_modules("playwright")
    from playwright.sync_api import sync_playwright

    from web_ui.server import PanelServer

    server = PanelServer(home=home).start()
    try:
        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path=chromium, headless=True,
                                   args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"])
            try:
                page = b.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(server.url)
                page.wait_for_function("window.weaverReady === true", timeout=20000)
                yield page, errors
            finally:
                b.close()
    finally:
        server.stop()


def need_modules(*names: str) -> None:
    """Skip when a Python module is missing, unless CI is set."""
    import importlib.util

    missing = [n for n in names if importlib.util.find_spec(n) is None]
    if missing:
        skip_or_fail(f"missing Python packages: {', '.join(missing)} (pip install -e '.[desktop,test]')")


def qt_env(display: str, **extra: str) -> dict:
    """Environment for a Qt WebEngine child on an X display (no sandbox as root, software GL)."""
    env = dict(os.environ, DISPLAY=display, QT_QPA_PLATFORM="xcb", PYTHONUNBUFFERED="1", **extra)
    flags = env.get("QTWEBENGINE_CHROMIUM_FLAGS", "")
    if os.geteuid() == 0 and "--no-sandbox" not in flags:
        flags = (flags + " --no-sandbox").strip()
    env["QTWEBENGINE_CHROMIUM_FLAGS"] = (flags + " --disable-gpu").strip()
    env.setdefault("QT_QUICK_BACKEND", "software")
    env.pop("WAYLAND_DISPLAY", None)
    return env


def tray_owner(display: str) -> int:
    """X window id owning the system tray selection of screen 0 (0 = no tray host)."""
    from Xlib import X
    from Xlib.display import Display

    d = Display(display)
    try:
        owner = d.get_selection_owner(d.intern_atom("_NET_SYSTEM_TRAY_S0"))
        return 0 if owner in (X.NONE, 0) else owner.id
    finally:
        d.close()


@contextmanager
def trayer(display: str, timeout: float = 15.0) -> Iterator[subprocess.Popen]:
    """Run trayer as the tray host on `display` until the context ends (stopped by pid)."""
    env = dict(os.environ, DISPLAY=display)
    proc = subprocess.Popen(["trayer", "--edge", "top", "--align", "right", "--widthtype", "pixel", "--width", "200",
                             "--height", "32", "--SetDockType", "true"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while not tray_owner(display):
            if proc.poll() is not None:
                raise RuntimeError(f"trayer exited: {proc.stderr.read().decode(errors='replace')[-400:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("trayer did not take the tray selection in time")
            time.sleep(0.05)
        yield proc
    finally:
        stop_process(proc)


def find_windows(display: str, name: str, *, prefix: bool = False) -> list[dict]:
    """X windows whose WM_NAME is `name` (or starts with it): [{'id', 'name', 'mapped', 'top_level'}].

    mapped: viewable on screen; top_level: a child of the root window (False once a tray host has
    reparented it, i.e. the icon is docked).
    """
    from Xlib import X
    from Xlib.display import Display

    d = Display(display)
    out = []
    root = d.screen().root
    try:
        def walk(w, parent):
            try:
                wm_name = w.get_wm_name()
                if isinstance(wm_name, bytes):
                    wm_name = wm_name.decode(errors="replace")
                if wm_name and (wm_name.startswith(name) if prefix else wm_name == name):
                    out.append({"id": w.id, "name": wm_name, "mapped": w.get_attributes().map_state == X.IsViewable,
                                "top_level": parent is not None and parent.id == root.id})
                for child in w.query_tree().children:
                    walk(child, w)
            except Exception:  # a window vanished while walking
                pass

        walk(root, None)
    finally:
        d.close()
    return out


def window_box(display: str, wid: int) -> tuple[int, int, int, int]:
    """(x, y, width, height) of window `wid` in root (screen) coordinates."""
    from Xlib.display import Display

    d = Display(display)
    try:
        win = d.create_resource_object("window", wid)
        geo = win.get_geometry()
        pos = d.screen().root.translate_coords(win, 0, 0)
        return pos.x, pos.y, geo.width, geo.height
    finally:
        d.close()


def click(display: str, x: int, y: int, button: int = 1) -> None:
    """A real pointer click at screen position (x, y) through the XTEST extension (what a user's mouse does)."""
    from Xlib import X
    from Xlib.display import Display
    from Xlib.ext import xtest

    d = Display(display)
    try:
        xtest.fake_input(d, X.MotionNotify, x=int(x), y=int(y))
        d.sync()
        xtest.fake_input(d, X.ButtonPress, button)
        xtest.fake_input(d, X.ButtonRelease, button)
        d.sync()
    finally:
        d.close()


def wait_until(predicate, timeout: float, what, interval: float = 0.05):
    """Poll predicate() until it returns a truthy value (returned) or fail with `what` (a str, or a callable
    giving one at failure time, for a message showing the state it ended in)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")
        time.sleep(interval)


class LineChild:
    """A child process that speaks JSON lines on stdout; read with a deadline."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.lines: list[dict] = []
        self.stderr_tail: list[str] = []
        self._cv = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read(self):
        for raw in self.proc.stdout:
            raw = raw.strip()
            if not raw.startswith("{"):
                continue
            with self._cv:
                self.lines.append(json.loads(raw))
                self._cv.notify_all()
        with self._cv:
            self._cv.notify_all()

    def _read_err(self):
        for raw in self.proc.stderr:
            self.stderr_tail = (self.stderr_tail + [raw.rstrip()])[-40:]

    def wait_for(self, event: str, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                for msg in self.lines:
                    if msg.get("event") == event:
                        self.lines.remove(msg)
                        return msg
                    if msg.get("event") == "error":
                        raise AssertionError(f"child error: {msg}\n" + "\n".join(self.stderr_tail))
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self.lines):
                    raise AssertionError(f"no '{event}' from the child (rc={self.proc.poll()}):\n" + "\n".join(self.stderr_tail))
                self._cv.wait(min(left, 0.5))

    def send(self, command: str) -> None:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        return self.proc.returncode


def start_webview_child(url: str, home: str, display: str, *, tray: bool = False) -> LineChild:
    """Start the pywebview (Qt) child on `display` showing `url` (with the app's tray icon and menu if `tray`)."""
    extra = {"WEAVER_TEST_TRAY": "1", "PYSTRAY_BACKEND": "xorg"} if tray else {}
    proc = subprocess.Popen([sys.executable, "-m", "tests.desktop_env", "webview", url, home], cwd=REPO,
                            env=qt_env(display, **extra), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, bufsize=1)
    return LineChild(proc)


# ------------------------------------------------------------------------------------------- the child
def _emit(**msg) -> None:
    print(json.dumps(msg), flush=True)


def webview_child(url: str, home: str) -> int:
    """Open `url` in a Qt pywebview window with the app's PanelBridge and the app's hide-on-close handler.

    Emits 'loaded', 'ping' (the JS→Python round trip), 'page'; then obeys stdin commands:
    'close' (ask Qt to close the window, as the title bar's ✕ does) → 'closed' with the handler's outcome;
    'show' → 'shown'; 'quit' (the tray's Quit path: closing really closes) → the process ends.
    """
    import webview

    from trayapp.actions import AppActions
    from trayapp.desktop import PanelBridge, hide_on_close

    quitting = {"now": False}
    window = webview.create_window("Voice Weaver", url, js_api=PanelBridge(AppActions(home=Path(home))),
                                   width=900, height=600)
    closings: list[bool] = []
    window.events.closing += lambda: closings.append(True)
    hide_on_close(window, lambda: quitting["now"])
    tray = menu = None
    if os.environ.get("WEAVER_TEST_TRAY"):  # the app's tray icon, wired as run_desktop wires it
        from trayapp.desktop import QtTrayMenu
        from trayapp.tray import Tray

        actions = AppActions(home=Path(home))
        actions.open_panel = window.show
        tray = Tray(actions)
        menu = QtTrayMenu(tray.menu_entries)
        tray.on_menu = menu.popup
        tray.run_detached()

    def qt_view():
        from webview.platforms.qt import BrowserView

        return BrowserView.instances.get(window.uid)

    def on_gui(fn):
        """Run fn on the Qt GUI thread and wait for its result."""
        from qtpy.QtCore import QObject, Qt, Signal, Slot

        class Runner(QObject):
            go = Signal()

            def __init__(self):
                super().__init__()
                self.done = threading.Event()
                self.value = None
                self.go.connect(self.call, Qt.ConnectionType.QueuedConnection)

            @Slot()
            def call(self):
                try:
                    self.value = fn()
                finally:
                    self.done.set()

        runner = Runner()
        runner.moveToThread(qt_view().thread())
        runner.go.emit()
        if not runner.done.wait(20):
            raise TimeoutError("the GUI thread did not run the call")
        return runner.value

    def drive():
        try:
            if not window.events.loaded.wait(60):
                raise TimeoutError("window never loaded")
            _emit(event="loaded")
            deadline = time.monotonic() + 30
            while not window.evaluate_js("!!(window.pywebview && window.pywebview.api && window.pywebview.api.ping)"):
                if time.monotonic() > deadline:
                    raise TimeoutError("window.pywebview.api never appeared")
                time.sleep(0.1)
            window.evaluate_js("window.__ping = null; window.pywebview.api.ping().then(r => { window.__ping = r; })")
            deadline = time.monotonic() + 20
            result = None
            while result is None and time.monotonic() < deadline:
                result = window.evaluate_js("window.__ping")
                time.sleep(0.05)
            _emit(event="ping", result=result)
            window.evaluate_js("window.__state = null; window.pywebview.api.state().then(s => { window.__state = s; })")
            deadline = time.monotonic() + 30
            while not window.evaluate_js("window.weaverReady === true"):
                if time.monotonic() > deadline:
                    raise TimeoutError("the panel page never set window.weaverReady")
                time.sleep(0.1)
            deadline = time.monotonic() + 10
            while window.evaluate_js("window.__state") is None and time.monotonic() < deadline:
                time.sleep(0.05)
            _emit(event="page", brand=window.evaluate_js("document.querySelector('.brand').textContent"),
                  tabs=window.evaluate_js("document.querySelectorAll('#tabs button').length"),
                  api_state=window.evaluate_js("window.__state || null"))
            if tray is not None:
                if not tray.shown.wait(30):
                    raise TimeoutError("the tray icon was never shown")
                _emit(event="tray")
            for line in sys.stdin:
                cmd = line.strip()
                if cmd == "menu":  # the menu on screen: its entries and where "Open panel" is
                    def describe():
                        if menu.menu is None or not menu.menu.isVisible():
                            return None
                        for action in menu.menu.actions():
                            if action.text() == "Open panel":
                                box = menu.menu.actionGeometry(action)
                                centre = menu.menu.mapToGlobal(box.center())
                                return {"texts": menu.shown[-1], "open_panel": [centre.x(), centre.y()]}
                        return None

                    deadline = time.monotonic() + 20
                    found = on_gui(describe)
                    while found is None and time.monotonic() < deadline:
                        time.sleep(0.05)
                        found = on_gui(describe)
                    _emit(event="menu", **(found or {"texts": None}))
                elif cmd == "visible":
                    _emit(event="visible", visible=on_gui(qt_view().isVisible))
                elif cmd == "close":
                    before = len(closings)
                    view = qt_view()
                    on_gui(view.close)
                    _emit(event="closed", closing_events=len(closings) - before, visible=on_gui(view.isVisible),
                          still_open=qt_view() is not None)
                elif cmd == "show":
                    window.show()
                    _emit(event="shown", visible=on_gui(qt_view().isVisible))
                elif cmd == "quit":
                    quitting["now"] = True
                    if tray is not None:
                        tray.stop()
                    on_gui(qt_view().close)
                    return
        except Exception as e:  # report, then end the GUI loop
            _emit(event="error", error=f"{type(e).__name__}: {e}")
            window.destroy()

    webview.start(drive, gui="qt")
    _emit(event="exited")
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "webview":
        raise SystemExit(webview_child(sys.argv[2], sys.argv[3]))
    print("usage: python -m tests.desktop_env webview URL HOME", file=sys.stderr)
    raise SystemExit(2)
