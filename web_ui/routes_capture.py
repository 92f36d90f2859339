"""Capture routes: the panel and `weaver capture …` (through the running app) drive the same capture manager."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import Body

from pipeline.workflows.recordings import list_devices, manager_for


def register(app, svc, jobs) -> None:
    def queue_analysis(media_id: int) -> int:
        """The offline analysis of a saved capture, queued on the panel's job runner (it refines the live lines)."""
        prepared = svc().prepare_analyze(media_id)
        jobs.submit(f"job-{prepared.job_id}", lambda s, cancel: prepared.run(s, None, cancel))
        return prepared.job_id

    def manager():
        m = manager_for(svc().lib.home)
        m.queue_analysis = queue_analysis
        return m

    @app.get("/api/capture/devices")
    def devices():
        return [asdict(d) for d in list_devices()]

    @app.get("/api/capture/status")
    def status():
        return manager().status()

    def options(body: dict) -> dict:
        return dict(source=body.get("source", "loopback"), device_id=body.get("device_id") or None,
                    frames=bool(body.get("frames")), buffer_minutes=float(body.get("buffer_minutes", 10)),
                    frame_interval=float(body.get("frame_interval", 1.0)), live=bool(body.get("live", True)))

    @app.post("/api/capture/start")
    def start(body: dict = Body(default={})):
        """Listen (rolling buffer + live lines); with "record": true, Record too (what `weaver capture start` does)."""
        return manager().start(record=bool(body.get("record")), **options(body))

    @app.post("/api/capture/record")
    def record(body: dict = Body(default={})):
        """Record from now; listening first when the capture is off."""
        return manager().record(**options(body))

    @app.post("/api/capture/stop")
    def stop(body: dict = Body(default={})):
        media_id = manager().stop(analyze=bool(body.get("analyze", True)))
        return {"media_id": media_id, **manager().status()}

    @app.post("/api/capture/save")
    def save(body: dict = Body(default={})):
        """Save the last N minutes with their live lines; the offline analysis is queued to refine them."""
        m = manager()
        media_id = m.save_last(float(body.get("minutes", 5)), analyze=bool(body.get("analyze", True)))
        return {"media_id": media_id, "saved": m.last_saved, "job_id": m.last_job_id}
