"""`weaver voices [list] | rename OLD NEW | rm NAME [--reassign] | restore NAME | purge [NAME]` (voice management)."""

from __future__ import annotations

from .cli import err, out, out_json, service


def add_voice_actions(parser) -> None:
    acts = parser.add_subparsers(dest="voices_action", metavar="{list,rename,rm,restore,purge,storage}")
    s = acts.add_parser("list", help="list voices (the default)")
    s.add_argument("--json", action="store_true")
    s = acts.add_parser("rename", help="rename a voice (personas using it follow)")
    s.add_argument("old")
    s.add_argument("new")
    s = acts.add_parser("rm", help="delete a voice into the trash (restore brings it back)")
    s.add_argument("name")
    s.add_argument("--reassign", action="store_true", help="switch personas using it to the default voice")
    s = acts.add_parser("restore", help="bring a deleted voice back from the trash")
    s.add_argument("name")
    s = acts.add_parser("purge", help="empty the voice trash for good (or one NAME)")
    s.add_argument("name", nargs="?")
    s = acts.add_parser("storage", help="disk used per voice, per shared base model and by the trash")
    s.add_argument("--json", action="store_true")


def _mb(n: int | None) -> str:
    return "?" if n is None else f"{n / 1e6:.1f} MB"


def run_voice_action(a) -> int:
    svc = service()
    act = a.voices_action
    if act == "rename":
        r = svc.rename_voice(a.old, a.new)
        err(f"voice '{a.old}' is now '{a.new}'" + (f"; {r['personas']} persona(s) updated" if r["personas"] else ""))
        out(a.new)
    elif act == "rm":
        r = svc.delete_voice(a.name, reassign=a.reassign)
        moved = f"; persona(s) {', '.join(r['reassigned'])} now use the default voice" if r["reassigned"] else ""
        err(f"voice '{a.name}' moved to the trash (weaver voices restore {a.name!r} brings it back){moved}")
        out(a.name)
    elif act == "restore":
        r = svc.restore_voice(a.name)
        err(f"voice '{a.name}' restored" + (f"; {r['personas']} persona(s) use it again" if r["personas"] else ""))
        out(a.name)
    elif act == "purge":
        r = svc.purge_voices(a.name)
        err(f"trash emptied: {', '.join(r['purged']) or 'nothing'} ({_mb(r['bytes'])} freed)")
    elif act == "storage":
        st = svc.voice_storage()
        if a.json:
            out_json(st)
            return 0
        for v in st["voices"]:
            out(f"{v['name']:20s} {_mb(v['bytes']):>10s}  (voice {_mb(v['voice_bytes'])}, training files "
                f"{_mb(v['training_bytes'])})  base {v['base_model']}  personas: {', '.join(v['personas']) or '-'}")
        for b in st["bases"]:
            out(f"base {b['base_model']}: {_mb(b['bytes'])} shared by {', '.join(b['voices'])}")
        if st["default_personas"]:
            out(f"default voice: personas {', '.join(st['default_personas'])}")
        out(f"trash: {len(st['trash'])} voice(s), {_mb(st['trash_bytes'])}; total {_mb(st['total_bytes'])}")
    return 0
