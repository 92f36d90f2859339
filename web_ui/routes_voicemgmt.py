"""Voice management routes: rename, delete into the trash (409 with the personas when in use), restore, purge,
storage per voice / per shared base model / trash. Names are checked by safe_child in the workflow."""

from __future__ import annotations

from fastapi import Body
from fastapi.responses import JSONResponse

from pipeline.errors import BadInputError


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
            from pipeline.library.voices_admin import personas_using

            users = [p["name"] for p in personas_using(svc().lib.db, name)]
            return JSONResponse({"error": str(e), "personas": users, "in_use": True}, status_code=409)

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
