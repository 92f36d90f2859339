"""A conversation as plain text, as JSON, and as audio: every reply spoken in the persona's voice, in order,
with a short pause between replies (the user's turns are left silent-free: only the character speaks)."""

from __future__ import annotations

import json
import time
from typing import Callable

import numpy as np

from ..errors import BadInputError
from ..media import resample
from .conversation import speakable

PAUSE_S = 0.5
EXPORT_FORMATS = ("txt", "json", "wav", "flac", "mp3", "opus")


def as_text(persona_name: str, messages: list[dict], title: str | None = None) -> str:
    head = f"Conversation with {persona_name}" + (f" ({title})" if title and title != persona_name else "")
    out = [head, "=" * len(head), ""]
    for m in messages:
        if m["role"] not in ("user", "assistant"):
            continue
        who = "You" if m["role"] == "user" else persona_name
        stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(m["created_at"])) if m.get("created_at") else ""
        out.append(f"[{stamp}] {who}: {m['content']}" + (" (cut short)" if m.get("partial") else ""))
    return "\n".join(out) + "\n"


def as_json(persona: dict, conversation_id: int, messages: list[dict]) -> str:
    return json.dumps({"conversation": conversation_id, "persona": {k: persona.get(k) for k in
                                                                   ("id", "name", "voice", "source_title")},
                       "messages": [{k: m.get(k) for k in ("role", "content", "partial", "created_at")}
                                    for m in messages if m["role"] in ("user", "assistant")]},
                      ensure_ascii=False, indent=2)


def as_audio(messages: list[dict], tts: Callable[[str], tuple[np.ndarray, int]]) -> tuple[np.ndarray, int]:
    """The replies spoken one after another (each reply's speakable text in one synthesis call)."""
    parts: list[np.ndarray] = []
    rate = None
    for m in messages:
        if m["role"] != "assistant":
            continue
        text = speakable(m["content"] or "")
        if not text:
            continue
        audio, r = tts(text)
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        if rate is None:
            rate = int(r)
        elif int(r) != rate:
            audio = resample(audio, int(r), rate)
        if parts:
            parts.append(np.zeros(int(PAUSE_S * rate), dtype=np.float32))
        parts.append(audio)
    if not parts:
        raise BadInputError("the conversation has no reply to speak yet")
    return np.concatenate(parts), rate
