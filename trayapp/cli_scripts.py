"""The screenplay library's subcommands of `weaver` (`weaver scripts add|search|show|list|sources|fetch`)."""

from __future__ import annotations

from .commands import command, err, out, out_json, service


def add_parsers(sub) -> None:
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
