"""Analysis, characters, scripts, labelling and clip-editing subcommands of `weaver`."""

from __future__ import annotations

from .cli import COMMANDS, EXTRA_PARSERS, command, err, fmt_time, out, out_json, progress_bar, service, simple_bar


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

    s = sub.add_parser("scripts", help="the screenplay library: add, search, show, list")
    ssub = s.add_subparsers(dest="script_action", required=True)
    a = ssub.add_parser("add")
    a.add_argument("file")
    a.add_argument("--title")
    a.add_argument("--year", type=int)
    q = ssub.add_parser("search")
    q.add_argument("query")
    q.add_argument("--json", action="store_true")
    sh = ssub.add_parser("show")
    sh.add_argument("id", type=int)
    sh.add_argument("--json", action="store_true")
    li = ssub.add_parser("list")
    li.add_argument("--json", action="store_true")
    so = ssub.add_parser("sources", help="online sources (off by default) and what each needs")
    so.add_argument("--json", action="store_true")
    fe = ssub.add_parser("fetch", help="search an online source you enabled and download a result")
    fe.add_argument("query")
    fe.add_argument("--source", required=True, choices=["opensubtitles", "screenplay-site"])
    fe.add_argument("--year", type=int)
    fe.add_argument("--pick", type=int, default=0, help="which search result (0 = first)")

    s = sub.add_parser("label", help="label speakers: rename, merge, reassign, split, undo")
    lsub = s.add_subparsers(dest="label_action", required=True)
    r = lsub.add_parser("rename", help="name a speaker cluster (all its lines)")
    r.add_argument("item", type=int)
    r.add_argument("speaker")
    r.add_argument("name")
    m = lsub.add_parser("merge", help="merge speaker A into speaker B")
    m.add_argument("item", type=int)
    m.add_argument("source")
    m.add_argument("target")
    ra = lsub.add_parser("reassign", help="give one line (segment id) to a character")
    ra.add_argument("segment", type=int)
    ra.add_argument("character")
    sp = lsub.add_parser("split", help="split a line (segment id) at a time in seconds")
    sp.add_argument("segment", type=int)
    sp.add_argument("at", type=float)
    u = lsub.add_parser("undo", help="undo the latest labelling edit of an item")
    u.add_argument("item", type=int)

    s = sub.add_parser("clip", help="edit one clip: trim, keep, reject, show")
    csub = s.add_subparsers(dest="clip_action", required=True)
    t = csub.add_parser("trim")
    t.add_argument("clip", type=int)
    t.add_argument("--start", type=float, help="seconds to move the start (+ later, - earlier)")
    t.add_argument("--end", type=float, help="seconds to move the end (+ later, - earlier)")
    t.add_argument("--absolute", action="store_true", help="--start/--end are media times, not offsets")
    t.add_argument("--snap", action="store_true", help="snap the edges to the nearest word edges")
    for name in ("keep", "reject", "show"):
        c = csub.add_parser(name)
        c.add_argument("clip", type=int)
        c.add_argument("--json", action="store_true")


    s = sub.add_parser("serve", help="start the panel server (no window); prints the panel URL with its token")
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--background", action="store_true",
                   help="started by another command: print the address without the token (it is in run/server.json)")


EXTRA_PARSERS.append(add_parsers)


@command("serve")
def cmd_serve(a) -> int:
    from .app import serve

    return serve(a.port, background=a.background)


@command("analyze")
def cmd_analyze(a) -> int:
    from pipeline.workflows.analysis import AnalysisOptions

    svc = service()
    opts = AnalysisOptions(asr=a.asr)
    if a.script:
        opts.script_id = int(a.script) if a.script.isdigit() else svc.add_script(a.script)["id"]
    prepared = svc.prepare_analyze(a.item, options=opts)
    with progress_bar("analysing") as listener:
        outcome = prepared.run(svc, listener, None)
    for w in outcome.result.get("warnings") or []:
        err(f"warning: {w}")
    err(f"characters: {', '.join(outcome.result['characters']) or '(none)'}")
    out(str(outcome.job_id))
    return 0


