"""Live lines while capturing, through a real PulseAudio null sink: a generated two-speaker scene is played in
real time into the sink while the capture manager listens with the streaming analyser on."""

from __future__ import annotations

import os
import time

import numpy as np
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


def enrol_joe(home):
    """Enrol the Piper voice as "Joe" in the library from a sentence the scene does not contain."""
    from pipeline.media import write_audio
    from pipeline.service import Service
    from tests.live_scene import RATE, speak

    a = np.concatenate([speak("joe", "We walked along the beach and looked at the grey sea for an hour."),
                        speak("joe", "Later the rain started and everybody ran back to the car.")])
    write_audio(home / "joe.wav", a, RATE)
    svc = Service(home=home)
    try:
        svc.enroll_voiceprint("Joe", str(home / "joe.wav"))
    finally:
        svc.lib.close()


def play_and_watch(pulse, mgr, wav, seconds, settle=20.0):
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
    enrol_joe(tmp_path)  # a voice known from earlier: its lines come named
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
    assert len(before_end) >= len(truth) // 2  # on a loaded 2-core machine it lags: bench_live_capture measures by how much
    hyp = " ".join(ln["text"] for ln in lines)
    ref = " ".join(t[3] for t in truth)
    w = wer(ref, hyp)
    print(f"live WER {w:.3f}; lines {len(lines)} for {len(truth)} spoken; status {mgr.live.status()}")
    assert w < 0.25, f"live WER {w:.2f}\nref: {ref}\nhyp: {hyp}"
    shifted = [(a + offset, b + offset, spk, text) for a, b, spk, text in truth]
    consistency, mapping = speaker_consistency(shifted, lines)
    assert consistency >= 0.8, (consistency, mapping, [(ln["speaker"], ln["text"]) for ln in lines])
    assert len(set(mapping.values())) == 2, mapping  # two voices, two labels
    assert mapping["joe"] == "Joe" and mapping["anna"].startswith("S"), mapping  # the enrolled voice by name
    # capture never waits for the analyser; the drop estimate counts any >0.5 s scheduling stall of the reader, which
    # a machine at load 13 on 2 cores produces now and then: allow a stall's worth, bench_live_capture prints the count
    assert status["dropped_frames"] < 0.5 * status["rate"], status["dropped_frames"]
    # how far behind playback is measured by bench/bench_live_capture.py; here: every line ends up final
    assert all(ln["final"] for ln in lines)


def test_keep_a_line_and_save_with_live_lines_then_the_queued_analysis_refines_them(pulse, scene_wav, tmp_path):
    from pipeline.library.live import LIVE_FILE
    from pipeline.service import Service
    from pipeline.library import Library
    from pipeline.workflows.recordings import CaptureManager
    from web_ui.jobs import BackgroundJobs

    wav, truth, seconds = scene_wav
    jobs = BackgroundJobs(lambda: Service(home=tmp_path))
    queued = []

    def queue(media_id):  # what the panel's capture routes install: the analysis on the job runner
        svc = Service(home=tmp_path)
        try:
            prepared = svc.prepare_analyze(media_id)
        finally:
            svc.lib.close()
        queued.append(jobs.submit(f"job-{prepared.job_id}", lambda s, cancel: prepared.run(s, None, cancel)))
        return prepared.job_id

    mgr = CaptureManager(tmp_path)
    mgr.queue_analysis = queue
    mgr.start(source="loopback", buffer_minutes=2, live=True)
    try:
        play_and_watch(pulse, mgr, wav, seconds, settle=5.0)
        kept = mgr.keep_line(None)
        saved = mgr.save_last(seconds / 60 + 0.1, analyze=True)
        live_lines = mgr.live.snapshot()
    finally:
        mgr.stop()
    lib = Library(tmp_path)
    try:
        clip = lib.db.execute("SELECT s.text, c.status, sp.label FROM clips c JOIN segments s ON s.id = c.segment_id "
                              "LEFT JOIN speakers sp ON sp.id = s.speaker_id WHERE c.media_id = ?",
                              [kept["media_id"]]).fetchall()
        assert clip == [(kept["line"]["text"], "kept", kept["line"]["speaker"])]
        live_rows = lib.db.execute("SELECT count(*) FROM segments WHERE media_id = ? AND origin = 'live'",
                                   [saved]).fetchone()[0]
        assert live_rows >= len(truth) // 2 and live_rows <= len(live_lines)
    finally:
        lib.close()
    assert mgr.last_saved["lines"] == live_rows and mgr.last_job_id is not None
    # the queued offline analysis replaces the live segments (final wins); the live transcript stays beside it
    lib = Library(tmp_path)
    try:
        deadline = time.monotonic() + 600
        while (state := lib.db.execute("SELECT state FROM jobs WHERE id = ?", [mgr.last_job_id]).fetchone()[0]) in (
                "queued", "running") and time.monotonic() < deadline:
            time.sleep(0.5)
        origins = {r[0] for r in lib.db.execute("SELECT origin FROM segments WHERE media_id = ?", [saved]).fetchall()}
    finally:
        lib.close()
        jobs.shutdown()
    assert not jobs.errors, jobs.errors
    assert state == "done" and origins and "live" not in origins, (state, origins)
    assert (tmp_path / "media" / str(saved) / LIVE_FILE).is_file()
