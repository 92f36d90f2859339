"""Job routes: the job list, one job, cancelling, and the server-sent 'jobs' events the panel listens to."""

from __future__ import annotations

import asyncio
import json

from fastapi import Request
from fastapi.responses import StreamingResponse

from pipeline.service import Service


def register(app, svc, jobs) -> None:
    state = app.state.weaver

    @app.get("/api/jobs")
    def list_jobs(limit: int = 50):
        return svc().jobs(limit)

    @app.get("/api/jobs/{job_id}")
    def job(job_id: int):
        return svc().job(job_id)

    @app.post("/api/jobs/{job_id}/cancel")
    def cancel_job(job_id: int):
        return svc().cancel_job(job_id)

    @app.get("/api/events")
    async def events(request: Request):
        """Server-sent events: a 'jobs' event whenever any job's state/progress changes."""

        async def stream():
            last = None
            s = Service(home=state.home)
            try:
                while not await request.is_disconnected():
                    rows = await asyncio.to_thread(lambda: [
                        {k: j[k] for k in ("id", "kind", "state", "progress", "stage", "message", "eta", "error", "media_id")}
                        for j in s.jobs(20)])
                    payload = json.dumps(rows)
                    if payload != last:
                        last = payload
                        yield f"event: jobs\ndata: {payload}\n\n"
                    await asyncio.sleep(0.4)
            finally:
                s.lib.close()

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})