@command("transcribe")
def cmd_transcribe(a) -> int:
    import json

    with simple_bar("transcribing") as listener:
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

    with simple_bar("diarizing") as listener:
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
        flag = " [overlap]" if r["overlap"] else ""
        out(f"#{r['id']:<5d} clip {r['clip_id']:<5d} {fmt_time(r['start'])}-{fmt_time(r['end'])} "
            f"{(r['character'] or '?'):12s} {r['speaker'] or '':11s} {r['text']}{flag}")
    return 0


@command("scripts")
def cmd_scripts(a) -> int:
    svc = service()
    if a.script_action == "add":
        row = svc.add_script(a.file, title=a.title, year=a.year)
        err(f"script '{row['title']}' stored")
        out(str(row["id"]))
    elif a.script_action == "search":
        rows = svc.search_scripts(a.query)
        if a.json:
            out_json(rows)
        else:
            for r in rows:
                if r["match"] == "title":
                    out(f"[{r['script_id']}] {r['title']} ({r['year'] or '?'})")
                else:
                    out(f"[{r['script_id']}] {r['title']}  #{r['idx']} {r['character']}: {r['text']}")
    elif a.script_action == "show":
        row = svc.show_script(a.id)
        if a.json:
            out_json(row)
        else:
            out(f"{row['id']}: {row['title']} ({row['year'] or '?'}, {row['format']}), {len(row['lines'])} lines")
            out("characters: " + ", ".join(f"{c['name']} ({c['lines']})" for c in row["characters"]))
            for ln in row["lines"]:
                out(f"  [{ln['scene']}] {ln['character']}: {ln['text']}")
    elif a.script_action == "sources":
        rows = svc.online_sources()
        if a.json:
            out_json(rows)
        else:
            for r in rows:
                out(f"{r['name']:16s} {'ready' if r['available'] else 'off'}  needs {r['needs']}" + (f" — {r['reason']}" if r["reason"] else ""))
    elif a.script_action == "fetch":
        res = svc.fetch_online(a.source, a.query, year=a.year, pick=a.pick)
        err(f"downloaded {res['kind']} '{res['title']}'")
        out(str(res.get("script_id", res["path"])))
    else:
        rows = svc.list_scripts()
        if a.json:
            out_json(rows)
        else:
            for r in rows:
                out(f"{r['id']:4d} {r['title']} ({r['year'] or '?'}) {r['lines']} lines")
    return 0


@command("label")
def cmd_label(a) -> int:
    svc = service()
    act = a.label_action
    if act == "rename":
        res = svc.label_speaker(a.item, a.speaker, a.name)
    elif act == "merge":
        res = svc.merge_speakers(a.item, a.source, a.target)
    elif act == "reassign":
        res = svc.reassign_line(a.segment, a.character)
    elif act == "split":
        res = svc.split_line(a.segment, a.at)
        out_json(res)
        out(str(res["new_segment"]))
        return 0
    else:
        return undo_last_edit(svc, a.item)
    out_json(res)
    return 0


def undo_last_edit(svc, item: int) -> int:
    """`label undo` / `line undo`: undo the item's latest edit and say which (exit 1 when nothing is left)."""
    res = svc.undo(item)
    if res is None:
        err("nothing to undo")
        return 1
    err(f"undid {res['op']}")
    return 0


@command("clip")
def cmd_clip(a) -> int:
    svc = service()
    if a.clip_action == "trim":
        c = svc.trim_clip(a.clip, start=a.start, end=a.end, relative=not a.absolute, snap=a.snap)
    elif a.clip_action in ("keep", "reject"):
        c = svc.set_clip_status(a.clip, "kept" if a.clip_action == "keep" else "rejected")
    else:
        c = svc.clip(a.clip)
    if getattr(a, "json", False) or a.clip_action == "show":
        out_json(c)
    else:
        out(f"clip {c['id']}: {c['start']:.3f}–{c['end']:.3f} s ({c['status']}) {c['text']}")
    return 0


assert "clip" in COMMANDS
