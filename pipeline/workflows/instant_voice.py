"""Instant voice: pick a character → their best reference audio → Pocket TTS clone → a stored voice, checked.

One job (kind ``clone``) with two stages:

- **clone**: the Pocket model is looked up first (absent weights → ModelMissingError before any work); the
  reference is picked from the character's kept and pending clips (pipeline.voices.reference), the voice is
  cloned, and ``<voices>/<name>/`` is written atomically: ``voice_state.safetensors`` (the exported voice state,
  its size is the voice's storage), ``reference.wav`` (the picked reference, to clone again with another model)
  and ``voice.json`` (engine ``pocket``); then the ``voices`` row (status 'training');
- **check**: the house voice check (pipeline.voices.check, via pipeline.workflows.training.check_and_store) against the
  held-out clips (the character's clean clips not used as reference) sets 'ready' or 'failed'.

The voice is then spoken by pipeline.voices.synth (``say``, ``/v1/audio/speech``, chat): its engine dispatch
reads ``engine`` from voice.json. A job that fails or is cancelled removes the voice folder and row: no half
voice is left in the list.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

from ..errors import BadInputError
from ..jobs import JobOutcome, PreparedJob, ProgressListener, Stage, StageContext
from ..progress import CancelToken


def default_name(character: str) -> str:
    return (re.sub(r"[^A-Za-z0-9]+", "-", character).strip("-").lower() or "voice")[:50] + "-instant"


def clip_samples(svc, media_id: int, character: str, purpose: str = "clone a voice from") -> list:
    """The character's kept and pending clips as dataset ClipSamples (their trimmed windows of the dialogue track)."""
    from ..voices.dataset import ClipSample

    m = svc.lib.media(media_id)
    segs = [s for s in svc.segments(media_id, character=character) if s["status"] != "rejected"]
    if not segs:
        raise BadInputError(f"character '{character}' has no clips in item {media_id} to {purpose}")
    dialogue = svc.lib.abspath(m["dialogue_path"])
    return [ClipSample(audio_path=dialogue, text=s["text"], start=s["start"] + (s["trim_start"] or 0), end=s["end"] + (s["trim_end"] or 0),
                       confidence=s["confidence"] if s["confidence"] is not None else 1.0, overlap=bool(s["overlap"]),
                       clip_id=s["clip_id"], check_text=bool(s.get("check_text"))) for s in segs]


