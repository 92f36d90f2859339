"""Analysis subcommands of `weaver`: analyze, transcribe, diarize, speakers, voiceprints, characters, segments."""

from __future__ import annotations

from .commands import command, err, fmt_time, out, out_json, progress_bar, service, sync_line


def add_parsers(sub) -> None:
    s = sub.add_parser("analyze", help="run the analysis chain (VAD, ASR, sync, align, diarize, attribution) on an item")
    s.add_argument("item", type=int)
    s.add_argument("--script", help="screenplay file or script id to name characters")
    s.add_argument("--asr", choices=["auto", "always", "never"], default="auto")

    s = sub.add_parser("transcribe", help="transcribe a file or item with word times")
    s.add_argument("source", help="media file path or item id")
    s.add_argument("--backend")
    s.add_argument("--model", help="Whisper model size or CTranslate2 folder (default tiny.en, bundled)")
    s.add_argument("--format", choices=["txt", "srt", "json"], default="txt")

    s = sub.add_parser("diarize", help="who speaks when, in a file or item")
    s.add_argument("source", help="media file path or item id")
    s.add_argument("--backend")
    s.add_argument("--speakers", type=int, help="number of speakers if known")
    s.add_argument("--rttm", metavar="OUT", help="write RTTM here")
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("speakers", help="speaker clusters of an item with names, match scores and segments")
    s.add_argument("item", type=int)
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("voiceprint", help="known voices: enroll, list, rename, merge, rm")
    vsub = s.add_subparsers(dest="vp_action", required=True)
    e = vsub.add_parser("enroll")
    e.add_argument("name")
    e.add_argument("audio")
    e.add_argument("--start", type=float)
    e.add_argument("--end", type=float)
    ls = vsub.add_parser("list", help="every voiceprint with its kind (auto/named/file) and its recordings")
    ls.add_argument("--json", action="store_true")
    rn = vsub.add_parser("rename", help="give a voiceprint another name")
    rn.add_argument("id", type=int)
    rn.add_argument("name")
    mg = vsub.add_parser("merge", help="fold voiceprint SOURCE into TARGET (one voice enrolled twice)")
    mg.add_argument("source", type=int)
    mg.add_argument("target", type=int)
    rm = vsub.add_parser("rm", help="delete a voiceprint")
    rm.add_argument("id", type=int)

    s = sub.add_parser("characters", help="characters of an item with line count and speech time")
    s.add_argument("item", type=int)
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("segments", help="dialogue lines of an item with speaker, character and clip ids")
    s.add_argument("item", type=int)
    s.add_argument("--character")
    s.add_argument("--json", action="store_true")


@command("analyze")
def cmd_analyze(a) -> int:
    from pipeline.workflows.analysis import AnalysisOptions

    svc = service()
    if a.script:  # the script given becomes the item's screenplay (later analyses use it too)
        svc.attach_script(a.item, a.script)
    return run_analysis(svc, a.item, AnalysisOptions(asr=a.asr, script_id=svc.lib.media(a.item).get("script_id")))


def run_analysis(svc, media_id: int, options=None) -> int:
    """Analyse an item in this process with a progress bar; print warnings, the sync and the characters."""
    prepared = svc.prepare_analyze(media_id, options=options)
    with progress_bar("analysing") as listener:
        outcome = prepared.run(svc, listener, None)
    for w in outcome.result.get("warnings") or []:
        err(f"warning: {w}")
    if line := sync_line(outcome.result.get("sync")):
        err(line)
    err(f"characters: {', '.join(outcome.result['characters']) or '(none)'}")
    out(str(outcome.job_id))
    return 0


