"""The built-in default voice: Piper en_US-joe-medium (onnxruntime, our phonemes) versus espeak-ng (the fallback).

For each engine, in its own process (so peak RSS is that engine's alone), ten varied sentences go through the
public streaming path (pipeline.voices.synth.synthesize_stream, voice ``default``) one request each:

- x real time: seconds of audio / seconds of synthesis (model already loaded);
- time to first audio: from the call to the first chunk, first request (model load included) and the median
  of the others;
- peak RSS of the synthesising process (VmHWM; after imports in brackets) and the model's size on disk;
- quality, scored afterwards in this process: DNSMOS overall (speechmos, mean over sentences; goal ≥ 3.2) and
  the corpus WER of the bundled Whisper tiny.en (goal ≤ 10 %).

espeak-ng runs through the same code with the Piper model pointed at a missing file (the fallback path).
Sentences carry no digits: Whisper writes numbers as digits and the WER would measure spelling, not speech.

Run: .venv/bin/python bench/bench_default_voice.py [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

SENTENCES = [
    "Good morning! Did you sleep well, or did the storm keep you awake?",
    "I told her the truth: the map was wrong, and the bridge was gone.",
    "Yes.",
    "Would you like tea, coffee, or something a little stronger tonight?",
    "The museum opens at nine, but the guards let us in a few minutes early.",
    "He whispered, \"Don't move,\" and we froze behind the curtain.",
    "Honestly, I can't believe we drove all the way to the coast for this.",
    "Seventeen ships sailed north through the cold grey fog.",
    "Please sign here, and keep the yellow copy for your records.",
    "After the concert, everybody gathered in the kitchen and talked until dawn.",
]


def peak_rss_mb() -> float:
    """This process's peak resident memory. /proc's VmHWM where there is one: Linux carries ru_maxrss over a
    fork + exec, so a child's ru_maxrss would include the parent's memory at the fork."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(engine: str, out: str, threads: int) -> None:
    """Synthesise every sentence with the default voice; write audio (npz) and timings (json on stdout)."""
    os.environ["WEAVER_TTS_THREADS"] = str(threads)
    if engine == "espeak-ng":
        os.environ["WEAVER_DEFAULT_VOICE_MODEL"] = str(Path(tempfile.gettempdir()) / "no-such-voice.onnx")
    import logging

    logging.disable(logging.WARNING)  # the fallback's one-line notice is expected here
    from pipeline.voices import default_voice, synth

    rss0 = peak_rss_mb()
    audios, firsts, synth_s, audio_s = [], [], 0.0, 0.0
    for i, text in enumerate(SENTENCES):
        t0 = time.perf_counter()
        stream = synth.synthesize_stream("default", text, voices_dir=None)
        parts, first = [], None
        for audio, rate in stream:
            if first is None:
                first = time.perf_counter() - t0
            parts.append(audio)
        dt = time.perf_counter() - t0
        a = np.concatenate(parts)
        audios.append(a)
        firsts.append(first)
        if i > 0:  # the first request loads the model: x real time is measured on the warm ones
            synth_s += dt
            audio_s += len(a) / rate
    model = default_voice.model_path() if engine == "piper" else None
    print(json.dumps({
        "engine": default_voice.describe(), "rate": rate, "ttfa_first": firsts[0], "ttfa_warm": statistics.median(firsts[1:]),
        "xrt": audio_s / synth_s, "audio_s": audio_s, "rss_mb": peak_rss_mb(),
        "rss_start_mb": rss0, "model_mb": (model.stat().st_size / 1e6) if model and model.is_file() else 0.0,
    }))
    np.savez(out, *audios)


def run_engine(engine: str, threads: int, tmp: Path) -> tuple[dict, list[np.ndarray]]:
    out = tmp / f"{engine}.npz"
    r = subprocess.run([sys.executable, __file__, "--child", engine, "--out", str(out), "--threads", str(threads)],
                       capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0:
        raise SystemExit(f"{engine} failed:\n{r.stderr}")
    stats = json.loads(r.stdout.strip().splitlines()[-1])
    with np.load(out) as z:
        audios = [z[f"arr_{i}"] for i in range(len(SENTENCES))]
    return stats, audios


def score(audios: list[np.ndarray], rate: int) -> tuple[float, float, list[str]]:
    from pipeline.voices import check

    heard = [check.transcribe(a, rate) for a in audios]
    mos = [check.dnsmos(a, rate) for a in audios]
    return float(np.mean(mos)), check.word_error_rate(SENTENCES, heard), heard


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime threads for Piper (1 or 2)")
    ap.add_argument("--child")
    ap.add_argument("--out")
    a = ap.parse_args()
    if a.child:
        return child(a.child, a.out, a.threads)
    print(f"{len(SENTENCES)} sentences, {sum(len(s) for s in SENTENCES)} characters; load average {os.getloadavg()[0]:.2f}")
    rows = []
    with tempfile.TemporaryDirectory() as d:
        runs = {engine: run_engine(engine, a.threads, Path(d)) for engine in ("piper", "espeak-ng")}  # before scoring
        for engine, (stats, audios) in runs.items():
            mos, wer, heard = score(audios, stats["rate"])
            rows.append((stats, mos, wer))
            from pipeline.voices.check import word_error_rate

            ref, hyp = max(zip(SENTENCES, heard), key=lambda p: word_error_rate([p[0]], [p[1]]))
            print(f"  {engine}: worst sentence {ref!r} heard as {hyp!r}")
    print(f"\n{'engine':38s} {'x real time':>11s} {'first audio (cold / warm)':>26s} {'peak RSS (imports)':>18s} {'model':>7s} {'DNSMOS':>7s} {'WER':>6s}")
    for s, mos, wer in rows:
        print(f"{s['engine']:38s} {s['xrt']:10.1f}x {s['ttfa_first'] * 1000:12.0f} ms / {s['ttfa_warm'] * 1000:5.0f} ms"
              f" {s['rss_mb']:6.0f} MB ({s['rss_start_mb']:4.0f} MB) {s['model_mb']:5.0f} MB {mos:7.2f} {wer:6.1%}")
    (p, pmos, pwer), (e, emos, ewer) = rows
    print(f"\nPiper vs espeak-ng: DNSMOS {pmos:.2f} vs {emos:.2f} (goal ≥ 3.2: {'met' if pmos >= 3.2 else 'NOT met'}),"
          f" WER {pwer:.1%} vs {ewer:.1%} (goal ≤ 10 %: {'met' if pwer <= 0.10 else 'NOT met'}),"
          f" speed {p['xrt']:.1f}x vs {e['xrt']:.1f}x real time")


if __name__ == "__main__":
    main()
