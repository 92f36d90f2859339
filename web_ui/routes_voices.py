"""Voices routes: voice management first (rename, delete into the trash — 409 with the personas when in use —,
restore, purge, storage; names checked by safe_child in the workflow), datasets, training, the instant voice
(POST /api/voices/instant starts the Pocket TTS clone job), and the OpenAI-compatible speech endpoint
(POST /v1/audio/speech) for other local apps."""

from __future__ import annotations

from fastapi import Body
from fastapi.responses import JSONResponse, Response

from pipeline.errors import BadInputError

MEDIA_TYPES = {"wav": "audio/wav", "mp3": "audio/mpeg", "flac": "audio/flac", "opus": "audio/ogg", "aac": "audio/aac",
               "pcm": "audio/L16"}


def register(app, svc, jobs) -> None:
    @app.get("/api/voices/manage/storage")
    def storage():
        return svc().voice_storage()

    @app.post("/api/voices/manage/rename")
    def rename(body: dict = Body(...)):
        old, new = body.get("old"), body.get("new")
        if not isinstance(old, str) or not isinstance(new, str):
            raise BadInputError("'old' and 'new' voice names are required")
        return svc().rename_voice(old, new.strip())

    @app.post("/api/voices/manage/delete")
    def delete(body: dict = Body(...)):
        from pipeline.workflows.voice_admin import VoiceInUseError

        name = body.get("name")
        if not isinstance(name, str):
            raise BadInputError("'name' is required")
        try:
            return svc().delete_voice(name, reassign=bool(body.get("reassign")))
        except VoiceInUseError as e:
            return JSONResponse({"error": str(e), "personas": e.personas, "in_use": True}, status_code=409)

    @app.post("/api/voices/manage/restore")
    def restore(body: dict = Body(...)):
        name = body.get("name")
        if not isinstance(name, str):
            raise BadInputError("'name' is required")
        return svc().restore_voice(name)

    @app.post("/api/voices/manage/purge")
    def purge(body: dict = Body(default={})):
        name = (body or {}).get("name")
        if name is not None and not isinstance(name, str):
            raise BadInputError("'name' must be a voice name")
        return svc().purge_voices(name)

    @app.get("/api/voices")
    def voices():
        return svc().voices()

    @app.get("/api/voices/datasets")
    def datasets():
        return svc().datasets()

    @app.post("/api/voices/datasets")
    def build_dataset(body: dict = Body(...)):
        isolate = body.get("isolate")
        return svc().build_voice_dataset(int(body["media_id"]), str(body["character"]),
                                         for_backend=str(body.get("for_backend") or "orpheus"),
                                         isolate=None if isolate is None else bool(isolate),
                                         include_check_text=bool(body.get("include_check_text")))

    @app.post("/api/voices/train")
    def train(body: dict = Body(...)):
        prepared = svc().prepare_training(str(body["name"]), int(body["dataset_id"]), backend=body.get("backend", "auto"),
                                          steps=int(body.get("steps", 60)), base_model=body.get("base_model") or None,
                                          snac_dir=body.get("snac_dir") or None)
        jobs.submit(f"job-{prepared.job_id}", lambda s, cancel: prepared.run(s, None, cancel))
        return {"job_id": prepared.job_id}

    @app.get("/api/voices/training")
    def training():
        return svc().training_runs()

    @app.delete("/api/voices/{name}")
    def remove(name: str):
        svc().remove_voice(name)
        return {"removed": name}

    @app.post("/v1/audio/speech")
    def speech(body: dict = Body(...)):
        """OpenAI-compatible text-to-speech: {model, voice, input, response_format}."""
        from pipeline.media import encode_audio

        text = body.get("input")
        if not isinstance(text, str) or not text.strip():
            raise BadInputError("'input' must be non-empty text")
        fmt = (body.get("response_format") or "mp3").lower()
        if fmt not in MEDIA_TYPES:
            raise BadInputError(f"response_format must be one of {', '.join(MEDIA_TYPES)}")
        voice = body.get("voice") or "default"
        audio, rate = svc().say(voice, text)
        return Response(encode_audio(audio, rate, fmt), media_type=MEDIA_TYPES[fmt])

    @app.get("/v1/models")
    def models():
        return {"object": "list", "data": [{"id": v["name"], "object": "model", "owned_by": "voice-weaver"}
                                           for v in svc().voices()]}

    @app.post("/api/voices/instant")
    def instant_voice(body: dict = Body(...)):
        try:
            media_id, character = int(body["media_id"]), str(body["character"])
        except (KeyError, TypeError, ValueError):
            raise BadInputError("send {media_id, character[, name]}") from None
        prepared = svc().prepare_instant_voice(media_id, character, name=body.get("name") or None,
                                               language=body.get("language") or None)
        jobs.submit(f"job-{prepared.job_id}", lambda s, cancel: prepared.run(s, None, cancel))
        return {"job_id": prepared.job_id}
