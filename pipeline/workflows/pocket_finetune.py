"""The Pocket TTS fine-tune as a resumable job (``weaver train NAME --dataset N --backend pocket-lora``):
train a per-voice LoRA (pipeline.voices.pocket_lora) → register the voice (engine pocket-lora) → voice check.
Same job machinery as the Orpheus route (pipeline.jobs JobRunner: progress, ETA, cancel, resume by key)."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import BadInputError
from ..files import safe_child
from ..jobs import PreparedJob, Stage, StageContext
from .training import check_stage, loss_recorder, training_job
from ..library import labels
from ..library import voices as voice_rows


def prepare(svc, name: str, dataset_id: int, *, steps: int = 60, language: str | None = None, save_every: int = 20,
            lora_r: int = 8) -> PreparedJob:
    from ..voices.pocket_lora import PocketLoraConfig
    from ..voices.synth import _NAME_RE
    from .voice_admin import training_dir

    if not _NAME_RE.match(name or "") or name == "default":
        raise BadInputError(f"invalid voice name {name!r}: use letters, digits, space, _ . - (and not 'default')")
    safe_child(svc.voices_dir, name)
    language = language or "english"
    ds = svc.lib.row("datasets", dataset_id, "dataset")
    cfg = PocketLoraConfig(language=language, steps=steps, save_every=save_every, r=lora_r,
                           out_dir=str(training_dir(svc.lib.home, name)))
    key = f"train:{name}:{dataset_id}"
    resumed = svc.runner.find_resumable(key)
    if (active := svc.runner.find_active(key)) is not None:
        raise BadInputError(f"voice '{name}' is already training (job {active})")
    base_model = f"pocket-tts/{language}"
    with svc.lib.atomic() as db:
        existing = voice_rows.voice_id(db, name)
        if existing is not None and not resumed and voice_rows.voice_status(db, existing) == "ready":
            raise BadInputError(f"a voice named '{name}' already exists")
        if existing is None:
            voice_rows.add_voice(db, name, ds["character_id"], base_model)
        else:
            voice_rows.set_training(db, existing, base_model)
        voice_id = voice_rows.voice_id(db, name)
    job_id = resumed or svc.runner.create("train", {"voice": name, "dataset_id": dataset_id, "backend": "pocket-lora",
                                                    "steps": steps}, key=key)
    if not resumed:
        with svc.lib.atomic() as db:
            voice_rows.add_training_run(db, voice_id, job_id, cfg.to_dict())
    dataset_dir = svc.lib.abspath(ds["path"])
    character = labels.character_name(svc.lib.db, ds["character_id"])

    def train_stage(ctx: StageContext) -> dict:
        from ..voices.pocket_lora import train_pocket_lora

        on_step = loss_recorder(ctx, job_id)

        r = train_pocket_lora(dataset_dir, cfg, progress=on_step, cancel=ctx.cancel)
        return {"adapter_dir": str(r.adapter_dir), "losses": r.losses, "steps": r.steps, "adapter_bytes": r.adapter_bytes,
                "base_bytes": r.base_bytes, "backend": r.backend, "resumed_from": r.resumed_from,
                "step_seconds": r.step_seconds}

    def register_stage(ctx: StageContext) -> dict:
        tr = ctx.results["train"]
        register(svc.voices_dir, name, tr["adapter_dir"], language=language, character=character)
        with ctx.library.atomic() as db:
            voice_rows.set_registered(db, voice_id, job_id, ctx.library.relpath(Path(svc.voices_dir) / name),
                                      tr["adapter_bytes"], tr["base_bytes"], tr["losses"])
        return {"voice": name, "adapter_bytes": tr["adapter_bytes"], "base_bytes": tr["base_bytes"], "backend": "pocket-lora",
                "step_seconds": tr["step_seconds"]}

    stages = [Stage("train", train_stage, weight=20.0, label="fine-tuning the Pocket voice"),
              Stage("register", register_stage, weight=0.2, label="saving voice"),
              Stage("check", check_stage(svc, voice_id, name, dataset_dir), weight=2.0, label="checking voice")]
    return training_job(job_id, voice_id, stages, resumed)


def register(voices_dir: str | os.PathLike, name: str, adapter_dir: str | os.PathLike, *, language: str,
             character: str | None = None) -> dict:
    """Copy a trained adapter into ``voices_dir/<name>`` with its voice.json (engine pocket-lora), atomically."""
    from ..voices.pocket_lora import _LORA_ENGINES, ADAPTER_FILE, ENGINE
    from ..voices.synth import _NAME_RE, install_voice

    if not _NAME_RE.match(name or "") or name == "default":
        raise BadInputError(f"invalid voice name {name!r}: use letters, digits, space, _ . - (and not 'default')")
    safe_child(voices_dir, name)
    meta = install_voice(voices_dir, name, adapter_dir, {"engine": ENGINE, "base_model": f"pocket-tts/{language}",
                                                         "language": language, "character": character}, ADAPTER_FILE)
    _LORA_ENGINES.clear()
    return meta
