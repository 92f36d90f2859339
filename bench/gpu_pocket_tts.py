"""Real-weights check of the Pocket TTS backend (run by bench/gpu_pocket_tts.sh on a GPU or network machine).

Through our code (pipeline.voices.pocket): the loader from the hub cache, a clone from a reference (the default
voice speaking, or --reference WAV), streaming synthesis of held-out sentences on CPU (pocket-tts's two threads) and, when CUDA is
there, on the GPU; then the house voice check (similarity / WER / DNSMOS) where its offline models are installed.
Writes report.json and sample.wav into --out. Exit 0 ok, 4 weights not cached, 1 anything else.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--language", default="english")
    ap.add_argument("--reference", help="reference WAV (default: the default voice reading a paragraph)")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    import numpy as np
    import soundfile as sf
    import torch

    from pipeline.errors import ModelMissingError
    from pipeline.voices import pocket
    from pipeline.voices.check import HELD_OUT_SENTENCES

    report: dict = {"language": a.language, "torch": torch.__version__, "cuda": torch.cuda.is_available()}
    t0 = time.perf_counter()
    try:
        model = pocket.load_model(a.language)
    except ModelMissingError as e:
        print(f"FAIL: {e}")
        return 4
    report["load_s"] = round(time.perf_counter() - t0, 2)
    report["model_bytes"] = pocket.model_bytes(a.language)
    if a.reference:
        ref, rate = sf.read(a.reference, dtype="float32")
        ref = ref.mean(axis=1) if ref.ndim > 1 else ref
    else:
        from pipeline.voices import default_voice

        ref, rate = default_voice.speak("The reference voice reads a short paragraph, plainly and clearly, for about ten "
                                        "seconds, so that the clone has enough speech to learn the timbre from.", rate=24000)
    t0 = time.perf_counter()
    state = model.clone(np.asarray(ref, dtype=np.float32), rate)
    report["clone_s"] = round(time.perf_counter() - t0, 2)
    report["voice_state_bytes"] = pocket.export_voice_state(state, out / "voice_state.safetensors")

    def run(label: str) -> np.ndarray:
        audio_s = wall = 0.0
        ttfa = []
        parts = []
        for s in HELD_OUT_SENTENCES:
            t = time.perf_counter()
            first = None
            for chunk in model.stream(state, s):
                first = first or time.perf_counter() - t
                parts.append(chunk)
                audio_s += len(chunk) / model.sample_rate
            wall += time.perf_counter() - t
            ttfa.append(first)
        report[label] = {"x_realtime": round(audio_s / wall, 2), "ttfa_s": [round(x, 3) for x in ttfa]}
        return np.concatenate(parts)

    sample = run("cpu")
    if torch.cuda.is_available():
        model.tts.to("cuda")
        run("cuda")
        model.tts.to("cpu")
    sf.write(out / "sample.wav", sample, model.sample_rate)
    try:
        from pipeline.voices.check import check_voice

        c = check_voice(lambda text: (model.synthesize(state, text), model.sample_rate), [(np.asarray(ref, dtype=np.float32), rate)])
        report["check"] = c.to_dict()
        print("voice check:", c.summary())
    except Exception as e:  # noqa: BLE001 - offline checker models not installed on this machine
        report["check"] = f"not run: {type(e).__name__}: {e}"
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
