"""Real capture through a private PulseAudio: loopback of a null sink while paplay plays espeak-ng speech.

Covers: device list, recorded == played (cross-correlation), levels, both-sources channel layout, silence gaps,
save_last, device unplugged, sound server killed, no sound server, kill -9 of a recording process + recover,
and a real disk-full (tiny tmpfs) during a recording.
"""

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.desktop_env import need_binaries, skip_or_fail
import soundfile as sf

from capture.errors import CaptureError as WeaverError  # capture raises its own; pipeline.workflows.recordings maps them
from pipeline.media import load_audio

ROOT = Path(__file__).resolve().parents[1]
SR = 16000


need = need_binaries


@pytest.fixture(scope="module")
def pulse():
    need("pulseaudio", "pactl", "paplay", "espeak-ng")
    from tests.pulse_env import private_pulseaudio

    with private_pulseaudio(sinks=("vw_test", "vw_mic"), default="vw_test") as pa:
        yield pa


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    from tests.pulse_env import speech_wav

    d = tmp_path_factory.mktemp("speech")
    a = speech_wav(d / "a.wav", "The quick brown fox jumps over the lazy dog, and then it runs far away.", voice="en+m3")
    b = speech_wav(d / "b.wav", "Seven silver swans swam silently across the misty lake at dawn.", voice="en+f3")
    return a, b


def session(tmp_path, **kw):
    from capture.session import CaptureSession

    kw.setdefault("buffer_seconds", 30)
    s = CaptureSession(out_root=tmp_path / "caps", **kw)
    s.start()
    assert s.wait_for_audio(10), s.status().error
    return s


