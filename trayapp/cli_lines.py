"""`weaver line edit|join|undo` (a line's text, joining two lines) and `weaver encoding` (a subtitle file's
text encoding: show the candidates, or read it again with another)."""

from __future__ import annotations

from .commands import command, err, out, out_json, service


def add_parsers(sub) -> None:
    s = sub.add_parser("line", help="edit a line's text, join two adjacent lines, undo (segment ids: `weaver segments`)")
    lsub = s.add_subparsers(dest="line_action", required=True)
    e = lsub.add_parser("edit", help="give a line (segment id) the text actually spoken; it wins over every source")
    e.add_argument("segment", type=int)
    e.add_argument("text")
    j = lsub.add_parser("join", help="join a line with the next one (one clip); lines of two characters need --force")
    j.add_argument("segment", type=int)
    j.add_argument("next", type=int)
    j.add_argument("--force", action="store_true", help="join even when the two lines are of different characters")
    u = lsub.add_parser("undo", help="undo the latest line or labelling edit of an item")
    u.add_argument("item", type=int)

    s = sub.add_parser("encoding", help="a subtitle track's text encoding: show how sure, or read it again with another")
    s.add_argument("track", type=int, help="subtitle track id (see `weaver show ITEM`)")
    s.add_argument("encoding", nargs="?", help="read the file again with this encoding (cp1252, cp1251, shift_jis…)")
    s.add_argument("--json", action="store_true")




@command("line")
def cmd_line(a) -> int:
    svc = service()
    if a.line_action == "edit":
        res = svc.edit_line_text(a.segment, a.text)
    elif a.line_action == "join":
        res = svc.join_lines(a.segment, a.next, force=a.force)
    else:
        from .cli_labels import undo_last_edit

        return undo_last_edit(svc, a.item)
    out_json(res)
    out(str(res["segment"]))
    return 0


@command("encoding")
def cmd_encoding(a) -> int:
    svc = service()
    res = svc.set_subtitle_encoding(a.track, a.encoding) if a.encoding else svc.subtitle_encoding(a.track)
    if a.json:
        out_json(res)
    elif a.encoding:
        out(f"track {res['track']}: read as {res['encoding']}, {res['changed']} of {res['lines']} lines changed"
            + (" (segments made again: run `weaver analyze` again)" if res["rebuilt"] else ""))
    else:
        out(f"track {res['track']}: {res['encoding']}" + (" (unsure)" if res["unsure"] else "")
            + (" (picked by the user)" if res["method"] == "user" else ""))
        for c in res["candidates"]:
            sample = c["sample"].replace("\n", " / ")[:100]
            out(f"  {c['encoding']:<12} cost {c['cost']:.2f}  {sample}")
    return 0
