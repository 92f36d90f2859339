"""Instant-voice route: POST /api/voices/instant starts the clone job (Pocket TTS) for a character; the panel
follows its progress through the jobs events like any other job."""

from __future__ import annotations

from fastapi import Body

from pipeline.errors import BadInputError


def register(app, svc, jobs) -> None:
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
