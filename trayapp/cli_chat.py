"""`weaver chat-models`, `weaver chat CHARACTER`, `weaver persona`, `weaver card import|export`, `weaver settings`."""

from __future__ import annotations

import sys

from pipeline.errors import BadInputError

from .cli import EXTRA_PARSERS, command, err, out, out_json, service


def add_parsers(sub) -> None:
    s = sub.add_parser("chat-models", help="chat providers (Ollama, OpenAI-compatible, embedded): reachable? models?")
    s.add_argument("--json", action="store_true")
    s = sub.add_parser("chat", help="talk with a character in the terminal (one message per line; Ctrl-D ends)")
    s.add_argument("character", help="character name (or persona id with --persona)")
    s.add_argument("--item", type=int, help="library item the character comes from (default: the newest with that name)")
    s.add_argument("--persona", action="store_true", help="CHARACTER is a persona id")
    s.add_argument("--speak", action="store_true", help="also speak each reply sentence in the character's voice")
    s.add_argument("--voice", action="store_true",
                   help="hands-free: listen on the microphone, answer aloud, talk over the reply to interrupt")
    s.add_argument("--mic", help="microphone device id for --voice (see `weaver devices`)")
    s.add_argument("--speaker", help="output device id for --voice")
    s = sub.add_parser("persona", help="show or edit a character's persona (system prompt, model, voice…)")
    s.add_argument("item", type=int)
    s.add_argument("character")
    s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="change a field: system_prompt, model, provider, temperature, voice, greeting, or a "
                        "generation control: max_tokens, top_p, repetition_penalty, max_chars, stop (a|b)")
    s.add_argument("--json", action="store_true")
    s = sub.add_parser("card", help="import/export Character Card V2 (JSON or PNG)")
    csub = s.add_subparsers(dest="card_action", required=True)
    e = csub.add_parser("export")
    e.add_argument("persona", type=int)
    e.add_argument("file")
    i = csub.add_parser("import")
    i.add_argument("file")
    s = sub.add_parser("settings", help="show every setting, or get/set one (`weaver settings set chat_threads 2`)")
    ssub = s.add_subparsers(dest="settings_action")
    g = ssub.add_parser("get")
    g.add_argument("key")
    st = ssub.add_parser("set")
    st.add_argument("key")
    st.add_argument("value", help="typed by the setting: true/false, numbers, text, none to clear, JSON for dicts")
    s.add_argument("--json", action="store_true")


_SECRET_KEYS = ("api_key",)


def _show_value(key: str, value) -> str:
    import json

    if value is not None and any(k in key for k in _SECRET_KEYS):
        return "(set)"
    return "none" if value is None else json.dumps(value) if isinstance(value, (dict, list, bool)) else str(value)


@command("settings")
def cmd_settings(a) -> int:
    svc = service()
    action = getattr(a, "settings_action", None)
    if action == "get":
        value = svc.get_setting(a.key)
        out_json(value) if a.json else out(_show_value("", value))
        return 0
    if action == "set":
        value = svc.set_setting(a.key, a.value)
        out_json({a.key: value}) if a.json else out(f"{a.key} = {_show_value(a.key, value)}")
        return 0
    rows = svc.settings_dict()
    if a.json:
        out_json(rows)
        return 0
    width = max(len(k) for k in rows)
    for k, v in rows.items():
        out(f"{k:{width}s}  {_show_value(k, v)}")
    return 0


EXTRA_PARSERS.append(add_parsers)


@command("chat-models")
def cmd_chat_models(a) -> int:
    rows = service().chat_models()
    if a.json:
        out_json(rows)
        return 0
    for r in rows:
        out(f"{r['provider']:9s} {'reachable' if r['reachable'] else 'unreachable'}: {r['message']}")
        for m in r["models"]:
            out(f"{'':10s}- {m.get('name')}")
    return 0


def _find_character(svc, name: str, item: int | None) -> tuple[int, str]:
    sql = "SELECT media_id, name FROM characters WHERE lower(name) = lower(?)"
    args: list = [name]
    if item is not None:
        sql += " AND media_id = ?"
        args.append(item)
    row = svc.lib.db.execute(sql + " ORDER BY media_id DESC LIMIT 1", args).fetchone()
    if row is None:
        raise BadInputError(f"no character named '{name}'" + (f" in item {item}" if item else "") + " (see `weaver characters ITEM`)")
    return row[0], row[1]


@command("persona")
def cmd_persona(a) -> int:
    svc = service()
    p = svc.persona_for(a.item, a.character)
    if a.set:
        changes = {}
        for kv in a.set:
            if "=" not in kv:
                raise BadInputError(f"--set needs KEY=VALUE, got {kv!r}")
            k, v = kv.split("=", 1)
            changes[k.strip()] = float(v) if k.strip() == "temperature" else v  # controls are typed by the service
        p = svc.update_persona(p["id"], changes)
    if a.json:
        out_json(p)
    else:
        out(f"persona {p['id']}: {p['name']} (voice {p['voice'] or '-'}, model {p['model'] or 'default'}, "
            f"temperature {p['temperature']})")
        out(p["system_prompt"])
    return 0


@command("card")
def cmd_card(a) -> int:
    svc = service()
    if a.card_action == "export":
        out(svc.export_card(a.persona, a.file))
    else:
        p = svc.import_card(a.file)
        err(f"imported '{p['name']}'")
        out(str(p["id"]))
    return 0


@command("chat")
def cmd_chat(a) -> int:
    svc = service()
    if a.persona:
        persona_id = int(a.character)
        svc.persona(persona_id)
    else:
        media_id, name = _find_character(svc, a.character, a.item)
        persona_id = svc.persona_for(media_id, name)["id"]
    cid = svc.start_conversation(persona_id)
    persona = svc.persona(persona_id)
    if getattr(a, "voice", False):
        from .cli_voice import run_voice_chat

        return run_voice_chat(svc, cid, persona.name, mic=a.mic, speaker=a.speaker)
    player = None
    if a.speak:
        from .playback import play_audio

        player = play_audio
    interactive = sys.stdin.isatty()
    if interactive:
        err(f"chatting with {persona.name} (conversation {cid}); Ctrl-D to end")
    for greeting in (m["content"] for m in svc.conversation(cid) if m["role"] == "assistant"):
        out(f"{persona.name}: {greeting}")
    while True:
        if interactive:
            print("you> ", end="", file=sys.stderr, flush=True)
        line = sys.stdin.readline()
        if not line:
            break
        if not line.strip():
            continue
        print(f"{persona.name}: ", end="", flush=True)
        reply = svc.chat_send(cid, line.rstrip("\n"), speak=a.speak, player=player,
                              on_delta=lambda d: print(d, end="", flush=True))
        print(flush=True)
        if reply.error:
            err(f"weaver: error: {reply.error}" + (" (partial reply kept)" if reply.partial else ""))
    out(str(cid))
    return 0
