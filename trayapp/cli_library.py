"""Library subcommands of `weaver`: ingest, list, show, rm, lines, clips (export), jobs, models."""

from __future__ import annotations

from .commands import command, err, fmt_time, out, out_json, progress_bar, raise_usage, service, sync_line


def add_parsers(sub) -> None:
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
    if line := sync_line(analysis.get("sync")):
        err(line)
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
        if line := sync_line(t.get("sync")):
            out(f"     {line}")
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
    with progress_bar("exporting clips") as listener:
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
                out(f"{'':14s}fetch: {m['fetch_command']}")
        if not r["available"]:
            out(f"{'':12s}{r['reason']}" + (f" — {r['fix']}" if r["fix"] else ""))
    return 0
