"""Voice training as resumable jobs: the Orpheus LoRA route (``prepare_orpheus``: train → register → check), the
job wrapper and voice-check stage both training routes share (pipeline.workflows.pocket_finetune is the other
route), and the voice check that stores its numbers (also run after an instant clone)."""

from __future__ import annotations

import re
import time
from pathlib import Path

from ..errors import BadInputError
from ..jobs import JobOutcome, PreparedJob, Stage, StageContext
from ..library import labels
from ..library import voices as voice_rows
from ..progress import CancelToken


def voice_slug(text: str) -> str:
    """A voice or character name as a folder-name part (training and dataset folders)."""
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "voice"


def cpu_guard(backend: str, base_model: str) -> None:
    """On a CPU, refuse the multi-GB default base (one line saying what to use instead)."""
    from ..voices.train import DEFAULT_BASE, _pick_backend
    if backend != "unsloth" and _pick_backend(backend) == "cpu":
        from ..voices import cpu_guard as guard
        guard.check_default_base(base_model, DEFAULT_BASE)


def loss_recorder(ctx: StageContext, job_id: int, *, with_eta: bool = True):
    """A trainer's ``progress(step, total, loss, eta)`` callback: the losses so far go to the training run (at most
    twice a second) and the step, loss (and ETA) to the job's progress."""
    losses_seen: list[float] = []
    last = [0.0]

    def on_step(step, total, loss, eta):
        losses_seen.append(float(loss))
        t = time.monotonic()
        if t - last[0] > 0.5 or step == total:
            last[0] = t
            with ctx.library.atomic() as db:
                voice_rows.set_losses(db, job_id, losses_seen)
        ctx.progress(step / max(1, total), f"step {step}/{total} loss {loss:.3f}"
                     + (f", about {eta:.0f} s left" if with_eta and eta else ""))
    return on_step


def prepare_orpheus(svc, name: str, dataset_id: int, *, backend: str = "auto", steps: int = 60,
                    base_model: str | None = None, snac_dir: str | None = None, save_every: int = 20,
                     lora_r: int = 16) -> PreparedJob:
    """Validate and create (or resume) an Orpheus LoRA training job for voice `name` on a stored dataset."""
    from ..files import safe_child
    from ..voices.synth import _NAME_RE
    from ..voices.train import TrainConfig

    if not _NAME_RE.match(name or "") or name == "default":
        raise BadInputError(f"invalid voice name {name!r}: use letters, digits, space, _ . - (and not 'default')")
    safe_child(svc.voices_dir, name)  # the voice's folder; a link there pointing out is refused too
    ds = svc.lib.row("datasets", dataset_id, "dataset")
    cpu_guard(backend, base_model or svc.settings.voice_base_model)
    base_model = base_model or svc.settings.voice_base_model
    cfg = TrainConfig(base_model=base_model, backend=backend, steps=steps, save_every=save_every, lora_r=lora_r,
                      out_dir=str(svc.lib.home / "training" / voice_slug(name)), snac_dir=snac_dir)
    key = f"train:{name}:{dataset_id}"
    resumed = svc.runner.find_resumable(key)
    if (active := svc.runner.find_active(key)) is not None:
        raise BadInputError(f"voice '{name}' is already training (job {active})")
    with svc.lib.atomic() as db:
        existing = voice_rows.voice_id(db, name)
        if existing is not None and not resumed:
            if voice_rows.voice_status(db, existing) == "ready":
                raise BadInputError(f"a voice named '{name}' already exists")
        if existing is None:
            voice_rows.add_voice(db, name, ds["character_id"], base_model)
        voice_id = voice_rows.voice_id(db, name)
    job_id = resumed or svc.runner.create("train", {"voice": name, "dataset_id": dataset_id, "backend": backend,
                                                     "steps": steps}, key=key)
    with svc.lib.atomic() as db:
        if not resumed:
            voice_rows.add_training_run(db, voice_id, job_id,
                                        {k: v for k, v in vars(cfg).items() if k != "target_modules"})
    dataset_dir = svc.lib.abspath(ds["path"])
    character = labels.character_name(svc.lib.db, ds["character_id"])

    def train_stage(ctx: StageContext) -> dict:
        from ..voices.train import model_sizes, resolve_base_model, train_voice

        on_step = loss_recorder(ctx, job_id, with_eta=False)

        result = train_voice(dataset_dir, cfg, progress=on_step, cancel=ctx.cancel)
        sizes = model_sizes(result.adapter_dir, resolve_base_model(base_model))
        return {"adapter_dir": str(result.adapter_dir), "losses": result.losses, "steps": result.steps,
                "adapter_bytes": sizes.adapter_bytes, "base_bytes": sizes.base_bytes, "backend": result.backend,
                "resumed_from": result.resumed_from}

    def register_stage(ctx: StageContext) -> dict:
        from ..voices.synth import register_voice

        tr = ctx.results["train"]
        info = register_voice(svc.voices_dir, name, tr["adapter_dir"], base_model=base_model,
                              character=character, snac_dir=snac_dir, overwrite=True)
        with ctx.library.atomic() as db:  # 'ready' or 'failed' is decided by the voice check that follows
            voice_rows.set_registered(db, voice_id, job_id, ctx.library.relpath(Path(info.path)), tr["adapter_bytes"],
                                      tr["base_bytes"], tr["losses"])
        return {"voice": name, "adapter_bytes": tr["adapter_bytes"], "base_bytes": tr["base_bytes"]}

    stages = [Stage("train", train_stage, weight=20.0, label="training voice"),
              Stage("register", register_stage, weight=0.2, label="saving voice"),
              Stage("check", check_stage(svc, voice_id, name, dataset_dir), weight=2.0, label="checking voice")]
    return training_job(job_id, voice_id, stages, resumed)