def wait_until(pred, timeout=10.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return False


def settle(s, seconds=0.4):
    """After a playback ended: wait until the capture hears silence again (the stream's latency has passed)."""
    assert wait_until(lambda: max(s.status().peak_db) < -80, timeout=10), s.status()
    target = s.status().listened + seconds
    assert wait_until(lambda: s.status().listened >= target, timeout=seconds + 5)


def xcorr(ref: np.ndarray, rec: np.ndarray) -> tuple[float, int]:
    """Peak of the normalised cross-correlation of ref inside rec (1.0 = identical up to gain) and its lag."""
    from scipy.signal import fftconvolve

    ref = ref - ref.mean()
    if len(rec) < len(ref):
        rec = np.pad(rec, (0, len(ref) - len(rec)))
    c = fftconvolve(rec, ref[::-1], mode="valid")
    e = np.concatenate([[0.0], np.cumsum(rec.astype(np.float64) ** 2)])
    # floor the window energy (digital silence would divide ~0 by ~0)
    win = np.sqrt(np.maximum(e[len(ref):] - e[:-len(ref)], 0.01 * float(np.dot(ref, ref))))
    score = c / (win * np.linalg.norm(ref) + 1e-12)
    i = int(np.argmax(score))
    return float(score[i]), i


def piecewise_score(ref: np.ndarray, rec: np.ndarray, piece: float = 1.0) -> float:
    """Median xcorr peak of 1 s pieces of ref found in rec: the content must be there, but an underrun of the
    *player* (paplay starved of CPU inserts a gap) does not sink the score of everything after it."""
    n = int(piece * SR)
    pieces = [ref[i:i + n] for i in range(0, len(ref) - n + 1, n) if np.abs(ref[i:i + n]).max() > 0.05]
    return float(np.median([xcorr(p, rec)[0] for p in pieces]))


def test_list_devices_shows_the_monitors(pulse):
    from capture.devices import list_devices

    devs = {d.id: d for d in list_devices()}
    assert devs["vw_test.monitor"].kind == "loopback" and devs["vw_test.monitor"].default
    assert devs["vw_test.monitor"].channels == 2
    assert "vw_mic.monitor" in devs and not devs["vw_mic.monitor"].default


def test_loopback_records_what_was_played(pulse, speech, tmp_path):
    from capture.chunks import concat_chunks

    s = session(tmp_path, source="loopback", chunk_seconds=2.0)
    try:
        folder = s.start_recording()
        t0 = time.monotonic()
        p = pulse.play(speech[0], device="vw_test", wait=False)
        assert wait_until(lambda: s.status().peak_db[0] > -30), s.status()  # level meter sees the speech
        assert p.wait(60) == 0
        settle(s)
        st = s.status()
        info = s.stop_recording()
        wall = time.monotonic() - t0
    finally:
        s.close()
    assert st.recording and st.dropped_frames == 0 and st.error is None and st.bytes_written > 0
    assert info.closed and info.channels == 2 and info.rate == 48000
    assert abs(info.duration - wall) <= 2.0  # within one chunk
    assert [c.start for c in info.chunks] == [i * 96000 for i in range(len(info.chunks))]
    out = concat_chunks(folder, tmp_path / "rec.flac")
    rec = load_audio(out, sample_rate=SR, channels="mono")
    ref = load_audio(speech[0], sample_rate=SR, channels="mono")
    score, _ = xcorr(ref, rec)
    pieces = piecewise_score(ref, rec)
    assert score > 0.8 or pieces > 0.9, (score, pieces)


def test_both_puts_loopback_on_ch0_and_mic_on_ch1(pulse, speech, tmp_path):
    from capture.chunks import concat_chunks

    s = session(tmp_path, source="both", device_id="vw_mic.monitor")  # the second null sink stands in for a mic
    try:
        folder = s.start_recording()
        pa = pulse.play(speech[0], device="vw_test", wait=False)
        pb = pulse.play(speech[1], device="vw_mic", wait=False)
        assert pa.wait(60) == 0 and pb.wait(60) == 0
        settle(s)
        info = s.stop_recording()
    finally:
        s.close()
    assert info.channels == 2 and "+" in info.device
    audio, rate = sf.read(concat_chunks(folder, tmp_path / "both.flac"), dtype="float32")
    from pipeline.media import resample

    ch0, ch1 = (resample(audio[:, i], rate, SR) for i in (0, 1))
    ra, rb = (load_audio(w, sample_rate=SR, channels="mono") for w in speech)
    scores = [xcorr(ra, ch0), xcorr(rb, ch1), xcorr(ra, ch1), xcorr(rb, ch0)]
    assert scores[0][0] > 0.8 and scores[1][0] > 0.8, (scores, len(ch0) / SR, info)
    assert xcorr(ra, ch1)[0] < 0.5 and xcorr(rb, ch0)[0] < 0.5


def test_silence_is_not_written_but_the_timeline_is_kept(pulse, speech, tmp_path):
    from capture.chunks import concat_chunks, read_manifest

    s = session(tmp_path, source="loopback", silence_seconds=1.0)
    try:
        folder = s.start_recording()
        assert wait_until(lambda: s.status().silent, timeout=6)  # null sink plays digital silence
        gap_seen_at = s.status().elapsed
        assert wait_until(lambda: s.status().elapsed >= gap_seen_at + 2.0)  # 2 s of silence that must not be stored
        assert pulse.play(speech[0], device="vw_test").returncode == 0
        settle(s)
        assert not s.status().silent
        info = s.stop_recording()
    finally:
        s.close()
    m = read_manifest(folder)
    assert len(m["gaps"]) >= 1
    g0 = m["gaps"][0]
    # the null sink was already silent before recording started, so the gap may begin before 1 s
    assert g0["start"] / 48000 < 1.5 and g0["end"] / 48000 >= gap_seen_at + 2.0
    assert info.audio_seconds < info.duration - 1.9  # the silent stretch is not on disk
    rec, rate = sf.read(concat_chunks(folder, tmp_path / "g.flac"), dtype="float32")
    assert len(rec) == round(info.duration * rate)
    ref = load_audio(speech[0], sample_rate=SR, channels="mono")
    from pipeline.media import resample

    score, lag = xcorr(ref, resample(rec.mean(axis=1), rate, SR))
    # the speech sits after the gap on the timeline (to within the resampler's and correlation's few samples:
    # a CI run measured 2.9996 s against an audio clock that read 3.000 s when playback began)
    assert score > 0.8 and lag / SR >= gap_seen_at + 2.0 - 0.01


def test_save_last_writes_the_rolling_buffer(pulse, speech, tmp_path):
    from capture.chunks import concat_chunks

    s = session(tmp_path, source="loopback", buffer_seconds=12)
    try:
        assert pulse.play(speech[1], device="vw_test").returncode == 0
        settle(s)
        info = s.save_last(8.0, tmp_path / "saved")
        st = s.status()
    finally:
        s.close()
    assert not st.recording and 0 < st.buffer_fill <= 1.0
    assert info.closed and info.duration == pytest.approx(min(8.0, st.listened), abs=0.25)
    out = concat_chunks(info.folder, tmp_path / "saved.flac")
    score, _ = xcorr(load_audio(speech[1], sample_rate=SR, channels="mono"), load_audio(out, sample_rate=SR, channels="mono"))
    assert score > 0.8, score


def test_unplugged_device_sets_error_and_keeps_chunks(pulse, speech, tmp_path):
    mod = pulse.load_null_sink("vw_unplug")
    s = session(tmp_path, source="loopback", device_id="vw_unplug.monitor")
    p = None
    try:
        s.start_recording()
        p = pulse.play(speech[0], device="vw_unplug", wait=False)
        assert wait_until(lambda: s.status().elapsed > 2.5)
        pulse.unload_module(mod)
        assert wait_until(lambda: s.status().error is not None, timeout=8)
        st = s.status()
        info = s.stop_recording()
    finally:
        if p is not None and p.poll() is None:
            p.kill()
        s.close()
    assert "disappeared" in st.error and "Monitor of Null Output" in st.error
    assert not st.running and not st.recording and st.recording_folder
    assert info.closed and len(info.chunks) >= 1 and info.duration >= 2.0
    for c in info.chunks:
        assert sf.info(str(info.folder / c.file)).frames == c.frames


def test_sound_server_killed_sets_error_and_keeps_chunks(pulse, tmp_path):
    from tests.pulse_env import private_pulseaudio

    with private_pulseaudio(sinks=("vw_dying",)) as dying:
        s = session(tmp_path, source="loopback")
        try:
            s.start_recording()
            assert wait_until(lambda: s.status().elapsed > 2.5)
            dying.kill()
            assert wait_until(lambda: s.status().error is not None, timeout=8)
            st = s.status()
            info = s.stop_recording()
        finally:
            s.close()
    assert "sound server" in st.error and not st.running
    assert info.closed and len(info.chunks) >= 1 and info.duration >= 2.0
    # the module's server is back in charge: soundcard reconnects on the next call
    from capture.devices import list_devices

    assert any(d.id == "vw_test.monitor" for d in list_devices())


def test_no_sound_server_gives_one_line_error(tmp_path):
    code = ("from capture.session import CaptureSession\n"
            "from capture.errors import CaptureError as WeaverError\n"
            "try:\n    CaptureSession('loopback').start()\nexcept WeaverError as e:\n"
            "    print(type(e).__name__ + ': ' + str(e)); raise SystemExit(3)\n")
    env = dict(os.environ, PULSE_SERVER=f"unix:{tmp_path}/nothing/native", PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 3, r.stderr
    line = r.stdout.strip()
    assert "\n" not in line and line.startswith("AudioBackendError: no audio loopback device found")
    assert "PulseAudio/PipeWire" in line


KILL_SCRIPT = """
import sys, time
from pathlib import Path
from capture.session import CaptureSession
s = CaptureSession("loopback", out_root=Path(sys.argv[1]), buffer_seconds=20)
s.start()
assert s.wait_for_audio(10)
print("REC", s.start_recording(), flush=True)
while True:
    time.sleep(1)
"""


def test_kill_9_loses_at_most_the_chunk_in_flight(pulse, speech, tmp_path):
    from capture.chunks import concat_chunks, recover

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(tmp_path / "caps")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    player = None
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready, "recording process did not start"
        line = proc.stdout.readline().split()
        t_rec = time.monotonic()
        assert line and line[0] == "REC", proc.stderr.read() if proc.poll() is not None else line
        folder = Path(line[1])
        player = pulse.play(speech[0], device="vw_test", wait=False)
        assert wait_until(lambda: (folder / "chunk_000002.flac").exists(), timeout=15)
        assert wait_until(lambda: time.monotonic() - t_rec >= 5.5, timeout=10)
        proc.send_signal(signal.SIGKILL)
        elapsed = time.monotonic() - t_rec
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        if player is not None and player.poll() is None:
            player.kill()
    info = recover(folder)
    assert info.closed and info.duration >= elapsed - 2.0, (info.duration, elapsed)
    assert not list(folder.glob("*.part"))
    data, _ = sf.read(concat_chunks(folder, tmp_path / "k.flac"), dtype="float32")
    assert len(data) == sum(c.frames for c in info.chunks)


def test_disk_full_stops_recording_cleanly(pulse, tmp_path):
    from tests.pulse_env import tiny_tmpfs

    noise = tmp_path / "noise.wav"
    sf.write(noise, (0.5 * np.random.default_rng(0).uniform(-1, 1, (48000 * 12, 2))).astype(np.float32), 48000)
    try:
        disk = tiny_tmpfs("1m")  # a 2 s chunk of loud noise is ~350 KB
        mnt = disk.__enter__()
    except PermissionError as e:
        skip_or_fail(str(e))
    p = None
    try:
        from capture.session import CaptureSession

        s = CaptureSession("loopback", out_root=mnt, buffer_seconds=20)
        s.start()
        try:
            assert s.wait_for_audio(10)
            folder = s.start_recording()
            p = pulse.play(noise, device="vw_test", wait=False)
            assert wait_until(lambda: s.status().error is not None, timeout=12)
            st = s.status()
            info = s.stop_recording()
            assert s.status().running  # the rolling buffer keeps going
        finally:
            s.close()
        assert st.error.startswith("disk full") and not st.recording and st.recording_folder == str(folder)
        assert info.closed is True or info.error  # closed when the manifest still fitted
        assert len(info.chunks) >= 1 and not list(folder.glob("*.part"))
        for c in info.chunks:
            assert sf.info(str(folder / c.file)).frames == c.frames
        with pytest.raises(WeaverError):
            s.stop_recording()
    finally:
        if p is not None and p.poll() is None:
            p.kill()
        disk.__exit__(None, None, None)
