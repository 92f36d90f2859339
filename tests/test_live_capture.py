"""Live lines while capturing, through a real PulseAudio null sink: a generated two-speaker scene is played in
real time into the sink while the capture manager listens with the streaming analyser on."""

from __future__ import annotations

import os
import time

import pytest

from tests.pulse_env import private_pulseaudio, pulseaudio_available

pytestmark = [pytest.mark.audio, pytest.mark.slow]

if not pulseaudio_available() and not os.environ.get("CI"):
    pytest.skip("pulseaudio not installed", allow_module_level=True)


@pytest.fixture(scope="module")
def pulse():
    with private_pulseaudio(sinks=("vw_live",), default="vw_live") as pa:
        yield pa


@pytest.fixture(scope="module")
def scene_wav(tmp_path_factory):
    from pipeline.media import write_audio
    from tests.live_scene import RATE, scene

    audio, truth = scene()
    path = tmp_path_factory.mktemp("scene") / "scene.wav"
    write_audio(path, audio, RATE)
    return path, truth, len(audio) / RATE


def play_and_watch(pulse, mgr, wav, seconds, settle=8.0):
    """Play the scene while collecting live events; returns (events with arrival times, playback end time, the
    audio-clock position playback started at)."""
    live = mgr.live
    got, seq = [], 0
    t0 = time.monotonic()
    offset = live._clock()  # session audio clock when playback starts (the scene's t=0, give or take latency)
    proc = pulse.play(wav, wait=False)
    ended = None
    while True:
        seq, evs = live.events_since(seq, timeout=0.3)
        now = time.monotonic() - t0
        got += [(now, e) for e in evs]
        if ended is None and proc.poll() is not None:
            ended = now
        if ended is not None and now > ended + settle:
            break
        assert now < seconds + 60, "playback did not end"
    assert proc.returncode == 0
    return got, ended, offset


def test_live_lines_arrive_while_the_scene_plays(pulse, scene_wav, tmp_path):
    from pipeline.workflows.recordings import CaptureManager
    from tests.live_scene import speaker_consistency, wer

    wav, truth, seconds = scene_wav
    mgr = CaptureManager(tmp_path)
    mgr.start(source="loopback", buffer_minutes=2, live=True)
    try:
        got, ended, offset = play_and_watch(pulse, mgr, wav, seconds)
        lines = mgr.live.snapshot()
        status = mgr.status()
    finally:
        mgr.stop()
    line_events = [(t, e) for t, e in got if e["type"] == "line"]
    assert line_events, f"no live lines at all (analyser: {mgr.live.status()})"
    # lines arrive while it plays: the first well before playback ends, most of the text before the end
    first = line_events[0][0]
    assert first < ended - 10, f"first live line at {first:.1f} s, playback ended at {ended:.1f} s"
    before_end = {e["id"] for t, e in line_events if t < ended}
    assert len(before_end) >= len(truth) - 2
    hyp = " ".join(ln["text"] for ln in lines)
    ref = " ".join(t[3] for t in truth)
    w = wer(ref, hyp)
    print(f"live WER {w:.3f}; lines {len(lines)} for {len(truth)} spoken; status {mgr.live.status()}")
    assert w < 0.25, f"live WER {w:.2f}\nref: {ref}\nhyp: {hyp}"
    shifted = [(a + offset, b + offset, spk, text) for a, b, spk, text in truth]
    consistency, mapping = speaker_consistency(shifted, lines)
    assert consistency >= 0.8, (consistency, mapping, [(ln["speaker"], ln["text"]) for ln in lines])
    assert len(set(mapping.values())) == 2, mapping  # two voices, two labels
    assert status["dropped_frames"] == 0
    # how far behind playback is measured by bench/bench_live_capture.py; here: every line ends up final
    assert all(ln["final"] for ln in lines)
