"""The registry of `weaver` subcommands and the helpers every command module uses (no command lives here).

A command module ``trayapp/cli_<area>.py`` imports what it needs from here (never from trayapp.cli), defines
``add_parsers(sub)`` for its subparsers and its handlers with ``@command("name")``; trayapp.cli lists the module in
``AREAS``. Registering happens when trayapp.cli imports the modules it lists, so nothing imports trayapp.cli.
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import contextmanager
from typing import Callable

COMMANDS: dict[str, Callable[[argparse.Namespace], int | None]] = {}
# parser adders appended by modules that are not (yet) listed in trayapp.cli.AREAS; build_parser adds them last
EXTRA_PARSERS: list[Callable] = []


def command(name: str):
    def deco(fn):
        COMMANDS[name] = fn
        return fn

    return deco


def out(text: str = "") -> None:
    print(text, flush=True)


def out_json(value) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str), flush=True)


def err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def service():
    from pipeline.service import Service

    return Service()


@contextmanager
def progress_bar(label: str = "working"):
    """A rich progress bar on stderr; yields a listener taking pipeline.progress.Progress objects."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    console = Console(stderr=True)
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(),
               TextColumn("ETA"), TimeRemainingColumn(), TimeElapsedColumn(), TextColumn("{task.fields[message]}")]
    # drawn only on a terminal: logs and pipes get the result lines, not bar frames
    with Progress(*columns, console=console, transient=False, disable=not console.is_terminal) as bar:
        task = bar.add_task(label, total=1.0, message="")

        def listener(p) -> None:
            bar.update(task, completed=p.fraction, description=p.stage or label, message=(p.message or "")[:40])

        try:
            yield listener
        except BaseException:
            if console.is_terminal:
                bar.live.transient = True  # an error leaves one line on stderr, not a half-drawn bar
            raise
        bar.update(task, completed=1.0)


def fmt_time(t: float | None) -> str:
    if t is None:
        return "-"
    m, s = divmod(max(0.0, t), 60)
    h, m = divmod(int(m), 60)
    return f"{h:d}:{m:02d}:{s:06.3f}" if h else f"{m:02d}:{s:06.3f}"


def sync_line(sync: dict | None) -> str:
    """'subtitle sync: shifted −2.3 s, 25→23.976 fps, 2 sections' from an analysis result ('' when not checked)."""
    if not sync or not sync.get("summary"):
        return ""
    return f"subtitle sync: {sync['summary']}"


class UsageError(Exception):
    pass


def raise_usage(msg: str):
    raise UsageError(msg)
