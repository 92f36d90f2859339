"""Labelling and clip-editing subcommands of `weaver`: `label rename|merge|reassign|split|undo`, `clip`."""

from __future__ import annotations

from .commands import command, err, out, out_json, service


def add_parsers(sub) -> None:
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
    if res.get("kept"):
        err(f"{res['kept']} line(s) kept the name an SDH label or the screenplay gives them (label reassign to change)")
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
