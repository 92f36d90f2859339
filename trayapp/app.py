"""`weaver` with no arguments: tray icon + panel window, or the panel server alone without a display."""

from __future__ import annotations

import os
import signal
import sys
import threading

from .panel import RunningPanel, start_panel


def has_display() -> bool:
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def serve(port: int = 0, *, home: str | None = None, background: bool = False) -> int:
    """Start the API + page and block until Ctrl-C/SIGTERM; prints the panel URL (with its token) on stdout.

    ``background``: started by another command with stdout going to run/serve.log — print the address without
    the token (CLI commands read it from run/server.json), so the token never lands in a log file."""

    def announce(panel: RunningPanel) -> None:
        if background:
            print(f"panel server listening on http://127.0.0.1:{panel.server.port}/ (pid {os.getpid()}; its token is in "
                  f"{panel.runtime})", flush=True)
        else:
            print(panel.url, flush=True)

    panel = start_panel(port, home, announce=announce)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        panel.stop()
    return 0


def run_app(debug: bool = False) -> int:
    """Tray + panel when a display and the desktop extras are there; otherwise the server alone."""
    if not has_display():
        print("no display found: serving the panel only (open the URL below in a browser)", file=sys.stderr, flush=True)
        return serve()
    try:
        from .desktop import run_desktop
    except ImportError as e:
        print(f"desktop parts unavailable ({e}); serving the panel only", file=sys.stderr, flush=True)
        return serve()
    return run_desktop(debug=debug)
