"""`weaver` with no arguments: tray icon + panel window, or the panel server alone without a display."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path


def has_display() -> bool:
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def runtime_file(home: Path) -> Path:
    return home / "run" / "server.json"


def write_runtime(home: Path, port: int, token: str) -> Path:
    """Record where the running app listens so CLI commands (capture start/stop) can reach it."""
    path = runtime_file(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"port": port, "token": token, "pid": os.getpid()}, f)
    os.replace(tmp, path)
    return path


def serve(port: int = 0, *, home: str | None = None) -> int:
    """Start the API + page and block until Ctrl-C/SIGTERM; prints the panel URL on stdout."""
    from pipeline.config import weaver_home
    from web_ui.server import PanelServer

    from pipeline.recordings import manager_for

    server = PanelServer(port=port, home=home).start()
    home_path = Path(home) if home else weaver_home()
    rt = write_runtime(home_path, server.port, server.token)
    print(server.url, flush=True)
    for media_id in manager_for(home_path).recover_interrupted():
        print(f"recovered an interrupted recording as item {media_id}", file=sys.stderr, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        rt.unlink(missing_ok=True)
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
