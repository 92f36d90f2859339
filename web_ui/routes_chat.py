"""Chat routes: personas, conversations, streamed replies (SSE over POST) with per-sentence voice audio."""

from __future__ import annotations

import base64
import json
import queue
import threading

from fastapi import Body, Request
from fastapi.responses import Response, StreamingResponse

from pipeline.errors import BadInputError, WeaverError
from pipeline.progress import CancelToken

from .bodies import read_body, stream_body


def register(app, svc, jobs) -> None:
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
        from pipeline.voices.synth import encode_audio

        from .routes_chat_extra import reply_ended, reply_started

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
