"""Start the panel server for the app: the one start the headless `weaver serve` and the desktop app share.

It starts the server, records where it listens (run/server.json, the one file with the launch token), announces
the address, then imports the recordings a crash left open. :mod:`trayapp.app` and :mod:`trayapp.desktop` both
call :func:`start_panel`; :mod:`trayapp.remote` reads :func:`runtime_file`.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable


def runtime_file(home: Path) -> Path:
    """Where the running app of a library records its port, token and pid."""
    return home / "run" / "server.json"


def write_runtime(home: Path, port: int, token: str) -> Path:
    """Record where the running app listens so CLI commands (capture start/stop) can reach it.

    The one file that holds the launch token: run/ is 0700, the file 0600 (written whole, then renamed)."""
    from pipeline.config import open_private, private_dir
    from pipeline.files import part_path

    path = runtime_file(home)
    private_dir(path.parent)
    with part_path(path) as tmp, open_private(tmp, os.O_TRUNC) as f:
        f.write(json.dumps({"port": port, "token": token, "pid": os.getpid()}).encode())
    return path


@dataclass
class RunningPanel:
    """A started panel server, its library folder and its runtime record; :meth:`stop` ends both."""

    server: object  # web_ui.server.PanelServer
    home: Path
    runtime: Path

    @property
    def url(self) -> str:
        return self.server.url

    def stop(self) -> None:
        self.server.stop()
        remove_runtime(self.runtime)


def remove_runtime(path: Path, pid: int | None = None) -> bool:
    """Remove run/server.json only when it is this process's (`pid`, default ours): a newer instance that
    started meanwhile wrote its own, and deleting it would make `weaver capture status` say "not running"."""
    try:
        owner = json.loads(path.read_text()).get("pid")
    except (OSError, ValueError, AttributeError):
        return False
    if owner != (os.getpid() if pid is None else pid):
        return False
    path.unlink(missing_ok=True)
    return True


def print_url(panel: RunningPanel) -> None:
    """The default announcement: the panel URL (with its token) on stdout."""
    print(panel.url, flush=True)


def start_panel(port: int = 0, home: str | os.PathLike | None = None, *,
                announce: Callable[[RunningPanel], None] = print_url) -> RunningPanel:
    """Start the panel server, write run/server.json, announce it, then recover interrupted recordings.

    Each recovered recording becomes an item and gets one line on stderr."""
    from pipeline.config import weaver_home
    from pipeline.workflows.recordings import manager_for
    from web_ui.server import PanelServer

    server = PanelServer(port=port, home=home).start()
    home_path = Path(home) if home else weaver_home()
    panel = RunningPanel(server=server, home=home_path, runtime=write_runtime(home_path, server.port, server.token))
    announce(panel)
    for media_id in manager_for(home_path).recover_interrupted():
        print(f"recovered an interrupted recording as item {media_id}", file=sys.stderr, flush=True)
    return panel
