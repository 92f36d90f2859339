"""App routes: health, the model report, and the settings (read and update)."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import Body

from pipeline import __version__


def register(app, svc, jobs) -> None:
    @app.get("/api/health")
    def health():
        return {"ok": True, "version": __version__}

    @app.get("/api/models")
    def models():
        return svc().models()

    @app.get("/api/settings")
    def get_settings():
        return asdict(svc().settings)

    @app.put("/api/settings")
    def put_settings(body: dict = Body(...)):
        """Typed and checked like `weaver settings set` (one-line 400 for a bad value; nothing saved then)."""
        s = svc()
        current = asdict(s.settings)
        return s.update_settings({k: v for k, v in body.items() if k in current})