def prepare_instant_voice(svc, media_id: int, character: str, *, name: str | None = None,
                          language: str | None = None) -> PreparedJob:
    """Validate, then create the clone job (see the module docstring); ``run`` it for the result."""
    from ..files import safe_child
    from ..library.labels import character_row
    from ..library.voices import add_instant_voice, refuse_taken_name
    from ..files import replace_folder
    from ..library import now
    from ..voices import pocket
    from ..voices.synth import _NAME_RE

    svc.lib.media(media_id)
    char_id, char_name = character_row(svc.lib.db, media_id, character)
    name = name or default_name(char_name)
    if not _NAME_RE.match(name) or name == "default":
        raise BadInputError(f"invalid voice name {name!r}: use letters, digits, space, _ . - (and not 'default')")
    folder = safe_child(svc.voices_dir, name)
    refuse_taken_name(svc.lib.db, name)
    if folder.exists():
        raise BadInputError(f"a voice named '{name}' already exists")
    language = language or pocket.default_language()
    pocket.resolve_files(language)  # ModelMissingError (what to fetch, how big) before any work
    samples = clip_samples(svc, media_id, char_name)
    key = f"clone:{name}"
    if (active := svc.runner.find_active(key)) is not None:
        raise BadInputError(f"voice '{name}' is already being made (job {active})")
    job_id = svc.runner.create("clone", {"voice": name, "media_id": media_id, "character": char_name, "engine": pocket.ENGINE,
                                         "language": language}, key=key, media_id=media_id)
    made: dict = {}

    def clone_stage(ctx: StageContext) -> dict:
        from ..media import write_audio
        from ..voices.reference import pick_reference

        t0 = time.monotonic()
        ref = pick_reference(samples, progress=lambda f, m="": ctx.progress(0.5 * f, m), cancel=ctx.cancel)
        timings = {"reference_s": time.monotonic() - t0}
        ctx.progress(0.5, f"loading Pocket TTS ({language})")
        model = pocket.load_model(language)
        timings["model_load_s"] = time.monotonic() - t0 - sum(timings.values())
        ctx.progress(0.7, f"cloning from {ref.seconds:.1f} s of {char_name}'s speech")
        state = model.clone(ref.audio, ref.rate)
        timings["clone_s"] = time.monotonic() - t0 - sum(timings.values())
        tmp = svc.voices_dir / f".{name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        state_bytes = pocket.export_voice_state(state, tmp / pocket.VOICE_STATE_NAME)
        write_audio(tmp / "reference.wav", ref.audio, ref.rate)
        held = ctx.work_dir / "held_out"
        held.mkdir(parents=True, exist_ok=True)
        for i, (audio, rate) in enumerate(ref.held_out[:6] or [(ref.audio, ref.rate)]):
            write_audio(held / f"{i:02d}.wav", audio, rate)
        base_bytes = pocket.model_bytes(language)
        meta = {"name": name, "engine": pocket.ENGINE, "language": language, "base_model": f"pocket-tts/{language}",
                "character": char_name, "created": time.time(), "adapter_bytes": state_bytes, "rate": model.sample_rate,
                "reference": ref.summary()}
        (tmp / "voice.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False))
        replace_folder(tmp, folder)
        made["folder"] = folder
        with ctx.library.atomic() as db:
            made["voice_id"] = add_instant_voice(db, name=name, character_id=char_id, base_model=meta["base_model"],
                                            path=ctx.library.relpath(folder), state_bytes=state_bytes, base_bytes=base_bytes,
                                            created_at=now())
            ctx.record(db, {"voice_id": made["voice_id"]})
        ctx.progress(1.0, f"voice state {state_bytes / 1e6:.1f} MB")
        return {"voice": name, "voice_id": made["voice_id"], "engine": pocket.ENGINE, "language": language,
                "character": char_name, "state_bytes": state_bytes, "base_bytes": base_bytes, "reference": ref.summary(),
                "seconds_to_voice": round(time.monotonic() - t0, 2), "timings": {k: round(v, 2) for k, v in timings.items()}}

    def check_stage(ctx: StageContext) -> dict:
        from ..voices.synth import synthesize

        voice_id = ctx.results["clone"]["voice_id"]
        refs = sorted((ctx.work_dir / "held_out").glob("*.wav"))
        from .training import check_and_store

        return check_and_store(svc, voice_id, lambda text: synthesize(name, text, voices_dir=svc.voices_dir), None, refs=refs,
                                    library=ctx.library, progress=ctx.progress, cancel=ctx.cancel)

    stages = [Stage("clone", clone_stage, weight=3.0, label="cloning voice"),
              Stage("check", check_stage, weight=2.0, label="checking voice")]

    def run(s, listener: ProgressListener | None = None, cancel: CancelToken | None = None) -> JobOutcome:
        try:
            results = s.runner.run(job_id, stages, listener=listener, cancel=cancel)
        except BaseException:
            from ..library.voices import remove_voice_id

            if "voice_id" in made:
                with s.lib.atomic() as db:
                    remove_voice_id(db, made["voice_id"])
            shutil.rmtree(svc.voices_dir / f".{name}.tmp", ignore_errors=True)
            if "folder" in made:
                shutil.rmtree(made["folder"], ignore_errors=True)
            raise
        return JobOutcome(job_id, {**results["clone"], "check": results["check"]}, False)

    return PreparedJob(job_id, False, run)


def storage(folder: str | Path) -> int:
    """Bytes a stored instant voice takes (voice state + reference + voice.json)."""
    return sum(f.stat().st_size for f in Path(folder).rglob("*") if f.is_file())
