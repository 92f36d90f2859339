"""Voices on the service facade: character clips → dataset → LoRA training job → synthesis."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import BadInputError
from .jobs import JobOutcome, PreparedJob, ProgressListener, Stage, StageContext
from .progress import CancelToken, stage_callback
from .library import labels
from .library import voices as voice_rows


class VoicesMixin:
    """Mixed into pipeline.service.Service (uses self.lib, self.runner, self.segments)."""

    @property
    def voices_dir(self) -> Path:
        return self.lib.home / "voices"

    def build_voice_dataset(self, media_id: int, character: str, *, min_s: float = 2.0, max_s: float = 15.0,
                            listener: ProgressListener | None = None, cancel: CancelToken | None = None) -> dict:
        """Build a training dataset from a character's kept and pending clips; returns the dataset row + summary."""
        from .voices.dataset import ClipSample, build_dataset

        m = self.lib.media(media_id)
        segs = [s for s in self.segments(media_id, character=character) if s["status"] != "rejected"]
        if not segs:
            raise BadInputError(f"character '{character}' has no clips in item {media_id} to build a dataset from")
        dialogue = self.lib.abspath(m["dialogue_path"])
        samples = [ClipSample(audio_path=dialogue, text=s["text"], start=s["start"] + (s["trim_start"] or 0),
                              end=s["end"] + (s["trim_end"] or 0), confidence=s["confidence"] if s["confidence"] is not None else 1.0,
                              overlap=bool(s["overlap"]), clip_id=s["clip_id"]) for s in segs]
        char_id = labels.character_in(self.lib.db, media_id, character)[0]
        out = self.lib.home / "datasets" / f"item{media_id}-{_slug(character)}-{int(time.time())}"
        summary = build_dataset(samples, out, min_s=min_s, max_s=max_s, progress=stage_callback(listener),
                                cancel=cancel)
        with self.lib.atomic() as db:
            ds_id = voice_rows.add_dataset(db, char_id, self.lib.relpath(out), summary.to_dict())
        return {"id": ds_id, "path": str(out), "character": character, "summary": summary.to_dict()}

    def datasets(self) -> list[dict]:
        rows = voice_rows.datasets(self.lib.db)
        for r in rows:
            s = json.loads(r.pop("summary_json") or "{}")
            r["summary"] = {k: s.get(k) for k in ("kept", "rejected", "minutes_kept", "train", "val", "warning", "loudness")}
        return rows

    def prepare_training(self, name: str, dataset_id: int, *, backend: str = "auto", steps: int = 60,
                         base_model: str | None = None, snac_dir: str | None = None, save_every: int = 20,
                         lora_r: int = 16) -> PreparedJob:
        """Validate and create (or resume) a training job for voice `name` on a stored dataset."""
        from .files import safe_child
        from .voices.synth import _NAME_RE
        from .voices.train import TrainConfig

        if backend == "pocket-lora":  # the CPU fine-tune (pipeline.workflows.pocket_finetune); --base = its language
            from .workflows import pocket_finetune
            return pocket_finetune.prepare(self, name, dataset_id, steps=steps, language=base_model, save_every=save_every)
        if not _NAME_RE.match(name or "") or name == "default":
            raise BadInputError(f"invalid voice name {name!r}: use letters, digits, space, _ . - (and not 'default')")
        safe_child(self.voices_dir, name)  # the voice's folder; a link there pointing out is refused too
        ds = self.lib.row("datasets", dataset_id, "dataset")
        self._cpu_guard(backend, base_model or self.settings.voice_base_model)
        base_model = base_model or self.settings.voice_base_model
        cfg = TrainConfig(base_model=base_model, backend=backend, steps=steps, save_every=save_every, lora_r=lora_r,
                          out_dir=str(self.lib.home / "training" / _slug(name)), snac_dir=snac_dir)
        key = f"train:{name}:{dataset_id}"
        resumed = self.runner.find_resumable(key)
        if (active := self.runner.find_active(key)) is not None:
            raise BadInputError(f"voice '{name}' is already training (job {active})")
        with self.lib.atomic() as db:
            existing = voice_rows.voice_id(db, name)
            if existing is not None and not resumed:
                if voice_rows.voice_status(db, existing) == "ready":
                    raise BadInputError(f"a voice named '{name}' already exists")
            if existing is None:
                voice_rows.add_voice(db, name, ds["character_id"], base_model)
            voice_id = voice_rows.voice_id(db, name)
        job_id = resumed or self.runner.create("train", {"voice": name, "dataset_id": dataset_id, "backend": backend,
                                                         "steps": steps}, key=key)
        with self.lib.atomic() as db:
            if not resumed:
                voice_rows.add_training_run(db, voice_id, job_id,
                                            {k: v for k, v in vars(cfg).items() if k != "target_modules"})
        dataset_dir = self.lib.abspath(ds["path"])
        character = labels.character_name(self.lib.db, ds["character_id"])

        def train_stage(ctx: StageContext) -> dict:
            from .voices.train import model_sizes, resolve_base_model, train_voice

            losses_seen: list[float] = []
            last = [0.0]

            def on_step(step, total, loss, eta):
                losses_seen.append(float(loss))
                t = time.monotonic()
                if t - last[0] > 0.5 or step == total:
                    last[0] = t
                    with ctx.library.atomic() as db:
                        voice_rows.set_losses(db, job_id, losses_seen)
                ctx.progress(step / max(1, total), f"step {step}/{total} loss {loss:.3f}")

            result = train_voice(dataset_dir, cfg, progress=on_step, cancel=ctx.cancel)
            sizes = model_sizes(result.adapter_dir, resolve_base_model(base_model))
            return {"adapter_dir": str(result.adapter_dir), "losses": result.losses, "steps": result.steps,
                    "adapter_bytes": sizes.adapter_bytes, "base_bytes": sizes.base_bytes, "backend": result.backend,
                    "resumed_from": result.resumed_from}

        def register_stage(ctx: StageContext) -> dict:
            from .voices.synth import register_voice

            tr = ctx.results["train"]
            info = register_voice(self.voices_dir, name, tr["adapter_dir"], base_model=base_model,
                                  character=character, snac_dir=snac_dir, overwrite=True)
            with ctx.library.atomic() as db:  # 'ready' or 'failed' is decided by the voice check that follows
                voice_rows.set_registered(db, voice_id, job_id, ctx.library.relpath(Path(info.path)), tr["adapter_bytes"],
                                          tr["base_bytes"], tr["losses"])
            return {"voice": name, "adapter_bytes": tr["adapter_bytes"], "base_bytes": tr["base_bytes"]}

        from .workflows.pocket_finetune import check_stage, training_job

        stages = [Stage("train", train_stage, weight=20.0, label="training voice"),
                  Stage("register", register_stage, weight=0.2, label="saving voice"),
                  Stage("check", check_stage(self, voice_id, name, dataset_dir), weight=2.0, label="checking voice")]
        return training_job(job_id, voice_id, stages, resumed)

    def train_voice(self, name: str, dataset_id: int, *, listener: ProgressListener | None = None,
                    cancel: CancelToken | None = None, **kwargs):
        return self.prepare_training(name, dataset_id, **kwargs).run(self, listener, cancel)

    def _check_and_store(self, voice_id: int, synthesize_fn, dataset_dir, *, refs=None, library=None, progress=None,
                         cancel: CancelToken | None = None) -> dict:
        """Run the voice check (pipeline.voices.check) on a registered voice against its dataset's held-out clips
        (or the given ``refs``: audio files); store similarity / WER / DNSMOS and set the voice 'ready' or 'failed'.
        Returns the check as a dict."""
        from .errors import BackendUnavailableError, ModelMissingError
        from .voices.check import check_voice
        from .voices.dataset import read_dataset

        lib = library or self.lib
        if refs is None:
            refs = [p for p, _ in (read_dataset(dataset_dir, "validation") or read_dataset(dataset_dir, "train"))][:6]
        try:
            res = check_voice(synthesize_fn, refs, progress=progress or (lambda f, m="": None), cancel=cancel).to_dict()
        except (BackendUnavailableError, ModelMissingError) as e:  # the checker can't run here: keep the voice, unchecked
            res = {"similarity": None, "wer": None, "dnsmos": None, "ok": None, "reasons": [f"not checked: {e}"], "default": None}
        with lib.atomic() as db:
            voice_rows.set_check(db, voice_id, "failed" if res["ok"] is False else "ready", res)
        return res

    def voices(self) -> list[dict]:
        """Every voice (the built-in `default` first) with adapter size beside its base model's size, and the voice
        check's numbers (``check``: similarity, wer, dnsmos, ok, reasons, default = the default voice's numbers)."""
        from .voices.synth import list_voices

        rows = voice_rows.voice_rows(self.lib.db)
        out = []
        for v in list_voices(self.voices_dir):
            r = rows.get(v.name, {})
            out.append({**v.to_dict(), "status": r.get("status", "ready"), "base_bytes": r.get("base_bytes"),
                        "adapter_mb": round(v.adapter_bytes / 1e6, 2),
                        "base_mb": round(r["base_bytes"] / 1e6, 1) if r.get("base_bytes") else None,
                        "check": json.loads(r["check_json"]) if r.get("check_json") else None})
        for name, r in rows.items():  # voices still training (a failed or cancelled run is no voice: training_runs)
            if r["status"] == "training" and not any(o["name"] == name for o in out):
                out.append({"name": name, "status": r["status"], "base_model": r["base_model"], "adapter_bytes": 0,
                            "builtin": False, "character": None,
                            "check": json.loads(r["check_json"]) if r.get("check_json") else None})
        checked = [o["check"]["default"] for o in out if o.get("check") and o["check"].get("default")]
        if out and out[0].get("builtin"):  # the default voice: its WER / DNSMOS from the latest check that measured it
            out[0]["check"] = {"similarity": None, "wer": checked[-1]["wer"], "dnsmos": checked[-1]["dnsmos"], "ok": True,
                               "reasons": [], "default": None} if checked else None
        return out

    def training_runs(self) -> list[dict]:
        rows = voice_rows.training_runs(self.lib.db)
        for r in rows:
            r["losses"] = json.loads(r.pop("losses_json") or "[]")
        return rows

    def say_stream(self, voice: str, text: str, *, cancel: CancelToken | None = None) -> Iterator[tuple[np.ndarray, int]]:
        """Synthesise text in a voice, sentence chunk by chunk (any length)."""
        from .voices.synth import synthesize_stream

        return synthesize_stream(voice, text, voices_dir=self.voices_dir, cancel=cancel)

    def say(self, voice: str, text: str, *, max_chars: int | None = None) -> tuple[np.ndarray, int]:
        """Whole-text synthesis (refuses text over the per-request cap; use say_stream for more)."""
        from .voices.synth import MAX_CHARS, synthesize

        return synthesize(voice, text, voices_dir=self.voices_dir, max_chars=max_chars or MAX_CHARS)

    def remove_voice(self, name: str) -> None:
        """Delete a trained voice into the trash (personas using it get the default voice); see delete_voice."""
        self.delete_voice(name, reassign=True)

    # voice management (pipeline.workflows.voice_admin): rename, trash/restore/purge, storage, who uses what
    def rename_voice(self, old: str, new: str) -> dict:
        from .workflows import voice_admin
        return voice_admin.rename(self.lib, self.voices_dir, old, new)

    def delete_voice(self, name: str, *, reassign: bool = False) -> dict:
        from .workflows import voice_admin
        return voice_admin.delete(self.lib, self.voices_dir, name, reassign=reassign)

    def restore_voice(self, name: str) -> dict:
        from .workflows import voice_admin
        return voice_admin.restore(self.lib, self.voices_dir, name)

    def purge_voices(self, name: str | None = None) -> dict:
        from .workflows import voice_admin
        return voice_admin.purge(self.voices_dir, name)

    def _cpu_guard(self, backend: str, base_model: str) -> None:
        from .voices.train import DEFAULT_BASE, _pick_backend
        if backend != "unsloth" and _pick_backend(backend) == "cpu":
            from .voices import cpu_guard
            cpu_guard.check_default_base(base_model, DEFAULT_BASE)

    def voice_storage(self) -> dict:
        from .workflows import voice_admin
        return voice_admin.storage(self.lib, self.voices_dir)

    # -- instant voices (Pocket TTS clone; pipeline.workflows.instant_voice) -------------------------
    def prepare_instant_voice(self, media_id: int, character: str, *, name: str | None = None, language: str | None = None):
        from .workflows.instant_voice import prepare_instant_voice

        return prepare_instant_voice(self, media_id, character, name=name, language=language)

    def instant_voice(self, media_id: int, character: str, *, name: str | None = None, language: str | None = None,
                      listener: ProgressListener | None = None, cancel: CancelToken | None = None) -> JobOutcome:
        return self.prepare_instant_voice(media_id, character, name=name, language=language).run(self, listener, cancel)

def _slug(text: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "voice"
