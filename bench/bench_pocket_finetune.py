"""Pocket TTS fine-tune (pocket-lora) on this machine: seconds per training step, the ETA for a 5-minute dataset,
adapter size beside the shared base, peak RSS.

Random weights in the real layout (``--language english``: the 100M model; the compute is the same as with the
real weights), built once into $WEAVER_FIXTURE_CACHE by tests/tiny_pocket.py. Real weights: pass --real (reads
the hub cache; ModelMissingError says what to fetch).

    python bench/bench_pocket_finetune.py [--language english] [--steps 6] [--clip-seconds 8] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def dataset(folder: Path, n: int, seconds: float) -> Path:
    train = folder / "audiofolder" / "train"
    train.mkdir(parents=True)
    rows = ["file_name,transcription"]
    t = np.arange(int(seconds * 24000)) / 24000
    for i in range(n):
        x = sum(np.sin(2 * np.pi * (110 + 20 * i) * k * t) / k for k in range(1, 6)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
        sf.write(train / f"{i}.wav", (0.2 * x).astype(np.float32), 24000)
        rows.append(f"{i}.wav,This is line number {i} of the character, spoken for about {seconds:.0f} seconds of audio here.")
    (train / "metadata.csv").write_text("\n".join(rows) + "\n")
    return folder


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--language", default="english")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--clip-seconds", type=float, default=8.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=3, help="epochs over the 5-minute dataset for the ETA")
    ap.add_argument("--real", action="store_true", help="use the real weights from the hub cache")
    ap.add_argument("--speak", action="store_true", help="also time synthesis of the fine-tuned voice vs the base")
    a = ap.parse_args()
    if not a.real:
        from tests.tiny_pocket import pocket_cache

        t0 = time.monotonic()
        os.environ["HF_HUB_CACHE"] = str(pocket_cache(a.language))
        print(f"random-weight {a.language} model ready in {time.monotonic() - t0:.1f} s (cached after the first run)")
    from pipeline.voices import pocket
    from pipeline.voices.pocket_lora import PocketLoraConfig, train_pocket_lora

    work = Path(tempfile.mkdtemp(prefix="bench-pocket-ft-"))
    try:
        ds = dataset(work / "ds", 4, a.clip_seconds)
        times = []
        last = [time.monotonic()]

        def tick(step, total, loss, eta):
            now = time.monotonic()
            times.append(now - last[0])
            last[0] = now
            print(f"  step {step}/{total} loss {loss:.4f} ({times[-1]:.2f} s)", flush=True)

        cfg = PocketLoraConfig(language=a.language, steps=a.steps, save_every=max(1, a.steps // 2), out_dir=str(work / "out"),
                               threads=a.threads)
        t0 = time.monotonic()
        r = train_pocket_lora(ds, cfg, progress=tick)
        total = time.monotonic() - t0
        steady = times[1:] or times
        s_step = sum(steady) / len(steady)
        clips = 300.0 / a.clip_seconds
        steps_5min = int(np.ceil(a.epochs * clips))
        base = pocket.model_bytes(a.language) or 0
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"language {a.language}, {a.threads} threads, {a.clip_seconds:.0f} s clips, LoRA r={cfg.r} "
              f"({sum(1 for _ in r.adapter_dir.iterdir())} files)")
        print(f"s/step (one {a.clip_seconds:.0f} s clip a step, after the first): {s_step:.2f}  (first step {times[0]:.2f} s; "
              f"whole run incl. model copy + Mimi encoding {total:.1f} s)")
        print(f"ETA 5-minute dataset: {clips:.0f} clips x {a.epochs} epochs = {steps_5min} steps -> {steps_5min * s_step / 60:.1f} min; "
              f"default 60 steps -> {60 * s_step / 60:.1f} min")
        print(f"adapter {r.adapter_bytes / 1e6:.2f} MB (+ voice state "
              f"{(r.adapter_dir / pocket.VOICE_STATE_NAME).stat().st_size / 1e6:.2f} MB) vs shared base {base / 1e6:.1f} MB: "
              f"ratio {r.adapter_bytes / base if base else float('nan'):.4f}")
        print(f"peak RSS (training) {rss:.0f} MB")
        if a.speak:
            from pipeline.voices.pocket_lora import LoraEngine

            voice = work / "voices" / "v"
            voice.mkdir(parents=True)
            (voice / "adapter").symlink_to(r.adapter_dir)
            t0 = time.monotonic()
            engine = LoraEngine(voice)
            load_s = time.monotonic() - t0
            text = "Hello there, this is the fine-tuned voice speaking a sentence of ordinary length."
            for label, voice_obj in (("fine-tuned (merged LoRA)", engine.voice),
                                     ("base, same voice state", pocket.PocketVoice(pocket.load_model(a.language), engine.state))):
                t0 = time.monotonic()
                first, n = None, 0
                for audio, rate in voice_obj.stream(text):
                    first = first or time.monotonic() - t0
                    n += len(audio)
                dt = time.monotonic() - t0
                print(f"synthesis {label}: {n / 24000 / dt:.2f}x real time, first audio {first * 1000:.0f} ms "
                      f"({n / 24000:.1f} s of audio; random weights speak until the length cap)")
            print(f"fine-tuned voice load (model copy + merge + state) {load_s:.1f} s; "
                  f"peak RSS now {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
        print(f"losses {[round(x, 4) for x in r.losses]}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