def check_and_store(svc, voice_id: int, synthesize_fn, dataset_dir, *, refs=None, library=None, progress=None,
                     cancel: CancelToken | None = None) -> dict:
    """Run the voice check (pipeline.voices.check) on a registered voice against its dataset's held-out clips
    (or the given ``refs``: audio files); store similarity / WER / DNSMOS and set the voice 'ready' or 'failed'.
    Returns the check as a dict."""
    from ..errors import BackendUnavailableError, ModelMissingError
    from ..voices.check import check_voice
    from ..voices.dataset import read_dataset

    lib = library or svc.lib
    if refs is None:
        refs = [p for p, _ in (read_dataset(dataset_dir, "validation") or read_dataset(dataset_dir, "train"))][:6]
    try:
        res = check_voice(synthesize_fn, refs, progress=progress or (lambda f, m="": None), cancel=cancel).to_dict()
    except (BackendUnavailableError, ModelMissingError) as e:  # the checker can't run here: keep the voice, unchecked
        res = {"similarity": None, "wer": None, "dnsmos": None, "ok": None, "reasons": [f"not checked: {e}"], "default": None}
    with lib.atomic() as db:
        voice_rows.set_check(db, voice_id, "failed" if res["ok"] is False else "ready", res)
    return res


def check_stage(svc, voice_id: int, name: str, dataset_dir):
    """The voice check after training, as a job stage (the numbers go to the voice's row; ready or failed)."""
    def stage(ctx: StageContext) -> dict:
        from ..voices.synth import synthesize

        return check_and_store(svc, voice_id, lambda text: synthesize(name, text, voices_dir=svc.voices_dir),
                                    dataset_dir, library=ctx.library, progress=ctx.progress, cancel=ctx.cancel)
    return stage


def training_job(job_id: int, voice_id: int, stages: list, resumed) -> PreparedJob:
    """A training job (train → register → check) whose failure or cancel marks the run and the unfinished voice
    (which then is no voice in the list; the run stays resumable)."""
    def run(s, listener=None, cancel=None):
        try:
            results = s.runner.run(job_id, stages, listener=listener, cancel=cancel)
        except BaseException:
            state = "cancelled" if s.runner.get(job_id)["state"] == "cancelled" else "failed"
            with s.lib.atomic() as db:
                voice_rows.set_training_ended(db, voice_id, job_id, state)
            raise
        return JobOutcome(job_id, {**results["register"], "check": results["check"]}, resumed is not None)

    return PreparedJob(job_id, resumed is not None, run)
