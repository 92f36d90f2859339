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
    rows.append(_pocket_row())
    return rows


def _pocket_row() -> dict:
    """Pocket TTS (instant voices, `weaver clone`): the gated weights repo + its tokenizer, with the download size."""
    from .errors import WeaverError
    from .voices import pocket

    lang = pocket.default_language()
    try:
        files = pocket.hub_files(lang)
        fetch = pocket.fetch_command(lang)
    except WeaverError as e:  # pocket-tts itself is not installed
        return {"stage": "tts", "backend": "pocket-tts", "offline": False, "quality": 8, "available": False, "reason": str(e),
                "fix": pocket.INSTALL_HINT, "description": "instant voices (clone from a character's clips) on CPU", "models": []}
    try:
        found = pocket.resolve_files(lang)
    except WeaverError:
        found = {}
    present = bool(found) and len(found) == len(files)
    size = pocket.approx_mb(lang)
    return {"stage": "tts", "backend": "pocket-tts", "offline": False, "quality": 8, "available": present,
            "reason": "" if present else f"Pocket TTS '{lang}' weights (≈{size:.0f} MB) are not in the local cache; the repo is gated: "
                                         f"accept its terms at {pocket.MODEL_PAGE} and `hf auth login`",
            "fix": fetch, "description": "instant voices (clone from a character's clips) on CPU, `weaver clone`",
            "models": [{"name": f"{f.repo}/{f.filename}", "path": str(found.get(k)) if k in found else "(Hugging Face cache)",
                        "fetch_command": f.fetch_command(), "size_mb": size if f.filename.endswith("model.safetensors") else 1.0,
                        "bundled": False, "present": k in found}
                       for k, f in zip(pocket._hub_refs(pocket.config_dict(lang)), files)]}
