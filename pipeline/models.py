"""Model registry: for each stage, its backends, the model files each needs, where they are cached,
whether they are present, and the exact command to fetch them on a machine with internet."""

from __future__ import annotations

from dataclasses import asdict

from .stages.base import STAGE_MODULES, list_backends


def model_report() -> list[dict]:
    """One entry per (stage, backend) — what `weaver models` prints."""
    rows = []
    for stage in STAGE_MODULES:
        for cls in list_backends(stage):
            av = cls.availability()
            rows.append({
                "stage": stage, "backend": cls.name, "offline": cls.offline, "quality": cls.quality,
                "available": av.ok, "reason": av.reason, "fix": av.fix, "description": cls.description,
                "models": [asdict(m) for m in cls.models()],
            })
    return rows