@command("transcribe")
def cmd_transcribe(a) -> int:
    import json

    with progress_bar("transcribing") as listener:
        tr = service().transcribe(a.source, backend=a.backend, model=a.model, listener=listener)
    if a.format == "json":
        from dataclasses import asdict

        out(json.dumps(asdict(tr), indent=2, ensure_ascii=False))
    elif a.format == "srt":
        for i, ln in enumerate(tr.lines, 1):
            out(f"{i}\n{_srt_time(ln.start)} --> {_srt_time(ln.end)}\n{ln.text.strip()}\n")
    else:
        for ln in tr.lines:
            out(f"[{fmt_time(ln.start)} --> {fmt_time(ln.end)}] {ln.text.strip()}")
    return 0


def _srt_time(t: float) -> str:
    ms = int(round(t * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d},{ms:03d}"


@command("diarize")
def cmd_diarize(a) -> int:
    from pathlib import Path

    with progress_bar("diarizing") as listener:
        d = service().diarize(a.source, backend=a.backend, num_speakers=a.speakers, listener=listener)
    uri = Path(str(a.source)).stem
    if a.rttm:
        Path(a.rttm).write_text(d.to_rttm(uri), encoding="utf-8")
    if a.json:
        out_json({"speakers": d.speakers(), "turns": [t.__dict__ for t in d.turns]})
    elif not a.rttm:
        out(d.to_rttm(uri).rstrip())
    else:
        err(f"{len(d.speakers())} speakers, {len(d.turns)} turns → {a.rttm}")
    return 0


@command("speakers")
def cmd_speakers(a) -> int:
    rows = service().speakers(a.item)
    if a.json:
        out_json(rows)
        return 0
    for r in rows:
        score = f" (match {r['match_score']:.2f})" if r["match_score"] is not None else ""
        out(f"{r['speaker']}: {r['name'] or '-'}{score}  character={r['character'] or '-'}  {len(r['segments'])} segments")
    return 0


@command("voiceprint")
def cmd_voiceprint(a) -> int:
    svc = service()
    if a.vp_action == "enroll":
        vid = svc.enroll_voiceprint(a.name, a.audio, start=a.start, end=a.end)
        out(str(vid))
        return 0
    if a.vp_action == "rename":
        r = svc.rename_voiceprint(a.id, a.name)
        out(f"voiceprint {r['id']} is now {r['name']}")
        return 0
    if a.vp_action == "merge":
        r = svc.merge_voiceprints(a.source, a.target)
        out(f"voiceprint {a.source} merged into {r['id']} ({r['name']})")
        return 0
    if a.vp_action == "rm":
        r = svc.delete_voiceprint(a.id)
        out(f"voiceprint {r['id']} ({r['name']}) deleted")
        return 0
    rows = svc.voiceprints()
    if a.json:
        out_json(rows)
    else:
        for r in rows:
            came = ", ".join(f"item {x['media_id']} {x['title'] or ''}".strip() + (f" {x['speaker']}" if x["speaker"] else "")
                             if x["media_id"] is not None else (x["path"] or "deleted item") for x in r["recordings"])
            out(f"{r['id']:4d} {r['name']}  ({r['source']})  {came}")
    return 0


@command("characters")
def cmd_characters(a) -> int:
    rows = service().characters(a.item)
    if a.json:
        out_json(rows)
        return 0
    for r in rows:
        out(f"{r['name']:20s} {r['lines']:4d} lines  {fmt_time(r['seconds'])}  conf {r['confidence'] or 0:.2f}")
    return 0


@command("segments")
def cmd_segments(a) -> int:
    rows = service().segments(a.item, character=a.character)
    if a.json:
        out_json(rows)
        return 0
    for r in rows:
        flag = (" [overlap]" if r["overlap"] else "") + (" [check text]" if r.get("check_text") else "")
        flag += f" ({r['text_source']})" if r.get("text_source") else ""
        out(f"#{r['id']:<5d} clip {r['clip_id']:<5d} {fmt_time(r['start'])}-{fmt_time(r['end'])} "
            f"{(r['character'] or '?'):12s} {r['speaker'] or '':11s} {r['text']}{flag}")
    return 0
