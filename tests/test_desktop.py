"""The desktop faces under a real X server: the pywebview (Qt) panel window, the tray icon, and the no-display
fallback. The tests start their own Xvfb, trayer and PulseAudio (see tests/desktop_env.py)."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.pulse_env import stop_process
from tests.desktop_env import (REPO, click, find_windows, need_binaries, need_modules, start_webview_child, trayer,
                               wait_until, window_box)

pytestmark = [pytest.mark.desktop, pytest.mark.timeout(180)]


@pytest.fixture
def panel(tmp_path):
    from web_ui.server import PanelServer

    server = PanelServer(home=tmp_path / "lib").start()
    yield server
    server.stop()


def test_panel_window_js_bridge_and_close_hides(panel, tmp_path):
    """A real Qt pywebview window loads the panel, JS calls Python (ping → pong), ✕ hides instead of closing."""
    need_binaries("Xvfb")
    need_modules("webview", "PyQt6.QtWebEngineWidgets", "qtpy", "Xlib")
    from tests.pulse_env import xvfb_display

    with xvfb_display(1280, 800, set_env=False) as display:
        child = start_webview_child(panel.url, str(tmp_path / "lib"), display)
        try:
            child.wait_for("loaded", 90)
            assert child.wait_for("ping", 30)["result"] == "pong"  # JS → Python → JS round trip
            page = child.wait_for("page", 30)
            # the page's modules ran inside QtWebEngine and reached the API with the launch token
            assert page["brand"] == "Voice Weaver" and page["tabs"] == 7
            assert page["api_state"] == "idle"  # PanelBridge.state() through the bridge
            win = wait_until(lambda: [w for w in find_windows(display, "Voice Weaver") if w["mapped"]], 15,
                             "a mapped 'Voice Weaver' X window")
            wid = win[0]["id"]

            # the window manager's close (what the title bar's ✕ sends): the closing handler hides the window
            child.send("close")
            closed = child.wait_for("closed", 20)
            assert closed["closing_events"] == 1
            assert closed["visible"] is False and closed["still_open"] is True
            wait_until(lambda: not any(w["mapped"] for w in find_windows(display, "Voice Weaver") if w["id"] == wid),
                       10, "the window to be unmapped")
            assert child.proc.poll() is None  # the app lives on

            child.send("show")  # tray → Open panel
            assert child.wait_for("shown", 20)["visible"] is True
            wait_until(lambda: any(w["mapped"] for w in find_windows(display, "Voice Weaver") if w["id"] == wid),
                       10, "the window to be mapped again")

            child.send("quit")  # tray → Quit: closing now really closes, and the GUI loop ends
            child.wait_for("exited", 20)
            assert child.proc.wait(timeout=20) == 0
        finally:
            child.stop()


def test_tray_right_click_shows_the_menu_and_it_opens_the_panel(panel, tmp_path):
    """Linux (pystray xorg) has no tray menu of its own: a real right click on the docked icon shows the app's menu as
    a Qt popup, and clicking its "Open panel" entry brings back the hidden panel window."""
    need_binaries("Xvfb", "trayer")
    need_modules("webview", "PyQt6.QtWebEngineWidgets", "qtpy", "Xlib", "pystray")
    from tests.pulse_env import xvfb_display

    with xvfb_display(1280, 800, set_env=False) as display, trayer(display):
        child = start_webview_child(panel.url, str(tmp_path / "lib"), display, tray=True)
        try:
            child.wait_for("page", 120)
            child.wait_for("tray", 40)
            icon = wait_until(lambda: [w for w in find_windows(display, "Voice Weaver") if not w["top_level"]], 15,
                              "the icon docked in trayer")
            child.send("close")  # hide the panel window first
            assert child.wait_for("closed", 20)["visible"] is False

            x, y, w, h = window_box(display, icon[0]["id"])
            click(display, x + w // 2, y + h // 2, button=3)
            child.send("menu")
            menu = child.wait_for("menu", 30)
            assert menu["texts"] == ["Listen", "Record", "Keep last line", "Save last 5 minutes", "Open panel",
                                     "Quick chat…", "Recent items", "Quit"]
            click(display, *menu["open_panel"], button=1)
            wait_until(lambda: child.send("visible") or child.wait_for("visible", 10)["visible"], 20,
                       "the panel window shown again by the menu's Open panel")
            child.send("quit")
            child.wait_for("exited", 20)
        finally:
            child.stop()


@pytest.mark.audio
def test_tray_menu_starts_and_stops_capture(tmp_path, monkeypatch):
    """The tray icon docks in a real tray host; its Record item starts a capture, then stops it into the library."""
    need_binaries("Xvfb", "trayer", "pulseaudio", "pactl", "paplay", "espeak-ng")
    need_modules("pystray", "Xlib", "soundcard")
    from tests.pulse_env import private_pulseaudio, speech_wav, xvfb_display
    from pipeline.library import Library

    home = tmp_path / "lib"
    monkeypatch.setenv("PYSTRAY_BACKEND", "xorg")
    wav = speech_wav(tmp_path / "say.wav", "The tray records what is playing.")
    with xvfb_display(800, 600) as display, trayer(display), private_pulseaudio(sinks=("vw_tray",)) as pa:
        # pystray's xorg backend connects to $DISPLAY when imported: import it fresh for this display
        for name in [m for m in sys.modules if m == "pystray" or m.startswith("pystray.")]:
            monkeypatch.delitem(sys.modules, name)
        from trayapp.actions import AppActions
        from trayapp.tray import STATE_COLOURS, Tray

        actions = AppActions(home=home)
        tray = Tray(actions)
        tray.run_detached()
        try:
            icon = wait_until(lambda: tray.shown.is_set() and [w for w in find_windows(display, "Voice Weaver", prefix=True)
                                                               if w["mapped"] and not w["top_level"]], 15,
                              lambda: f"the icon shown and docked in trayer (shown {tray.shown.is_set()}, windows "
                                      f"{find_windows(display, 'Voice Weaver', prefix=True)})")
            assert icon[0]["name"] == "Voice Weaver"
            assert tray.icon.menu.items[0].text == "Listen"
            record = tray.icon.menu.items[1]
            assert record.text == "Record"

            record(tray.icon)  # what clicking the menu item does
            wait_until(lambda: tray.state == "recording" and actions.capture.status()["recording"], 20,
                       lambda: f"state recording (tray {tray.state}, actions {actions.state()}, "
                       f"capture {actions.capture.status()}, last error: {actions.last_error}, "
                       f"threads {[t.name for t in threading.enumerate()]})")
            assert tray.icon.menu.items[0].text == "Stop capture" and tray.icon.menu.items[1].text == "Recording…"
            assert tray.icon.icon.getpixel((10, 32))[:3] == STATE_COLOURS["recording"]
            wait_until(lambda: find_windows(display, "Voice Weaver: recording"), 10, "the icon's X title to show recording")
            pa.play(wav, device="vw_tray")  # something to record

            tray.icon.menu.items[0](tray.icon)
            wait_until(lambda: tray.state == "idle" and not actions.capture.status()["running"], 60,
                       lambda: f"state idle after stop (tray {tray.state}, capture {actions.capture.status()}, "
                       f"last error: {actions.last_error or actions.capture.last_error})")
            assert actions.last_error is None
            assert tray.icon.menu.items[0].text == "Listen"
            assert tray.icon.icon.getpixel((10, 32))[:3] == STATE_COLOURS["idle"]
            wait_until(lambda: find_windows(display, "Voice Weaver"), 10, "the icon's X title back to idle")
            lib = Library(home)
            try:
                assert lib.counts()["media"] == 1
                (item,) = list(lib.db.query("SELECT kind, duration FROM media"))
            finally:
                lib.close()
            assert item["kind"] == "capture"
            assert item["duration"] > 1.0
            assert [m["kind"] for m in actions.recent_items()] == ["capture"]
        finally:
            tray.stop()
            if actions.capture.status().get("running"):
                actions.capture.stop()
        del tray, record
        gc.collect()  # pystray's icon closes its X connection when collected: do it while Xvfb still runs


def test_no_display_serves_the_panel(tmp_path):
    """`weaver` (python -m trayapp) without a display prints the panel URL and serves the API with its token."""
    home = tmp_path / "lib"
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.update(WEAVER_HOME=str(home), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "trayapp"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()  # blocks until the server prints its URL (or the process ends)
        assert url.startswith("http://127.0.0.1:"), (url, proc.poll(), proc.stderr.read() if proc.poll() is not None else "")
        base, token = url.split("/?token=")
        runtime = json.loads((home / "run" / "server.json").read_text())
        assert runtime["token"] == token and runtime["pid"] == proc.pid and base.endswith(f":{runtime['port']}")
        ok = httpx.get(f"{base}/api/health", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert ok.status_code == 200 and ok.json()["ok"] is True
        assert httpx.get(f"{base}/api/health", timeout=10).status_code == 401
        page = httpx.get(url, timeout=10)
        assert page.status_code == 200 and "Voice Weaver" in page.text
        proc.terminate()
        assert proc.wait(timeout=20) == 0
        assert "no display found" in proc.stderr.read()
        assert not (home / "run" / "server.json").exists()  # the runtime file goes with the server
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


@pytest.mark.audio
def test_weaver_desktop_app_starts(tmp_path):
    """`weaver` with a display: the server, the panel window (mapped) and the docked tray icon all come up."""
    need_binaries("Xvfb", "trayer", "pulseaudio")
    need_modules("webview", "PyQt6.QtWebEngineWidgets", "pystray", "Xlib")
    from tests.pulse_env import private_pulseaudio, xvfb_display
    from tests.desktop_env import qt_env

    home = tmp_path / "lib"
    with xvfb_display(1280, 900, set_env=False) as display, trayer(display), private_pulseaudio(set_env=False) as pa:
        env = qt_env(display, WEAVER_HOME=str(home), PULSE_SERVER=pa.server)
        env.pop("PYSTRAY_BACKEND", None)  # the app picks xorg itself on Linux
        proc = subprocess.Popen([sys.executable, "-m", "trayapp"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            url = proc.stdout.readline().strip()
            assert url.startswith("http://127.0.0.1:"), (url, proc.poll())
            base, token = url.split("/?token=")
            r = httpx.get(f"{base}/api/health", headers={"Authorization": f"Bearer {token}"}, timeout=10)
            assert r.status_code == 200
            windows = wait_until(lambda: (lambda ws: ws if any(w["top_level"] and w["mapped"] for w in ws)
                                          and any(not w["top_level"] and w["mapped"] for w in ws) else None)(
                find_windows(display, "Voice Weaver")), 60, "the panel window and the docked tray icon")
            assert len(windows) == 2
            assert proc.poll() is None
        finally:
            stop_process(proc, timeout=15)


def test_tray_title_updates_reach_the_x_server(tmp_path, monkeypatch):
    """Every title change of the docked icon shows on its X window (python-xlib could leave one queued)."""
    need_binaries("Xvfb", "trayer")
    need_modules("pystray", "Xlib")
    from tests.pulse_env import xvfb_display

    monkeypatch.setenv("PYSTRAY_BACKEND", "xorg")
    with xvfb_display(800, 600) as display, trayer(display):
        for name in [m for m in sys.modules if m == "pystray" or m.startswith("pystray.")]:
            monkeypatch.delitem(sys.modules, name)
        from trayapp.actions import AppActions
        from trayapp.tray import Tray

        tray = Tray(AppActions(home=tmp_path / "lib"))
        tray.run_detached()
        try:
            wait_until(lambda: tray.shown.is_set() and [w for w in find_windows(display, "Voice Weaver")
                                                        if not w["top_level"]], 15, "the icon shown and docked in trayer")
            for i in range(25):
                title = f"Voice Weaver: step {i}"
                tray.icon.title = title
                wait_until(lambda: find_windows(display, title), 5, f"X title {title!r}")
        finally:
            tray.stop()
        del tray
        gc.collect()
