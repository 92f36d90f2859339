"""Clip routes: one clip's details and edits (status, trim), its audio, waveform peaks and a video frame."""

from __future__ import annotations

from fastapi import Body, HTTPException
from fastapi.responses import Response


def register(app, svc, jobs) -> None:
    @app.get("/api/clips/{clip_id}")
    def clip(clip_id: int):
        return svc().clip(clip_id)

    @app.patch("/api/clips/{clip_id}")
    def edit_clip(clip_id: int, body: dict = Body(...)):
        s = svc()
        if "status" in body:
            s.set_clip_status(clip_id, body["status"])
        if "start" in body or "end" in body:
            s.trim_clip(clip_id, start=body.get("start"), end=body.get("end"),
                        relative=bool(body.get("relative", False)), snap=bool(body.get("snap", False)))
        return s.clip(clip_id)

    @app.get("/api/clips/{clip_id}/audio")
    def clip_audio(clip_id: int, pad: float = 0.0):
        from pipeline.media import encode_audio

        audio, rate = svc().clip_audio(clip_id, pad=min(max(pad, 0.0), 5.0))
        return Response(encode_audio(audio, rate, "wav"), media_type="audio/wav")

    @app.get("/api/clips/{clip_id}/waveform")
    def clip_waveform(clip_id: int, points: int = 200, pad: float = 1.0):
        import numpy as np

        s = svc()
        c = s.clip(clip_id)
        pad = min(max(pad, 0.0), 5.0)
        audio, rate = s.clip_audio(clip_id, pad=pad)
        mono = audio.mean(axis=1) if audio.ndim > 1 else audio
        points = max(10, min(points, 2000))
        chunks = np.array_split(np.abs(mono), points) if len(mono) else [np.zeros(1)] * points
        start = max(0.0, c["start"] - pad)
        return {"start": start, "end": start + len(mono) / rate, "clip_start": c["start"], "clip_end": c["end"],
                "peaks": [round(float(ch.max()) if len(ch) else 0.0, 4) for ch in chunks], "words": c["words"]}

    @app.get("/api/clips/{clip_id}/frame")
    def clip_frame(clip_id: int):
        s = svc()
        c = s.clip(clip_id)
        data = s.frame_at(c["media_id"], (c["start"] + c["end"]) / 2)
        if data is None:
            raise HTTPException(404, "no video frame for this clip")
        return Response(data, media_type="image/jpeg")
