"""Library routes: media items (import by path or upload), their lines, speakers and characters, line edits
with undo, subtitle-track encodings, and clip export."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from fastapi import Body, Request

from pipeline.errors import BadInputError
from pipeline.files import safe_child, slug

from .bodies import fast_json, stream_body


def register(app, svc, jobs) -> None:
    state = app.state.weaver

    @app.get("/api/media")
    def list_media():
        return svc().list_media()

    @app.post("/api/media")
    def import_media(body: dict = Body(...)):
        """Import a local file by path (the panel's picker or drag-drop gives one); runs as a background job."""
        path = body.get("path")
        if not path:
            raise BadInputError("path is required")
        prepared = svc().prepare_ingest(path, subtitles=body.get("subtitles") or None, script=body.get("script") or None,
                                        audio_track=body.get("audio_track"), analyze=body.get("analyze", True))
        jobs.submit(f"job-{prepared.job_id}", lambda s, cancel: prepared.run(s, None, cancel))
        return {"job_id": prepared.job_id, "resumed": prepared.resumed}

    @app.post("/api/upload")
    async def upload(request: Request, name: str):
        """Receive a dropped file's bytes into the library's uploads folder; returns its path for /api/media.

        Only the file's base name is kept. The bytes go to a fresh hidden .part file (O_EXCL|O_NOFOLLOW, so a
        link planted there is never followed) renamed over the target when complete; a body over the upload cap
        gets 413 as soon as it passes it, and a client that goes away leaves no .part behind."""
        from pipeline.config import open_private, private_dir

        home = svc().lib.home
        base = name.replace("\\", "/").rsplit("/", 1)[-1] or "upload.bin"
        uploads = private_dir(safe_child(home, "uploads"))  # refuses an uploads/ that is a link out of the library
        target = safe_child(uploads, base)
        if target.is_dir():
            raise BadInputError(f"'{base}' is a folder in uploads/")
        tmp = uploads / f".{secrets.token_hex(8)}.part"
        try:
            with open_private(tmp, os.O_EXCL) as f:
                async for chunk in stream_body(request, state.upload_limit):
                    f.write(chunk)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)  # aborted, too large or failed: no partial file stays
        return {"path": str(target)}

    @app.get("/api/media/{media_id}")
    def show_media(media_id: int):
        return svc().show_media(media_id)

    @app.delete("/api/media/{media_id}")
    def remove_media(media_id: int):
        svc().remove_media(media_id)
        return {"removed": media_id}

    @app.get("/api/media/{media_id}/lines")
    def lines(media_id: int):
        return svc().lines(media_id)

    @app.get("/api/media/{media_id}/segments")
    def segments(media_id: int, character: str | None = None, offset: int = 0, limit: int = 5000):
        rows = svc().segments(media_id, character=character)[max(0, offset): max(0, offset) + max(1, min(limit, 20000))]
        return fast_json(rows)

    @app.get("/api/media/{media_id}/characters")
    def characters(media_id: int):
        return svc().characters(media_id)

    @app.get("/api/media/{media_id}/speakers")
    def speakers(media_id: int):
        return svc().speakers(media_id)

    @app.post("/api/media/{media_id}/analyze")
    def analyze(media_id: int):
        prepared = svc().prepare_analyze(media_id)
        jobs.submit(f"job-{prepared.job_id}", lambda s, cancel: prepared.run(s, None, cancel))
        return {"job_id": prepared.job_id}

    @app.post("/api/media/{media_id}/speakers/{speaker}/label")
    def label_speaker(media_id: int, speaker: str, body: dict = Body(...)):
        return svc().label_speaker(media_id, speaker, str(body.get("name", "")))

    @app.post("/api/media/{media_id}/speakers/merge")
    def merge(media_id: int, body: dict = Body(...)):
        return svc().merge_speakers(media_id, str(body["source"]), str(body["target"]))

    @app.post("/api/segments/{segment_id}/reassign")
    def reassign(segment_id: int, body: dict = Body(...)):
        return svc().reassign_line(segment_id, str(body.get("character", "")))

    @app.post("/api/segments/{segment_id}/split")
    def split(segment_id: int, body: dict = Body(...)):
        return svc().split_line(segment_id, float(body["at"]))

    @app.post("/api/segments/{segment_id}/text")
    def edit_text(segment_id: int, body: dict = Body(...)):
        return svc().edit_line_text(segment_id, str(body.get("text", "")))

    @app.post("/api/segments/{segment_id}/join")
    def join(segment_id: int, body: dict = Body(...)):
        if not str(body.get("next", "")).isdigit():
            raise BadInputError("next (the id of the line to join with) is required")
        return svc().join_lines(segment_id, int(body["next"]), force=bool(body.get("force")))

    def _reanalyse(media_id: int, res: dict, analyze: bool = True) -> dict:
        """Apply a change of what the lines come from: the item's analysis as a background job."""
        if analyze:
            prepared = svc().prepare_analyze(media_id)
            jobs.submit(f"job-{prepared.job_id}", lambda s, cancel: prepared.run(s, None, cancel))
            res["job_id"] = prepared.job_id
        return res

    @app.get("/api/media/{media_id}/subtitle-tracks")
    def subtitle_tracks(media_id: int):
        return svc().subtitle_tracks(media_id)

    @app.post("/api/media/{media_id}/subtitle-tracks")
    def add_subtitles(media_id: int, body: dict = Body(...)):
        """Add (or swap in, as primary) a subtitle file by path; a primary track is applied by analysing again."""
        if not body.get("path"):
            raise BadInputError("path is required")
        primary = bool(body.get("primary", True))
        res = svc().add_subtitles(media_id, str(body["path"]), encoding=body.get("encoding") or None, primary=primary)
        return _reanalyse(media_id, res, primary and body.get("analyze", True))

    @app.post("/api/subtitle-tracks/{track_id}/primary")
    def set_primary_subtitles(track_id: int):
        res = svc().set_primary_subtitles(track_id)
        return _reanalyse(res["media_id"], res)

    @app.delete("/api/subtitle-tracks/{track_id}")
    def remove_subtitle_track(track_id: int):
        return svc().remove_subtitle_track(track_id)

    @app.post("/api/media/{media_id}/script")
    def attach_script(media_id: int, body: dict = Body(...)):
        """Attach a screenplay (``script``: a file path or a script id; null detaches) and analyse again."""
        script = body.get("script")
        res = svc().attach_script(media_id, None if script in (None, "") else str(script))
        return _reanalyse(media_id, res, body.get("analyze", True))

    @app.get("/api/subtitle-tracks/{track_id}/encoding")
    def subtitle_encoding(track_id: int):
        return svc().subtitle_encoding(track_id)

    @app.post("/api/subtitle-tracks/{track_id}/encoding")
    def set_subtitle_encoding(track_id: int, body: dict = Body(...)):
        return svc().set_subtitle_encoding(track_id, str(body.get("encoding", "")))

    @app.post("/api/media/{media_id}/undo")
    def undo(media_id: int):
        return {"undone": svc().undo(media_id)}

    @app.get("/api/media/{media_id}/edits")
    def edits(media_id: int):
        return svc().edits(media_id)

    @app.post("/api/media/{media_id}/export")
    def export(media_id: int, body: dict = Body(default={})):
        """Export clips into <library>/exports/<name> (name must stay inside that folder)."""
        s = svc()
        name = body.get("name") or f"item-{media_id}-{slug(body.get('character') or 'all')}"
        out = safe_child(safe_child(s.lib.home, "exports"), name)
        path = s.export_clips(media_id, out, character=body.get("character") or None, video=bool(body.get("video")),
                              isolate=bool(body.get("isolate")))
        return {"path": str(path), "files": sorted(p.name for p in Path(path).iterdir())}
