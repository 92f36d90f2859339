"""Model registry: for each stage, its backends, the model files each needs, where they are cached,
whether they are present, and the exact command to fetch them on a machine with internet."""

from __future__ import annotations

from dataclasses import asdict

from .hub import hub_fetch_command
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
    rows.extend(_tts_rows())
    return rows


def _tts_rows() -> list[dict]:
    """The voice-training models (Orpheus base, SNAC codec): not a registry stage, but fetched the same way."""
    from .errors import WeaverError
    from .voices.orpheus import SNAC_REPO, resolve_snac_dir
    from .voices.train import DEFAULT_BASE, resolve_base_model

    rows = []
    for backend, repo, resolve in (("orpheus-lora", DEFAULT_BASE, lambda: resolve_base_model(DEFAULT_BASE)),
                                   ("snac-codec", SNAC_REPO, lambda: resolve_snac_dir(None))):
        try:
            path, present = str(resolve()), True
        except WeaverError:
            path, present = "(Hugging Face cache)", False
        rows.append({"stage": "tts", "backend": backend, "offline": False, "quality": 10, "available": present,
                     "reason": "" if present else f"model '{repo}' is not in the local cache", "fix": hub_fetch_command(repo),
                     "description": "voice training and synthesis (the built-in 'default' voice needs none)",
                     "models": [{"name": repo, "path": path, "fetch_command": hub_fetch_command(repo), "size_mb": None,
                                 "bundled": False, "present": present}]})
    return rows
