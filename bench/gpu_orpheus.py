"""GPU check of the voice recipe (run by bench/gpu_orpheus.sh on a lent NVIDIA machine; not part of the test suite).

Builds a small espeak-ng dataset with pipeline.voices.dataset.build_dataset, trains a LoRA on
unsloth/orpheus-3b-0.1-ft (4-bit) for a few steps with train_voice(backend="unsloth"), prints per-step time and
loss, peak GPU memory and adapter vs base size, then synthesises one sentence with the new voice.

When Hugging Face is unreachable and the weights are not cached it says so, exits 4 unless --fallback-tiny is
on (default on): then the same Unsloth code path runs on a tiny random Llama + random SNAC (numbers then only
show that the path works, not real speed).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path

import unsloth  # noqa: F401  (first, so its transformers patches apply)

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

BASE = "unsloth/orpheus-3b-0.1-ft"
SNAC = "hubertsiuzdak/snac_24khz"
TEXTS = [
    "The quick brown fox jumps over the lazy dog while the rain keeps falling.",
    "I never said that she stole my money, but somebody certainly did.",
    "Where did you put the keys to the car after we came home last night?",
    "We should leave before the storm arrives and the roads are flooded.",
    "Nobody expected the captain to come back alive from that voyage.",
    "Close the door and turn off the lights, please, it is very late.",
    "That is the strangest thing I have ever heard in my whole life.",
    "Tomorrow morning we will walk to the market and buy fresh bread.",
    "She laughed quietly and looked out of the window at the empty street.",
    "If you listen carefully you can hear the ocean from the top of the hill.",
    "He counted the coins twice before handing them over to the old man.",
    "Every evening the lighthouse keeper climbs the long spiral staircase.",
]


def say(msg: str) -> None:
    print(f"[gpu_orpheus.py] {msg}", flush=True)


def make_clips(folder: Path) -> list:
    from pipeline.voices.dataset import ClipSample

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    if shutil.which("espeak-ng"):
        for i, t in enumerate(TEXTS):
            p = folder / f"c{i}.wav"
            subprocess.run(["espeak-ng", "-v", "en+f3" if i % 2 else "en+m3", "-w", str(p), t], check=True, capture_output=True)
            out.append(ClipSample(p, t))
        return out
    say("espeak-ng not available: using synthetic voiced audio (timing only)")
    from pipeline.media import write_audio

    rng = np.random.default_rng(0)
    sr = 24000
    for i, t in enumerate(TEXTS):
        parts = []
        for _ in range(14):
            f0 = rng.uniform(100, 220)
            n = int(sr * rng.uniform(0.12, 0.25))
            tt = np.arange(n) / sr
            sig = sum(np.sin(2 * np.pi * f0 * k * tt + rng.uniform(0, 6)) / k for k in range(1, 12))
            parts += [sig * np.hanning(n) * 0.2, np.zeros(int(sr * 0.06))]
        p = folder / f"c{i}.wav"
        write_audio(p, np.concatenate(parts).astype(np.float32), sr)
        out.append(ClipSample(p, t))
    return out


def fetch_real(hf_ok: bool) -> tuple[str | None, str | None]:
    """Local folders of the real base model and SNAC (cache, then download), or (None, reason)."""
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(BASE, local_files_only=True), snapshot_download(SNAC, local_files_only=True)
    except Exception:
        pass
    if not hf_ok:
        return None, "Hugging Face is unreachable from this machine and the weights are not in the local cache"
    t0 = time.time()
    try:
        base = snapshot_download(BASE, allow_patterns=["*.json", "*.safetensors", "tokenizer*"])
        snac = snapshot_download(SNAC)
    except Exception as e:  # gated / rate limited / partial network
        return None, f"download failed: {type(e).__name__}: {str(e).splitlines()[0][:200]}"
    say(f"downloaded {BASE} + {SNAC} in {time.time() - t0:.0f}s")
    return base, snac


def tiny_stack(root: Path) -> tuple[str, str]:
    from tiny_tts import build_base_model, build_snac

    return str(build_base_model(root / "tiny_base", hidden=256, layers=2)), str(build_snac(root / "tiny_snac", decoder_dim=256))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="/tmp/gpu_orpheus")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--hf-ok", type=int, default=1)
    ap.add_argument("--no-fallback-tiny", action="store_true")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {"gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None, "torch": torch.__version__}
    if not torch.cuda.is_available():
        say("FAIL: torch sees no CUDA device")
        return 2

    from pipeline.voices.dataset import build_dataset
    from pipeline.voices.synth import encode_audio, register_voice, synthesize
    from pipeline.voices.train import TrainConfig, model_sizes, train_voice

    t0 = time.time()
    summary = build_dataset(make_clips(out / "clips"), out / "dataset", val_fraction=0.0)
    report["dataset"] = {"kept": summary.kept, "rejected": summary.rejected, "minutes": summary.minutes_kept, "seconds": round(time.time() - t0, 1)}
    say(f"dataset: {report['dataset']}")

    base, snac = fetch_real(bool(a.hf_ok))
    real = base is not None
    if not real:
        say(f"REAL MODEL UNAVAILABLE: {snac}")
        report["real_model"] = False
        report["reason"] = snac
        if a.no_fallback_tiny:
            (out / "report.json").write_text(json.dumps(report, indent=2))
            return 4
        say("running the Unsloth backend on a tiny random Llama + random SNAC instead (path check; numbers not representative)")
        base, snac = tiny_stack(out)
    report["real_model"] = real
    report["base"] = base

    times: list[float] = []
    last = [time.monotonic()]

    def progress(step, total, loss, eta):
        now = time.monotonic()
        times.append(now - last[0])
        last[0] = now
        say(f"step {step}/{total} loss {loss:.4f} step_time {times[-1]:.2f}s eta {eta or 0:.0f}s")

    torch.cuda.reset_peak_memory_stats()
    cfg = TrainConfig(base_model=base, backend="unsloth", snac_dir=snac, out_dir=str(out / "run"), steps=a.steps, save_every=max(2, a.steps // 2),
                      grad_accum=1, batch_size=1, lr=2e-4, lora_r=16, lora_alpha=16, dedupe_frames=real)
    shutil.rmtree(out / "run", ignore_errors=True)
    t0 = time.time()
    try:
        r = train_voice(out / "dataset", cfg, progress=progress)
    except Exception as e:
        traceback.print_exc()
        report["train_error"] = f"{type(e).__name__}: {e}"
        (out / "report.json").write_text(json.dumps(report, indent=2))
        say(f"FAIL: training: {report['train_error']}")
        return 1
    sizes = model_sizes(r.adapter_dir, base)
    report["train"] = {
        "steps": r.steps, "seconds_total": round(time.time() - t0, 1), "first_step_s": round(times[0], 2) if times else None,
        "median_step_s": round(float(np.median(times[1:] or times)), 3), "losses": [round(x, 4) for x in r.losses],
        "peak_gpu_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2), "adapter_bytes": sizes.adapter_bytes,
        "base_bytes": sizes.base_bytes, "adapter_over_base": sizes.ratio,
    }
    say(f"train: {json.dumps(report['train'])}")

    try:
        import gc

        gc.collect()
        torch.cuda.empty_cache()
        register_voice(out / "voices", "gpu_test", r.adapter_dir, base_model=base, snac_dir=snac, overwrite=True)
        sentence = "Hello! This voice was trained for just a few steps on a rented GPU."
        t0 = time.time()
        audio, rate = synthesize("gpu_test", sentence, voices_dir=out / "voices", seed=0)
        dt = time.time() - t0
        (out / "sample.wav").write_bytes(encode_audio(audio, rate, "wav"))
        report["synth"] = {"seconds": round(dt, 2), "audio_seconds": round(len(audio) / rate, 2), "rtf": round(dt / max(1e-6, len(audio) / rate), 3)}
        say(f"synth: {report['synth']}")
    except Exception as e:
        traceback.print_exc()
        report["synth_error"] = f"{type(e).__name__}: {e}"
        say(f"FAIL: synthesis: {report['synth_error']}")
    (out / "report.json").write_text(json.dumps(report, indent=2))
    say("REPORT " + json.dumps(report))
    return 0 if real and "synth" in report else (4 if not real else 1)


if __name__ == "__main__":
    raise SystemExit(main())
