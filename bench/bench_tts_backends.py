"""TTS backends side by side on this machine: the default Piper voice, a Pocket TTS instant voice (random weights
in the real 100M English layout: the compute is the real one), and the espeak-ng fallback.

Each backend runs in its own process (so peak RSS is its own), through the public streaming path
(pipeline.voices.synth.synthesize_stream), one request per sentence:

- x real time: seconds of audio / seconds of synthesis (model loaded);
- time to first audio: first request (model load + voice load included) and the median of the others;
- peak RSS (VmHWM) of that process; per-voice storage (what one more voice costs on disk) and the shared model.

Then, for Pocket: our code (synth.synthesize_stream on a stored voice) versus the raw pocket-tts call
(``TTSModel.generate_audio`` on the same model, state and text, same seed), as seconds per second of audio
(goal ≤ 1.05×); and "pick character → hear them": on the fixture movie (imported first, not timed), the instant-voice
job from its start (reference picking, model load, clone, store) to the first audio chunk of `say` in that voice,
in a fresh process (model load included).

Run: .venv/bin/python bench/bench_tts_backends.py [--threads 2] [--skip-pick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SENTENCES = [
    "Good morning! Did you sleep well, or did the storm keep you awake?",
    "I told her the truth: the map was wrong, and the bridge was gone.",
    "Yes.",
    "Would you like tea, coffee, or something a little stronger tonight?",
    "Please sign here, and keep the yellow copy for your records.",
]
POCKET_BENCH_LANGUAGE = "english"


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _pocket_voice(voices_dir: Path, language: str) -> Path:
    """A stored Pocket voice cloned from a few seconds of espeak-ng speech (the bench has no movie here)."""
    import numpy as np

    from pipeline.voices import default_voice, pocket

    model = pocket.load_model(language)
    audio, rate = default_voice.speak("This is the reference voice, speaking a few plain sentences for the clone. "
                                      "It talks for several seconds so the prompt is long enough.", rate=24000)
    state = model.clone(np.asarray(audio, dtype=np.float32), rate)
    folder = voices_dir / "bench-pocket"
    n = pocket.export_voice_state(state, folder / pocket.VOICE_STATE_NAME)
    (folder / "voice.json").write_text(json.dumps({"name": "bench-pocket", "engine": "pocket", "language": language,
                                                   "base_model": f"pocket-tts/{language}", "adapter_bytes": n, "rate": 24000}))
    return folder


def worker(backend: str, threads: int) -> dict:
    """Runs in the child process: one backend, every sentence, timings + RSS."""
    os.environ["WEAVER_TTS_THREADS"] = str(threads)
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    from pipeline.voices import synth

    voices_dir = Path(tempfile.mkdtemp(prefix="bench-tts-"))
    voice, storage, model_bytes = "default", 0, None
    t_setup = time.perf_counter()
    if backend == "pocket":
        from pipeline.voices import pocket

        folder = _pocket_voice(voices_dir, POCKET_BENCH_LANGUAGE)
        voice = "bench-pocket"
        storage = sum(f.stat().st_size for f in folder.iterdir())
        model_bytes = pocket.model_bytes(POCKET_BENCH_LANGUAGE)
        pocket.clear_models()  # the first request below loads the model again, as a fresh process would
        pocket._STATES.clear()
    else:
        from pipeline.voices import default_voice

        if backend == "piper":
            p = default_voice.model_path()
            model_bytes = Path(p).stat().st_size if p and Path(p).is_file() else None
    setup_s = time.perf_counter() - t_setup
    rss_after_setup = _rss_mb()
    ttfa, rt_audio, rt_wall = [], 0.0, 0.0
    for i, text in enumerate(SENTENCES):
        t0 = time.perf_counter()
        first = None
        n = 0
        rate = 24000
        for audio, rate in synth.synthesize_stream(voice, text, voices_dir=voices_dir):
            if first is None:
                first = time.perf_counter() - t0
            n += len(audio)
        wall = time.perf_counter() - t0
        ttfa.append(first)
        if i > 0:  # x real time with the model loaded
            rt_audio += n / rate
            rt_wall += wall
    out = {"backend": backend, "x_realtime": round(rt_audio / rt_wall, 2) if rt_wall else None,
           "ttfa_first_s": round(ttfa[0], 3), "ttfa_median_s": round(statistics.median(ttfa[1:]), 3),
           "peak_rss_mb": round(_rss_mb(), 0), "rss_after_setup_mb": round(rss_after_setup, 0), "setup_s": round(setup_s, 2),
           "per_voice_bytes": storage, "model_bytes": model_bytes}
    if backend == "pocket":
        out["ours_vs_raw"] = _ours_vs_raw(voices_dir, threads)
    return out


def _ours_vs_raw(voices_dir: Path, threads: int, repeats: int = 3) -> dict:
    """Seconds per second of audio through synth.synthesize_stream vs pocket-tts's generate_audio, same seed."""
    import torch

    from pipeline.voices import pocket, synth

    model = pocket.load_model(POCKET_BENCH_LANGUAGE)
    state = pocket.voice_state(model, voices_dir / "bench-pocket" / pocket.VOICE_STATE_NAME)
    text = " ".join(SENTENCES[:2])
    ours, raw = [], []
    for r in range(repeats):
        torch.manual_seed(r)
        t0 = time.perf_counter()
        n = sum(len(a) for a, _ in synth.synthesize_stream("bench-pocket", text, voices_dir=voices_dir))
        ours.append((time.perf_counter() - t0) / (n / model.sample_rate))
        torch.manual_seed(r)
        t0 = time.perf_counter()
        with model.lock:
            audio = model.tts.generate_audio(state, text)
        raw.append((time.perf_counter() - t0) / (audio.shape[-1] / model.sample_rate))
    o, w = statistics.median(ours), statistics.median(raw)
    return {"ours_s_per_audio_s": round(o, 4), "raw_s_per_audio_s": round(w, 4), "ratio": round(o / w, 3)}


