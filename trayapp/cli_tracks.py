"""`weaver subs list|add|primary|rm` and `weaver script` — swap or add subtitle tracks and the screenplay of an item
already in the library (the item, its labels, edits and voices stay; the item is analysed again to apply)."""

from __future__ import annotations

from .commands import command, err, out, out_json, service


def add_parsers(sub) -> None:
    s = sub.add_parser("subs", help="an item's subtitle tracks: list, add (or swap in) a file, pick the primary, rm")
    ssub = s.add_subparsers(dest="subs_action", required=True)
    li = ssub.add_parser("list", help="the item's subtitle tracks (* = primary: the lines come from it)")
    li.add_argument("item", type=int)
    li.add_argument("--json", action="store_true")
    ad = ssub.add_parser("add", help="add a subtitle file; it becomes the primary track unless --extra")
    ad.add_argument("item", type=int)
    ad.add_argument("file")
    ad.add_argument("--encoding", help="the file's text encoding (default: detected)")
    ad.add_argument("--extra", action="store_true", help="keep the current primary track (store this one beside it)")
    ad.add_argument("--no-analyze", action="store_true", help="do not analyse the item again now")
    pr = ssub.add_parser("primary", help="make another of the item's tracks the one its lines come from")
    pr.add_argument("track", type=int)
    pr.add_argument("--no-analyze", action="store_true")
    rm = ssub.add_parser("rm", help="remove a subtitle track that is not the primary one")
    rm.add_argument("track", type=int)

    s = sub.add_parser("script", help="attach a screenplay (file or script id) to an item, or --detach it")
    s.add_argument("item", type=int)
    s.add_argument("script", nargs="?", help="screenplay file, or the id of one in `weaver scripts list`")
    s.add_argument("--detach", action="store_true")
    s.add_argument("--no-analyze", action="store_true")


def _apply(svc, media_id: int, no_analyze: bool) -> int:
    if no_analyze:
        err(f"not analysed yet: run `weaver analyze {media_id}` to make the lines from the change")
        return 0
    from .cli_analysis import run_analysis

    return run_analysis(svc, media_id)


@command("subs")
def cmd_subs(a) -> int:
    svc = service()
    if a.subs_action == "list":
        rows = svc.subtitle_tracks(a.item)
        if a.json:
            out_json(rows)
            return 0
        for t in rows:
            where = t["path"] or f"stream {t['stream_index']}"
            out(f"{'*' if t['is_primary'] else ' '} {t['id']:>4}  {t['source']:<8} {t['format'] or '':<5} "
                f"{t['encoding'] or '':<10} {t['lines']:>5} lines  {where}")
        return 0
    if a.subs_action == "add":
        res = svc.add_subtitles(a.item, a.file, encoding=a.encoding, primary=not a.extra)
        err(f"track {res['track']}: {res['lines']} lines ({res['format']}, {res['encoding']})"
            + (", primary" if res["primary"] else ", beside the primary track"))
        for w in res["warnings"]:
            err(f"warning: {w}")
        return _apply(svc, a.item, a.no_analyze) if res["primary"] else 0
    if a.subs_action == "primary":
        res = svc.set_primary_subtitles(a.track)
        err(f"track {a.track} is now item {res['media_id']}'s primary subtitle track")
        return _apply(svc, res["media_id"], a.no_analyze)
    res = svc.remove_subtitle_track(a.track)
    err(f"subtitle track {a.track} removed from item {res['media_id']}")
    return 0


@command("script")
def cmd_script(a) -> int:
    svc = service()
    if not a.detach and not a.script:
        m = svc.lib.media(a.item)
        out(str(m.get("script_id") or ""))
        return 0
    res = svc.attach_script(a.item, None if a.detach else a.script)
    err(f"item {a.item}: " + (f"screenplay {res['script']} attached" if res["script"] else "screenplay detached"))
    return _apply(svc, a.item, a.no_analyze)
