"""`weaver` command line. Long commands show a rich progress bar on stderr; Ctrl-C cancels cleanly.

Conventions: commands that create something print its id as the last line of stdout; list/show commands
accept --json; errors are one line on stderr with a non-zero exit (traceback only with --debug).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from contextlib import contextmanager
from typing import Callable

from pipeline import __version__

COMMANDS: dict[str, Callable[[argparse.Namespace], int | None]] = {}


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


def simple_bar(label: str):
    """Adapter for functions reporting progress as (fraction, message)."""
    from pipeline.progress import Progress

    @contextmanager
    def cm():
        with progress_bar(label) as listener:
            yield lambda f, m="": listener(Progress(label, f, m))

    return cm()


def fmt_time(t: float | None) -> str:
    if t is None:
        return "-"
    m, s = divmod(max(0.0, t), 60)
    h, m = divmod(int(m), 60)
    return f"{h:d}:{m:02d}:{s:06.3f}" if h else f"{m:02d}:{s:06.3f}"


# Environment switches read when the libraries load: no tqdm bars (model loading, downloads), no Hugging Face or
# transformers progress bars and advisories on the user's terminal.
QUIET_ENV = {
    "TQDM_DISABLE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
}


def quiet_third_party(debug: bool = False) -> None:
    """Keep third-party warnings and progress bars off the terminal; ``--debug`` leaves them alone.

    Our own output (rich progress, one-line errors, ``warning:`` lines) does not use the warnings module, so every
    Python warning seen here comes from a library (webrtcvad's pkg_resources notice, transformers' FutureWarnings,
    torch's UserWarnings...): none is something the user can act on. Call before the heavy imports.
    """
    if debug:
        return
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    warnings.simplefilter("ignore")
    try:  # when transformers is already loaded the environment switch came too late: set its verbosity directly
        tf_logging = sys.modules.get("transformers.utils.logging")
        if tf_logging is not None:
            tf_logging.set_verbosity_error()
            tf_logging.disable_progress_bar()
    except Exception:  # noqa: BLE001 - best effort on a library's internals
        pass


# ---------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="weaver", description="Voice Weaver: movie and capture dialogue → character clips, voices and chat (all local).")
    p.add_argument("--version", action="version", version=f"weaver {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("ingest", help="import a media file (and run the analysis chain)")
    s.add_argument("path")
    s.add_argument("--subtitles", help="sidecar subtitle file (takes precedence over embedded streams)")
    s.add_argument("--subtitle-encoding", metavar="ENC",
                   help="text encoding of the subtitle file (cp1252, cp1251, shift_jis, gb18030…; default: detected)")
    s.add_argument("--script", help="screenplay (txt, fountain, pdf) to name the characters")
    s.add_argument("--audio-track", type=int, help="audio track number (0-based, see `weaver show`)")
    s.add_argument("--channels", choices=["auto", "centre", "mix"], help="centre channel of 5.1/7.1 (auto) or a downmix")
    s.add_argument("--title")
    s.add_argument("--no-analysis", action="store_true", help="import only (no VAD/ASR/diarization/attribution)")

    s = sub.add_parser("list", help="list library items")
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("show", help="show one item (tracks, duration, jobs)")
    s.add_argument("item", type=int)
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("rm", help="remove an item and its files")
    s.add_argument("item", type=int)

    s = sub.add_parser("lines", help="print the subtitle lines of an item with times")
    s.add_argument("item", type=int)
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("clips", help="export an item's clips (one per dialogue line) with metadata.csv")
    s.add_argument("item", type=int)
    s.add_argument("--export", metavar="DIR", required=True)
    s.add_argument("--character", help="only this character's lines")
    s.add_argument("--video", action="store_true", help="also cut the matching video clips")
    s.add_argument("--isolate", action="store_true", help="isolate dialogue from music/noise in each clip")
    s.add_argument("--format", choices=["wav", "flac"], default="wav")

    s = sub.add_parser("jobs", help="list jobs, or cancel/resume one")
    s.add_argument("action", nargs="?", choices=["list", "cancel", "show"], default="list")
    s.add_argument("job", nargs="?", type=int)
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("models", help="which models each backend needs, whether present, how to fetch them")
    s.add_argument("--json", action="store_true")

    for extra in EXTRA_PARSERS:
        extra(sub)
    return p


EXTRA_PARSERS: list[Callable] = []


# ---------------------------------------------------------------------------------------------
@command("ingest")
def cmd_ingest(a) -> int:
    from pipeline.workflows.ingest import AlreadyImported

    svc = service()
    try:  # validation first, so bad input fails before any progress bar or write
        prepared = svc.prepare_ingest(a.path, subtitles=a.subtitles, audio_track=a.audio_track, channel_mode=a.channels,
                                      title=a.title, script=a.script, analyze=not a.no_analysis,
                                      subtitle_encoding=a.subtitle_encoding)
    except AlreadyImported as e:
        err(f"weaver: {e}")
        out(str(e.media_id))
        return 0
    with progress_bar("importing") as listener:
        outcome = prepared.run(svc, listener, None)
    if outcome.resumed:
        err(f"resumed interrupted job {outcome.job_id}")
    for w in outcome.result.get("warnings") or []:  # import: truncated media, dropped subtitle cues
        err(f"warning: {w}")
    analysis = outcome.result.get("analysis") or {}
    for w in analysis.get("warnings") or []:
        err(f"warning: {w}")
    if analysis:
        err(f"characters: {', '.join(analysis.get('characters') or []) or '(none found)'}")
    out(str(outcome.result["media_id"]))
    return 0


@command("list")
def cmd_list(a) -> int:
    rows = service().list_media()
    if a.json:
        out_json(rows)
        return 0
    from rich.console import Console
    from rich.table import Table

    t = Table("id", "kind", "title", "duration", "lines", "job")
    for r in rows:
        t.add_row(str(r["id"]), r["kind"], r["title"], fmt_time(r["duration"]), str(r["segments"]), r["job_state"] or "")
    Console().print(t)
    return 0


@command("show")
def cmd_show(a) -> int:
    m = service().show_media(a.item)
    if a.json:
        out_json(m)
        return 0
    out(f"{m['id']}: {m['title']} ({m['kind']}, {m['container']}, {m['duration']:.2f} s{', video' if m['has_video'] else ''})")
    out(f"source: {m['source_path']}")
    for t in m["audio_tracks"]:
        mark = "*" if t["idx"] == m["audio_track"] else " "
        out(f" {mark} audio {t['idx']}: {t['codec']} {t['layout'] or t['channels']} {t['sample_rate']} Hz {t['language'] or ''}")
    out(f"   dialogue taken from: {m['channel_mode']}")
    for t in m["subtitle_tracks"]:
        out(f"   subtitles ({t['source']}{', primary' if t['is_primary'] else ''}): {t['lines']} lines, {t['format']}, {t['encoding']}")
    out(f"segments: {m['segments']}")
    for w in (m.get("meta") or {}).get("import_warnings") or []:
        out(f"warning: {w}")
    for j in m["jobs"]:
        out(f"job {j['id']} {j['kind']}: {j['state']}" + (f" ({j['error']})" if j["error"] else ""))
    return 0


@command("rm")
def cmd_rm(a) -> int:
    service().remove_media(a.item)
    err(f"removed item {a.item}")
    return 0


@command("lines")
def cmd_lines(a) -> int:
    rows = service().lines(a.item)
    if a.json:
        out_json(rows)
        return 0
    for r in rows:
        cue = f"{r['speaker_cue']}: " if r["speaker_cue"] else ""
        tags = f" [{', '.join(r['tags'])}]" if r["tags"] else ""
        out(f"{r['idx'] + 1:4d}  {fmt_time(r['start'])} --> {fmt_time(r['end'])}  {cue}{r['text']}{tags}")
    return 0


@command("clips")
def cmd_clips(a) -> int:
    with simple_bar("exporting clips") as listener:
        path = service().export_clips(a.item, a.export, character=a.character, video=a.video, isolate=a.isolate,
                                      fmt=a.format, listener=listener)
    out(str(path))
    return 0


@command("jobs")
def cmd_jobs(a) -> int:
    svc = service()
    if a.action in ("cancel", "show"):
        if a.job is None:
            raise_usage("jobs cancel/show need a job id")
        job = svc.cancel_job(a.job) if a.action == "cancel" else svc.job(a.job)
        if a.json or a.action == "show":
            out_json(job)
        else:
            out(f"job {job['id']}: {job['state']}")
        return 0
    rows = svc.jobs()
    if a.json:
        out_json(rows)
        return 0
    for j in rows:
        eta = f" eta {j['eta']:.0f}s" if j["eta"] and j["state"] == "running" else ""
        out(f"{j['id']:5d} {j['kind']:10s} {j['state']:11s} {j['progress'] * 100:5.1f}% {j['stage'] or ''}{eta}"
            + (f"  {j['error']}" if j["error"] else ""))
    return 0


@command("models")
def cmd_models(a) -> int:
    rows = service().models()
    if a.json:
        out_json(rows)
        return 0
    for r in rows:
        state = "ready" if r["available"] else "missing"
        out(f"{r['stage']:11s} {r['backend']:15s} {state:8s} {'offline' if r['offline'] else ''}")
        for m in r["models"]:
            out(f"{'':12s}- {m['name']}: {'present' if m['present'] else 'absent'} at {m['path']}")
            if not m["present"]:
                out(f"{'':14s}fetch: {m['fetch_command']}" + (f"  (≈{m['size_mb']:.0f} MB)" if m.get("size_mb") else ""))
        if not r["available"]:
            out(f"{'':12s}{r['reason']}" + (f" — {r['fix']}" if r["fix"] else ""))
    return 0


class UsageError(Exception):
    pass


def raise_usage(msg: str):
    raise UsageError(msg)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args[: args.index("--")] if "--" in args else "--debug" in args
    quiet_third_party(debug)
    if debug:
        os.environ.setdefault("WEAVER_DEBUG", "1")  # engines with their own logs (llama.cpp) show them too
    from pipeline.errors import Cancelled, WeaverError

    from . import cli_capture, cli_chat, cli_clone, cli_lines, cli_more, cli_voices  # noqa: F401  (register more subcommands)

    parser = build_parser()
    a = parser.parse_args(argv)
    if not a.command:
        from .app import run_app

        return run_app(debug=a.debug) or 0
    try:
        return COMMANDS[a.command](a) or 0
    except Cancelled:
        err("weaver: cancelled")
        return 130
    except KeyboardInterrupt:
        err("weaver: cancelled")
        return 130
    except WeaverError as e:
        if a.debug:
            raise
        err(f"weaver: error: {e}")
        return e.exit_code
    except UsageError as e:
        parser.error(str(e))
        return 2
    except BrokenPipeError:
        return 0
    except Exception as e:  # a bug: one line unless --debug
        if a.debug:
            raise
        err(f"weaver: internal error: {type(e).__name__}: {e} (run with --debug for details)")
        return 70


if __name__ == "__main__":
    sys.exit(main())