def pick_and_hear(threads: int, home: str, media_id: int, language: str) -> dict:
    """Child process: the instant-voice job on an imported movie, from its start to the first audio of `say`."""
    os.environ["WEAVER_TTS_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)
    from pipeline.service import Service

    svc = Service(home=home)
    t0 = time.perf_counter()
    marks: dict = {}

    def listener(p):
        if p.stage == "checking voice" and "stored" not in marks:
            marks["stored"] = time.perf_counter() - t0
            first = next(iter(svc.say_stream("bench-instant", "Hello, it's me. Can you hear my voice?")))
            marks["heard"] = time.perf_counter() - t0
            marks["first_chunk_s"] = round(len(first[0]) / first[1], 3)

    res = svc.instant_voice(media_id, "BORIS", name="bench-instant", language=language, listener=listener).result
    return {"language": language, "voice_stored_s": round(marks["stored"], 2), "pick_to_hear_s": round(marks["heard"], 2),
            "with_voice_check_s": round(time.perf_counter() - t0, 2), "reference_s": res["reference"]["seconds"],
            "voice_state_mb": round(res["state_bytes"] / 1e6, 2), "check_ok": res["check"]["ok"], "peak_rss_mb": round(_rss_mb(), 0),
            "timings": res.get("timings"), "load_average": os.getloadavg()[0]}


def _child(args: list[str], env: dict) -> dict:
    r = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, env=env, timeout=3600)
    if r.returncode != 0:
        return {"error": (r.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-pick", action="store_true")
    ap.add_argument("--worker")
    ap.add_argument("--pick", nargs=3, metavar=("HOME", "MEDIA_ID", "LANGUAGE"))
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(worker(a.worker, a.threads)))
        return 0
    if a.pick:
        print(json.dumps(pick_and_hear(a.threads, a.pick[0], int(a.pick[1]), a.pick[2])))
        return 0

    from tests.tiny_pocket import pocket_cache

    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_CACHE": str(pocket_cache(POCKET_BENCH_LANGUAGE))}
    rows = []
    for backend in ("piper", "pocket", "espeak"):
        e = dict(env)
        if backend == "espeak":
            e["WEAVER_DEFAULT_VOICE_MODEL"] = "/nonexistent/voice.onnx"  # the fallback path
        row = _child(["--worker", backend, "--threads", str(a.threads)], e)
        row.setdefault("backend", backend)
        row["load_average"] = round(os.getloadavg()[0], 1)  # other work on the machine slows every number
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(f"\n{'backend':8s} {'x RT':>6s} {'TTFA 1st':>9s} {'TTFA med':>9s} {'peak RSS':>9s} {'per voice':>10s} {'model':>9s}")
    for r in rows:
        if "error" in r:
            print(f"{r['backend']:8s} error: {r['error']}")
            continue
        mb = lambda b: "-" if not b else f"{b / 1e6:.1f} MB"  # noqa: E731
        print(f"{r['backend']:8s} {r['x_realtime']:6.2f} {r['ttfa_first_s']:8.2f}s {r['ttfa_median_s']:8.2f}s {r['peak_rss_mb']:7.0f}MB"
              f" {mb(r['per_voice_bytes']):>10s} {mb(r['model_bytes']):>9s}")
    pk = next((r for r in rows if r["backend"] == "pocket" and "ours_vs_raw" in r), None)
    if pk:
        o = pk["ours_vs_raw"]
        print(f"\nPocket through our code vs raw pocket-tts: {o['ours_s_per_audio_s']:.3f} vs {o['raw_s_per_audio_s']:.3f} s per audio s"
              f" = {o['ratio']:.3f}x (goal <= 1.05x)")
    if not a.skip_pick:
        from pipeline.service import Service
        from tests.fixtures.movie import cached_movie

        movie = cached_movie()
        home = tempfile.mkdtemp(prefix="bench-instant-")
        mid = Service(home=home).ingest(str(movie.movie), script=str(movie.screenplay_txt)).result["media_id"]
        pick = _child(["--pick", home, str(mid), POCKET_BENCH_LANGUAGE, "--threads", str(a.threads)], env)
        print("\npick character -> hear them:", json.dumps(pick))
        if "pick_to_hear_s" in pick:
            print(f"  {pick['pick_to_hear_s']:.1f} s from 'Instant voice' to the first audio (goal < 60 s; voice stored at "
                  f"{pick['voice_stored_s']:.1f} s, voice check done at {pick['with_voice_check_s']:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
