"""Talk to the running app (tray or `weaver serve`) from CLI commands, e.g. capture start/stop in the background."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from pipeline.config import weaver_home
from pipeline.errors import WeaverError
from pipeline.jobs import pid_alive

from .panel import runtime_file


def running_app(home: Path | None = None) -> dict | None:
    """The runtime record of a live app for this library, or None."""
    path = runtime_file(home or weaver_home())
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return info if pid_alive(info.get("pid")) else None


def ensure_app(home: Path | None = None, timeout: float = 30.0) -> dict:
    """Return the running app, starting `weaver serve` in the background (a daemon) when none runs."""
    home = home or weaver_home()
    info = running_app(home)
    if info:
        return info
    from pipeline.config import open_private, private_dir

    log = private_dir(home / "run") / "serve.log"
    # owner-only log; `serve --background` keeps the token out of it (the token is only in run/server.json)
    with open_private(log) as f:
        subprocess.Popen([sys.executable, "-m", "trayapp", "serve", "--background"], stdout=f, stderr=f,
                         stdin=subprocess.DEVNULL, start_new_session=True, env={**os.environ, "WEAVER_HOME": str(home)})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = running_app(home)
        if info:
            return info
        time.sleep(0.2)
    raise WeaverError(f"the background app did not start; see {log}")


def call(method: str, path: str, body: dict | None = None, *, start: bool = False, timeout: float = 120.0) -> dict:
    """Call the running app's API; start it first when `start` is set."""
    import httpx

    info = ensure_app() if start else running_app()
    if info is None:
        raise WeaverError("Voice Weaver is not running (start a capture with `weaver capture start`, or run `weaver`)")
    try:
        r = httpx.request(method, f"http://127.0.0.1:{info['port']}{path}", json=body,
                          headers={"Authorization": f"Bearer {info['token']}"}, timeout=timeout)
    except httpx.HTTPError as e:
        raise WeaverError(f"could not reach the running app: {e}") from None
    data = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
    if r.status_code >= 400:
        raise WeaverError(data.get("error") or f"HTTP {r.status_code}")
    return data
