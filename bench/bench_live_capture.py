"""Live lines while capturing: how far behind playback lines appear, what the analyser costs, whether capture
drops frames, and how live text compares with the offline transcript of the same audio.

A generated two-speaker scene (Piper default voice + espeak-ng, tests/live_scene.py) plays in real time into a
private PulseAudio null sink while the capture manager listens with live lines on.

Run: .venv/bin/python bench/bench_live_capture.py [--minutes 2] [--ten]      (--ten: a 10-minute stream)
Goals (issue 14, 2 cores, bundled tiny.en): line p95 ≤ 3 s behind playback, 0 dropped frames, analyser ≤ 1.2 cores.
Prints: latency p50/p95 (final line vs the end of its spoken line, wall clock), first-words latency, CPU share of
the process with and without live lines (the difference is the analyser), dropped frames, WER live/final/truth.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def run(minutes: float, baseline_seconds: float) -> dict:
    from pipeline.media import write_audio
    from pipeline.stages.asr import FasterWhisperAsr
    from pipeline.workflows.recordings import CaptureManager
    from tests.live_scene import RATE, scene, speaker_consistency, wer
    from tests.pulse_env import private_pulseaudio

    audio, truth = scene(minutes * 60)
    seconds = len(audio) / RATE
    home = Path(tempfile.mkdtemp(prefix="vw-bench-live-"))
    wav = home / "scene.wav"
    write_audio(wav, audio, RATE)
    res: dict = {"stream_seconds": round(seconds, 1), "lines_spoken": len(truth)}
    with private_pulseaudio(sinks=("vw_bench",), default="vw_bench") as pa:
        # baseline: capture alone (listening, no live lines) while the scene's start plays
        mgr = CaptureManager(home)
        mgr.start(source="loopback", buffer_minutes=minutes + 2)
        mgr.session.wait_for_audio(5)
        p = pa.play(wav, wait=False)
        c0, w0 = cpu_seconds(), time.monotonic()
        time.sleep(baseline_seconds)
        res["cpu_capture_only"] = round((cpu_seconds() - c0) / (time.monotonic() - w0), 3)
        p.terminate()
        p.wait()
        mgr.stop()

        mgr = CaptureManager(home)
        mgr.start(source="loopback", buffer_minutes=minutes + 2, live=True)
        mgr.session.wait_for_audio(5)
        live = mgr.live
        while not live.passes:  # models loaded
            time.sleep(0.1)
        arrivals: dict[int, dict] = {}
        seq = 0
        t0 = time.monotonic()
        offset = live._clock()
        c0 = cpu_seconds()
        proc = pa.play(wav, wait=False)
        ended = None
        while True:
            seq, events = live.events_since(seq, timeout=0.25)
            now = time.monotonic() - t0
            for e in events:
                if e["type"] == "line":
                    a = arrivals.setdefault(e["id"], {"first": now})
                    if e["final"] and "final" not in a:
                        a["final"] = now
                elif e.get("text"):
                    print(f"  notice at {now:.0f} s: {e['text']}", flush=True)
            if ended is None and proc.poll() is not None:
                ended = now
                res["cpu_with_live"] = round((cpu_seconds() - c0) / now, 3)
            if ended is not None and now > ended + 6:
                break
        status = mgr.status()
        lines = live.snapshot()
        ring = mgr.session.ring
        captured = ring.last(min(ring.seconds, ring.total_frames / ring.rate - offset)).mean(axis=1)
        res["live_status"] = live.status()
        mgr.stop()
    res["dropped_frames"] = status["dropped_frames"]
    res["analyser_cpu_share"] = round(res["cpu_with_live"] - res["cpu_capture_only"], 3)
    analysed = max(1.0, seconds - res["live_status"]["skipped_seconds"])
    res["analyser_cpu_per_audio_second"] = round(res["analyser_cpu_share"] * seconds / analysed, 3)
    # latency: a final line's arrival behind the end (on the playback clock) of the spoken line it overlaps most
    shifted = [(a + offset, b + offset, spk, text) for a, b, spk, text in truth]
    lat_final, lat_first = [], []
    for ln in lines:
        if ln["id"] not in arrivals or "final" not in arrivals[ln["id"]]:
            continue
        best = max(shifted, key=lambda tr: min(tr[1], ln["end"]) - max(tr[0], ln["start"]))
        if min(best[1], ln["end"]) - max(best[0], ln["start"]) <= 0:
            continue
        lat_final.append(arrivals[ln["id"]]["final"] - (best[1] - offset))
        lat_first.append(arrivals[ln["id"]]["first"] - (ln["start"] - offset))
    res["latency_final_p50"] = round(float(np.percentile(lat_final, 50)), 2) if lat_final else None
    res["latency_final_p95"] = round(float(np.percentile(lat_final, 95)), 2) if lat_final else None
    res["latency_first_words_p50"] = round(float(np.percentile(lat_first, 50)), 2) if lat_first else None
    res["lines_live"] = len(lines)
    ref = " ".join(t[3] for t in truth)
    live_text = " ".join(ln["text"] for ln in lines)
    res["wer_live_vs_truth"] = round(wer(ref, live_text), 3)
    # final: the offline transcript (tiny.en over the whole captured audio, as the analysis chain's ASR stage)
    from pipeline.media import resample

    final = FasterWhisperAsr(temperature=0.0).transcribe(resample(captured.astype(np.float32), 48000, RATE), RATE,
                                                        language="en")
    final_text = " ".join(ln.text for ln in final.lines)
    res["wer_final_vs_truth"] = round(wer(ref, final_text), 3)
    res["wer_live_vs_final"] = round(wer(final_text, live_text), 3)
    res["speaker_consistency"] = round(speaker_consistency(shifted, lines)[0], 3)
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=2.0, help="stream length (default 2)")
    ap.add_argument("--ten", action="store_true", help="a 10-minute stream")
    ap.add_argument("--baseline", type=float, default=15.0, help="seconds of capture-only CPU baseline")
    a = ap.parse_args()
    res = run(10.0 if a.ten else a.minutes, a.baseline)
    print(f"stream {res['stream_seconds']} s, {res['lines_spoken']} lines spoken, {res['lines_live']} live lines")
    print(f"latency behind playback (final line): p50 {res['latency_final_p50']} s, p95 {res['latency_final_p95']} s"
          f" (goal p95 <= 3 s); first words of a line p50 {res['latency_first_words_p50']} s")
    print(f"CPU: process {res['cpu_with_live']} cores with live lines, {res['cpu_capture_only']} capture only "
          f"-> analyser {res['analyser_cpu_share']} cores (goal <= 1.2); "
          f"{res['analyser_cpu_per_audio_second']} CPU-s per second of audio analysed (< 1: it can keep up on one free core)")
    print(f"dropped frames: {res['dropped_frames']} (goal 0)")
    print(f"WER live vs truth {res['wer_live_vs_truth']}, final (offline tiny.en) vs truth {res['wer_final_vs_truth']},"
          f" live vs final {res['wer_live_vs_final']}; speaker consistency {res['speaker_consistency']}")
    print(f"analyser: {res['live_status']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
