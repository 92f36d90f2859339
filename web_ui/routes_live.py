"""Live lines routes: the streaming analyser's lines as server-sent events (the panel) or long-poll JSON
(`weaver capture watch`), and keeping a live line as a clip."""

from __future__ import annotations

import asyncio
import json

from fastapi import Body, Request
from fastapi.responses import StreamingResponse

from pipeline.errors import WeaverError
from pipeline.workflows.recordings import manager_for


def register(app, svc, jobs) -> None:
    def manager():
        return manager_for(svc().lib.home)

    def poll(since: int, timeout: float) -> dict:
        m = manager()
        live = m.live
        if live is None:
            return {"seq": since, "events": [], "live": None, "state": m.status()["state"], "session": None}
        seq, events = live.events_since(since, timeout)
        return {"seq": seq, "events": events, "live": live.status(), "state": m.status()["state"],
                "session": id(live)}

    @app.get("/api/live/lines")
    def lines(since: int = 0, wait: float = 0.0, session: int | None = None):
        """Events after `since` (waiting up to `wait` s for one); all lines so far when `since` is 0 or the
        analyser changed (a new Listen): then ``lines`` holds the snapshot."""
        res = poll(since, max(0.0, min(wait, 10.0)))
        live = manager().live
        if live is not None and (since == 0 or (session is not None and session != res["session"])):
            res["lines"] = live.snapshot()
        return res

    @app.get("/api/live/events")
    async def events(request: Request):
        """Server-sent events: 'snapshot' (all lines so far), then 'line' (a new or grown line) and 'notice'."""

        async def stream():
            seq, session = 0, None
            while not await request.is_disconnected():
                res = await asyncio.to_thread(poll, seq, 1.0)
                if res["session"] != session:
                    session, seq = res["session"], 0
                    live = manager().live
                    snap = live.snapshot() if live is not None else []
                    yield f"event: snapshot\ndata: {json.dumps({'lines': snap, 'live': res['live']})}\n\n"
                    res = await asyncio.to_thread(poll, 0, 0.0)
                for e in res["events"]:
                    yield f"event: {e['type']}\ndata: {json.dumps(e)}\n\n"
                seq = res["seq"]
                if res["live"] is None:
                    await asyncio.sleep(1.0)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    @app.post("/api/live/keep")
    def keep(body: dict = Body(default={})):
        """Keep a live line (`line_id`, default the last finished one) as a kept clip of its speaker."""
        line_id = body.get("line_id")
        try:
            line_id = None if line_id is None else int(line_id)
        except (TypeError, ValueError):
            raise WeaverError(f"not a live line id: {line_id!r}") from None
        return manager().keep_line(line_id)
