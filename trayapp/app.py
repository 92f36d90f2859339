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
    """Record where the running app listens so CLI commands (capture start/stop) can reach it.

    The one file that holds the launch token: run/ is 0700, the file 0600 (written whole, then renamed)."""
    from pipeline.config import open_private, private_dir

    path = runtime_file(home)
    private_dir(path.parent)
    tmp = path.with_suffix(".part")
    with open_private(tmp, os.O_TRUNC) as f:
        f.write(json.dumps({"port": port, "token": token, "pid": os.getpid()}).encode())
    os.replace(tmp, path)
    return path


def serve(port: int = 0, *, home: str | None = None, background: bool = False) -> int:
    """Start the API + page and block until Ctrl-C/SIGTERM; prints the panel URL (with its token) on stdout.

    ``background``: started by another command with stdout going to run/serve.log — print the address without
    the token (CLI commands read it from run/server.json), so the token never lands in a log file."""
    from pipeline.config import weaver_home
    from web_ui.server import PanelServer

    from pipeline.recordings import manager_for

    server = PanelServer(port=port, home=home).start()
    home_path = Path(home) if home else weaver_home()
    rt = write_runtime(home_path, server.port, server.token)
    if background:
        print(f"panel server listening on http://127.0.0.1:{server.port}/ (pid {os.getpid()}; its token is in "
              f"{rt})", flush=True)
    else:
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
