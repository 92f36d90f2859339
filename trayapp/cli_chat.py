"""`weaver chat-models`, `weaver chat CHARACTER`, `weaver persona`, `weaver card import|export`, `weaver settings`."""

from __future__ import annotations

import sys

from pipeline.errors import BadInputError

from .commands import command, err, out, out_json, service


def add_parsers(sub) -> None:
    s = sub.add_parser("chat-models", help="chat providers (Ollama, OpenAI-compatible, embedded): reachable? models?")
    s.add_argument("--json", action="store_true")
    s = sub.add_parser("chat", help="talk with a character in the terminal (one message per line; Ctrl-D ends)")
    s.add_argument("character", help="character name (or persona id with --persona)")
    s.add_argument("--item", type=int, help="library item the character comes from (default: the newest with that name)")
    s.add_argument("--persona", action="store_true", help="CHARACTER is a persona id")
    s.add_argument("--speak", action="store_true", help="also speak each reply sentence in the character's voice")
    s.add_argument("--new", action="store_true", help="start a new conversation (default: continue the last one)")
    s = sub.add_parser("chat-export", help="export a conversation as text, JSON or audio (the replies in the "
                                           "persona's voice)")
    s.add_argument("conversation", type=int)
    s.add_argument("file", help="output file; its suffix picks the format: .txt .json .wav .flac .mp3 .opus")
    s.add_argument("--voice", action="store_true",
                   help="hands-free: listen on the microphone, answer aloud, talk over the reply to interrupt")
    s.add_argument("--mic", help="microphone device id for --voice (see `weaver devices`)")
    s.add_argument("--speaker", help="output device id for --voice")
    s = sub.add_parser("persona", help="show or edit a character's persona (system prompt, model, voice…)")
    s.add_argument("item", type=int)
    s.add_argument("character")
    s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="change a field: system_prompt, model, provider, temperature, voice, greeting, "
                        "example_lines (a|b), or a generation control: max_tokens, top_p, repetition_penalty, "
                        "max_chars, stop (a|b)")
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
    row = svc.find_character(name, item)
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
            k = k.strip()
            if k == "temperature":
                try:
                    v = float(v)
                except ValueError:
                    raise BadInputError(f"temperature must be a number (got {v!r})") from None
            elif k == "example_lines":
                v = [x for x in v.split("|") if x.strip()]
            changes[k] = v  # controls are typed by the service
        p = svc.update_persona(p["id"], changes)
    if a.json:
        out_json(p)
    else:
        from pipeline.chat.persona import Persona

        gen = Persona.from_dict(p).generation_options()
        out(f"persona {p['id']}: {p['name']} (voice {p['voice'] or '-'}, model {p['model'] or 'default'})")
        out("generation: " + ", ".join(f"{k}={'|'.join(v) if isinstance(v, list) else v}" for k, v in gen.items()))
        if p.get("greeting"):
            out(f"greeting: {p['greeting']}")
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


@command("chat-export")
def cmd_chat_export(a) -> int:
    from pathlib import Path

    path = Path(a.file)
    data, _, _ = service().export_conversation(a.conversation, path.suffix.lstrip(".") or "txt")
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(path)
    out(str(path))
    return 0


class StoppablePlayer:
    """Plays reply audio in short blocks so Ctrl-C silences it at once (``stop()``; ``reset()`` for the next)."""

    BLOCK_S = 0.05

    def __init__(self):
        import threading

        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def reset(self) -> None:
        self._stop.clear()

    def __call__(self, audio, rate: int) -> None:
        import numpy as np

        if self._stop.is_set():
            return
        try:
            from capture.devices import soundcard_module

            speaker = soundcard_module().default_speaker()
            x = np.asarray(audio, dtype=np.float32).reshape(-1)
            block = max(1, int(rate * self.BLOCK_S))
            with speaker.player(samplerate=int(rate), channels=1, blocksize=block) as player:
                for i in range(0, len(x), block):
                    if self._stop.is_set():
                        return
                    player.play(x[i:i + block])
        except Exception:  # noqa: BLE001 - no sound server / device: the text reply is still there
            pass


def _send_stoppable(svc, cid: int, text: str, *, speak: bool, player, on_delta):
    """chat_send on a worker thread; Ctrl-C cancels the generation and the audio and returns (None, True)."""
    import threading

    from pipeline.progress import CancelToken

    cancel = CancelToken()
    result: dict = {}

    def work():
        try:
            result["reply"] = svc.chat_send(cid, text, speak=speak, player=player, on_delta=on_delta, cancel=cancel)
        except BaseException as e:  # noqa: BLE001 - re-raised on the main thread
            result["error"] = e

    worker = threading.Thread(target=work, name="chat-reply", daemon=True)
    worker.start()
    interrupted = False
    while worker.is_alive():
        try:
            worker.join(0.1)
        except KeyboardInterrupt:
            interrupted = True
            cancel.cancel()
            if player is not None:
                player.stop()
    if "error" in result:
        raise result["error"]
    return result.get("reply"), interrupted


@command("chat")
def cmd_chat(a) -> int:
    import signal

    svc = service()
    if a.persona:
        persona_id = int(a.character)
        svc.persona(persona_id)
    else:
        media_id, name = _find_character(svc, a.character, a.item)
        persona_id = svc.persona_for(media_id, name)["id"]
    persona = svc.persona(persona_id)
    earlier = [] if a.new else svc.persona_conversations(persona_id)
    cid = earlier[0]["id"] if earlier else svc.start_conversation(persona_id)
    if getattr(a, "voice", False):
        from .voice_chat import run_voice_chat

        return run_voice_chat(svc, cid, persona.name, mic=a.mic, speaker=a.speaker)
    player = None
    if a.speak:
        player = StoppablePlayer()
    interactive = sys.stdin.isatty()
    if interactive:
        err(f"chatting with {persona.name} (conversation {cid}{', continued' if earlier else ''}); "
            "Ctrl-C stops a reply, Ctrl-D ends")
    shown = svc.conversation_messages(cid)
    for m in shown[-6:] if earlier else shown:
        if m["role"] == "assistant":
            out(f"{persona.name}: {m['content']}")
        elif m["role"] == "user" and interactive:
            err(f"you> {m['content']}")
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C raises KeyboardInterrupt here
    while True:
        if interactive:
            print("you> ", end="", file=sys.stderr, flush=True)
        try:
            line = sys.stdin.readline()
        except KeyboardInterrupt:
            print(file=sys.stderr)
            break
        if not line:
            break
        if not line.strip():
            continue
        print(f"{persona.name}: ", end="", flush=True)
        if player is not None:
            player.reset()
        reply, interrupted = _send_stoppable(svc, cid, line.rstrip("\n"), speak=a.speak, player=player,
                                             on_delta=lambda d: print(d, end="", flush=True))
        print(flush=True)
        if interrupted:
            err("(stopped)")
        elif reply is not None and reply.error:
            err(f"weaver: error: {reply.error}" + (" (partial reply kept)" if reply.partial else ""))
    out(str(cid))
    return 0
