"""Chat routes: personas (gallery, avatars, cards), conversations, streamed replies (SSE over POST) with
per-sentence voice audio, Stop (cancels the reply being generated, server side) and export (txt, json, audio)."""

from __future__ import annotations

import base64
import json
import queue
import threading

from fastapi import Body, HTTPException, Request
from fastapi.responses import Response, StreamingResponse

from pipeline.errors import BadInputError, WeaverError
from pipeline.progress import CancelToken

from .bodies import read_body, stream_body

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
        return svc().persona_conversations(persona_id)

    @app.post("/api/chat/conversations/{conversation_id}/stop")
    def stop(conversation_id: int):
        return {"stopped": stop_reply(conversation_id)}

    @app.get("/api/chat/conversations/{conversation_id}/export")
    def export(conversation_id: int, format: str = "txt"):
        data, media_type, name = svc().export_conversation(conversation_id, format)
        return Response(data, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{name}"'})

    @app.get("/api/chat/models")
    def chat_models():
        return svc().chat_models()

    @app.get("/api/chat/personas")
    def personas():
        return svc().personas()

    @app.post("/api/chat/personas")
    def persona_for(body: dict = Body(...)):
        return svc().persona_for(int(body["media_id"]), str(body["character"]))

    @app.put("/api/chat/personas/{persona_id}")
    def update_persona(persona_id: int, body: dict = Body(...)):
        return svc().update_persona(persona_id, body)

    @app.get("/api/chat/personas/{persona_id}/card")
    def export_card(persona_id: int, format: str = "json"):
        from pipeline.chat.cards import write_card_json

        if format == "png":  # with the character's best frame as the picture
            return Response(svc().persona_card_png(persona_id), media_type="image/png")
        return Response(write_card_json(svc().persona(persona_id)), media_type="application/json")

    @app.post("/api/chat/personas/import")
    async def import_card(request: Request):
        data = await read_body(request, app.state.weaver.card_limit)  # 413 past the cap, read chunk by chunk
        return svc().import_card_bytes(data)  # the same card again updates its persona

    @app.post("/api/chat/personas/{persona_id}/conversations")
    def start(persona_id: int):
        return {"id": svc().start_conversation(persona_id)}

    @app.get("/api/chat/conversations/{conversation_id}")
    def conversation(conversation_id: int):
        return [m for m in svc().conversation(conversation_id) if m["role"] != "system"]  # not the summaries

    @app.post("/api/chat/listen")
    async def listen(request: Request):
        """Push-to-talk: the browser's recording (any container ffmpeg reads) → text."""
        import tempfile
        from pathlib import Path

        from pipeline.media import ANALYSIS_RATE, load_audio

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "utterance.bin"
            size = 0
            with open(path, "wb") as f:  # streamed to disk: never more than one chunk in memory
                async for chunk in stream_body(request, app.state.weaver.listen_limit):
                    f.write(chunk)
                    size += len(chunk)
            if not size:
                raise BadInputError("empty recording")
            audio = load_audio(path, ANALYSIS_RATE)
        return {"text": svc().listen(audio, ANALYSIS_RATE)}

    @app.post("/api/chat/conversations/{conversation_id}/send")
    def send(conversation_id: int, request: Request, body: dict = Body(...)):
        """Stream the reply as server-sent events: delta (text), audio (a sentence's WAV, base64), done, error."""
        from pipeline.service import Service
        from pipeline.media import encode_audio


        if body.get("regenerate"):  # drop the last reply and answer its message again
            shown = body.get("text") if isinstance(body.get("text"), str) else None
            text = svc().chat_undo_last(conversation_id, shown)
        else:
            text = body.get("text")
        if not isinstance(text, str):
            raise BadInputError("'text' is required")
        speak = bool(body.get("speak"))
        events: queue.Queue = queue.Queue()
        cancel = CancelToken()
        home = svc().lib.home
        reply_started(conversation_id, cancel)  # Stop (POST .../stop) cancels it

        def work():
            s = Service(home=home)
            try:
                reply = s.chat_send(conversation_id, text, speak=speak, cancel=cancel, summarise=False,
                                    on_delta=lambda d: events.put(("delta", {"text": d})),
                                    on_sentence_audio=lambda i, sentence, audio, rate: events.put(
                                        ("audio", {"index": i, "sentence": sentence,
                                                   "wav": base64.b64encode(encode_audio(audio, rate, "wav")).decode()})))
                events.put(("done", reply.to_dict()))
                if reply.dropped_messages and not reply.cancelled:  # the stream ends first: the reply is not held up
                    reply_ended(conversation_id, cancel)
                    events.put(None)
                    s.chat_update_summary(conversation_id, reply.dropped_messages)
            except WeaverError as e:
                events.put(("error", {"error": str(e)}))
            except Exception as e:  # keep the stream well-formed
                events.put(("error", {"error": f"internal error: {e}"}))
            finally:
                reply_ended(conversation_id, cancel)
                s.lib.close()
                events.put(None)

        threading.Thread(target=work, daemon=True, name="chat-send").start()

        def stream():
            try:
                while True:
                    item = events.get()
                    if item is None:
                        return
                    kind, data = item
                    yield f"event: {kind}\ndata: {json.dumps(data)}\n\n"
            finally:
                cancel.cancel()  # the page went away: stop generating

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})
