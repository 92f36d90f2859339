"""Chat workflows on the service: card import that updates a card imported before, the character's best frame as
avatar (in the gallery and the PNG card), conversation export (text, JSON, audio), Regenerate, and summaries of
long conversations. Functions take the Service (``svc``) and keep SQL in pipeline.library.chat."""

from __future__ import annotations

import io
import os
from pathlib import Path

from ..errors import BadInputError, WeaverError
from ..library import chat as sql

AVATAR_DIR = "avatars"


# -- cards and avatars ---------------------------------------------------------------------------------
def _avatar_path(svc, persona_id: int) -> Path:
    return svc.lib.home / AVATAR_DIR / f"persona_{int(persona_id)}.jpg"


def _save_avatar(svc, persona_id: int, image) -> None:
    path = _avatar_path(svc, persona_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="JPEG", quality=88)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)


def import_card_bytes(svc, data: bytes) -> dict:
    """Import a V2 card (JSON or PNG bytes); the same card imported again updates its persona (same name and
    source title) instead of adding a second one. A PNG card's picture becomes the avatar."""
    from ..chat.cards import PNG_MAGIC, read_card
    from ..library.chat import load_persona, save_persona

    persona = read_card(data)
    with svc.lib.atomic() as db:
        twin = sql.imported_twin(db, persona.name, persona.source_title)
        if twin is not None:
            persona.character_id = load_persona(db, twin).character_id
        persona.id = twin
        save_persona(db, persona)
    if data[:8] == PNG_MAGIC:
        from PIL import Image

        try:
            _save_avatar(svc, persona.id, Image.open(io.BytesIO(data)))
        except (OSError, ValueError):
            pass  # the card text is what matters; a broken picture leaves the frame avatar
    d = persona.to_dict()
    d["updated"] = twin is not None
    return d


def import_card_file(svc, path: str | os.PathLike) -> dict:
    from ..chat.cards import card_file_bytes

    return import_card_bytes(svc, card_file_bytes(path))


def avatar_jpeg(svc, persona_id: int) -> bytes | None:
    """The persona's avatar: the stored one, else the best frame of its character (cached), else None."""
    from ..chat.avatar import best_frame, portrait

    path = _avatar_path(svc, persona_id)
    if path.is_file():
        return path.read_bytes()
    persona = svc.persona(persona_id)
    if persona.character_id is None:
        return None
    frames = []
    for media_id, t in sql.character_moments(svc.lib.db, persona.character_id):
        try:
            frames.append(svc.frame_at(media_id, t, width=640))
        except (WeaverError, OSError, ValueError):
            continue
    best = best_frame(frames)
    if best is None:
        return None
    _save_avatar(svc, persona_id, portrait(best))
    return path.read_bytes()


def card_png(svc, persona_id: int) -> bytes:
    """The persona as a PNG card with its avatar (the placeholder gradient only when there is no frame)."""
    from ..chat.cards import write_card_png

    return write_card_png(svc.persona(persona_id), avatar_jpeg(svc, persona_id))


def export_card_file(svc, persona_id: int, path: str | os.PathLike) -> str:
    from ..chat.cards import export_card

    return str(export_card(svc.persona(persona_id), path, avatar_jpeg(svc, persona_id)))


def gallery(svc) -> list[dict]:
    """Every persona with its conversation count and whether it has an avatar (computing it if needed)."""
    out = []
    for p in svc.personas():
        try:
            has = avatar_jpeg(svc, p["id"]) is not None
        except WeaverError:
            has = False
        out.append({**p, "conversations": sql.conversation_count(svc.lib.db, p["id"]), "has_avatar": has})
    return out


# -- conversations -------------------------------------------------------------------------------------
def export_conversation(svc, conversation_id: int, fmt: str = "txt") -> tuple[bytes, str, str]:
    """(data, media type, file name) of a conversation as txt, json, or audio (wav/flac/mp3/opus) in the
    persona's voice."""
    from ..chat import export

    fmt = (fmt or "txt").lower().lstrip(".")
    if fmt not in export.EXPORT_FORMATS:
        raise BadInputError(f"unknown export format '{fmt}' (choose: {', '.join(export.EXPORT_FORMATS)})")
    persona = svc.persona(sql.conversation_persona_id(svc.lib.db, conversation_id))
    messages = sql.messages(svc.lib.db, conversation_id)
    stem = f"conversation_{conversation_id}_{persona.name.replace(' ', '_')}"
    if fmt == "txt":
        return export.as_text(persona.name, messages).encode("utf-8"), "text/plain; charset=utf-8", f"{stem}.txt"
    if fmt == "json":
        return (export.as_json(persona.to_dict(), conversation_id, messages).encode("utf-8"), "application/json",
                f"{stem}.json")
    from ..chat.conversation import voice_tts
    from ..voices.synth import encode_audio

    audio, rate = export.as_audio(messages, voice_tts(persona.voice or "default", svc.voices_dir))
    types = {"wav": "audio/wav", "flac": "audio/flac", "mp3": "audio/mpeg", "opus": "audio/ogg"}
    return encode_audio(audio, rate, fmt), types[fmt], f"{stem}.{fmt}"


def undo_last_exchange(svc, conversation_id: int, expected: str | None = None) -> str:
    with svc.lib.atomic() as db:
        return sql.undo_last_exchange(db, conversation_id, expected)


def summary(svc, conversation_id: int) -> tuple[str, int]:
    return sql.latest_summary(svc.lib.db, conversation_id)


def update_summary(svc, conversation_id: int, persona, provider, model, dropped: int) -> str | None:
    """After a turn whose oldest ``dropped`` messages no longer fit: summarise them (with the previous summary)
    and store it. Returns the new summary, or None when nothing new was dropped or the model failed."""
    from ..chat.memory import summarise

    previous, covers = sql.latest_summary(svc.lib.db, conversation_id)
    if dropped <= covers:
        return None
    chat = [m for m in sql.messages(svc.lib.db, conversation_id) if m["role"] in ("user", "assistant")]
    try:
        text = summarise(provider, model, chat[covers:dropped], persona.name, previous)
    except WeaverError:
        return None
    with svc.lib.atomic() as db:
        sql.save_summary(db, conversation_id, text, dropped)
    return text
