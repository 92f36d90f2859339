"""More chat routes: the persona gallery with avatars, conversations of a persona, Stop (cancels the reply being
generated, server side), and conversation export (txt, json, audio in the persona's voice)."""

from __future__ import annotations

import threading

from fastapi import HTTPException
from fastapi.responses import Response

from pipeline.progress import CancelToken

_ACTIVE: dict[int, CancelToken] = {}  # conversation id -> the cancel token of the reply being generated
_ACTIVE_LOCK = threading.Lock()


def reply_started(conversation_id: int, cancel: CancelToken) -> None:
    with _ACTIVE_LOCK:
        _ACTIVE[int(conversation_id)] = cancel


def reply_ended(conversation_id: int, cancel: CancelToken) -> None:
    with _ACTIVE_LOCK:
        if _ACTIVE.get(int(conversation_id)) is cancel:
            del _ACTIVE[int(conversation_id)]


def stop_reply(conversation_id: int) -> bool:
    """Cancel the reply being generated in a conversation (the model stops at its next token)."""
    with _ACTIVE_LOCK:
        cancel = _ACTIVE.get(int(conversation_id))
    if cancel is None:
        return False
    cancel.cancel()
    return True


def register(app, svc, jobs) -> None:
    @app.get("/api/chat/generation-defaults")
    def generation_defaults():
        from pipeline.chat.persona import DEFAULT_TEMPERATURE, GENERATION_DEFAULTS

        return {**GENERATION_DEFAULTS, "temperature": DEFAULT_TEMPERATURE}

    @app.get("/api/chat/gallery")
    def gallery():
        return svc().persona_gallery()

    @app.get("/api/chat/personas/{persona_id}/avatar")
    def avatar(persona_id: int):
        data = svc().persona_avatar(persona_id)
        if data is None:
            raise HTTPException(404, "no frame of this character")
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @app.get("/api/chat/personas/{persona_id}/conversations")
    def conversations(persona_id: int):
        from pipeline.chat.schema import list_conversations

        s = svc()
        s.persona(persona_id)
        return list_conversations(s.lib.db, persona_id)

    @app.post("/api/chat/conversations/{conversation_id}/stop")
    def stop(conversation_id: int):
        return {"stopped": stop_reply(conversation_id)}

    @app.get("/api/chat/conversations/{conversation_id}/export")
    def export(conversation_id: int, format: str = "txt"):
        data, media_type, name = svc().export_conversation(conversation_id, format)
        return Response(data, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{name}"'})
