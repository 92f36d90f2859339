"""Voiceprint routes: list (with the recordings each came from), rename, merge, delete."""

from __future__ import annotations

from fastapi import Body

from pipeline.errors import BadInputError


def register(app, svc, jobs) -> None:
    @app.get("/api/voiceprints")
    def voiceprints():
        return svc().voiceprints()

    @app.patch("/api/voiceprints/{vid}")
    def rename(vid: int, body: dict = Body(...)):
        name = body.get("name")
        if not isinstance(name, str):
            raise BadInputError("send {\"name\": \"...\"} to rename a voiceprint")
        return svc().rename_voiceprint(vid, name)

    @app.post("/api/voiceprints/{vid}/merge")
    def merge(vid: int, body: dict = Body(...)):
        into = body.get("into")
        if not isinstance(into, int) or isinstance(into, bool):
            raise BadInputError("send {\"into\": <voiceprint id>} to merge a voiceprint")
        return svc().merge_voiceprints(vid, into)

    @app.delete("/api/voiceprints/{vid}")
    def remove(vid: int):
        return svc().delete_voiceprint(vid)
