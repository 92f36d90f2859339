"""Barge-in on a real sound server: a private PulseAudio (tests/pulse_env.py) with two null sinks.

- ``vw_out``: the speakers. Voice mode plays its reply there (capture/voice_io.SoundcardPlayer) and records its
  monitor as the echo reference (capture/voice_io.OutputRecorder).
- ``vw_mic``: the room. Its monitor is the microphone. A module-loopback feeds what ``vw_out`` plays back into it
  (the speakers heard by the microphone, ~30 ms late); the user's speech is injected with paplay.

The test records both monitors sample-locked, finds the injected speech's onset in the microphone by
cross-correlation with the injected waveform, and the last sound of the reply on the speakers: the gap must be at
most 150 ms (less the delay the deciding frame was handled with, where the CPU was measurably starved: the reply's
output ran dry or that frame came late, while the engine's own work per frame stayed far under a frame, its median
under a quarter). The reply's own echo and a "film" played on the speakers must never start a turn; the user's words
must be transcribed (WER vs the injected text).
"""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from pulse_env import private_pulseaudio, pulseaudio_available

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not pulseaudio_available() or shutil.which("espeak-ng") is None,
                                                   reason="needs pulseaudio, pactl, paplay and espeak-ng")]
pytest.importorskip("silero_vad")
pytest.importorskip("faster_whisper")
if importlib.util.find_spec("soundcard") is None:  # importing it connects to a sound server
    pytest.skip("needs soundcard", allow_module_level=True)

import speech_samples as ss  # noqa: E402

RATE = 16000
FIRST_TEXT = "Hello there. What is your name?"
BARGE_TEXT = "Wait, tell me about the big boat now."  # voiced onset (Silero flags /s/ only at the vowel)
BOUND = 0.15
SKEW = 0.1  # seconds the speakers may fall quiet before the onset in the mic track (see the test)


def default_voice(text: str) -> np.ndarray:
    from pipeline.voices import default_voice as dv

    audio, _ = dv.speak(text, rate=RATE)
    return ss.trim(np.asarray(audio, dtype=np.float32))


def write_wav(path, audio: np.ndarray) -> str:
    import soundfile as sf

    sf.write(str(path), audio, RATE, subtype="PCM_16")
    return str(path)


class LockstepRecorder:
    """Records several sources block by block on one thread, so sample i of each is (within a block) the same time."""

    def __init__(self, ids: list[str], block: int = 160):
        self.ids, self.block = ids, block
        self.data = {i: [] for i in ids}
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        from capture.devices import soundcard_module

        sc = soundcard_module()
        mics = [sc.get_microphone(i, include_loopback=True) for i in self.ids]
        recs = [m.recorder(samplerate=RATE, channels=1, blocksize=self.block) for m in mics]
        for r in recs:
            r.__enter__()
        try:
            for r in recs:
                r.flush()
            self._ready.set()
            while not self._stop.is_set():
                for i, r in zip(self.ids, recs):
                    self.data[i].append(r.record(numframes=self.block)[:, 0].copy())
        finally:
            for r in recs:
                r.__exit__(None, None, None)

    def start(self):
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def sounding(self, source: str, seconds: float = 0.3, threshold_db: float = -45.0) -> bool:
        """Whether every 10 ms of the last ``seconds`` recorded from ``source`` is louder than threshold_db."""
        blocks = list(self.data[source][-int(np.ceil(seconds * RATE / self.block)):])
        if len(blocks) * self.block < seconds * RATE:
            return False
        x = np.concatenate(blocks).astype(np.float64)
        x = x[: len(x) // 160 * 160].reshape(-1, 160)
        return bool(np.all(10 * np.log10(np.mean(x ** 2, axis=1) + 1e-12) > threshold_db))

    def stop(self) -> dict[str, np.ndarray]:
        self._stop.set()
        self._thread.join(10)
        n = min(sum(len(b) for b in v) for v in self.data.values())
        return {i: np.concatenate(v)[:n] for i, v in self.data.items()}


def onset_of(recording: np.ndarray, speech: np.ndarray) -> float:
    """Where ``speech`` starts inside ``recording`` (seconds), by FFT cross-correlation."""
    n = 1 << int(np.ceil(np.log2(len(recording) + len(speech))))
    c = np.fft.irfft(np.fft.rfft(recording, n) * np.conj(np.fft.rfft(speech, n)), n)[: len(recording)]
    return int(np.argmax(c)) / RATE


def quiet_after(x: np.ndarray, t: float, threshold_db: float = -45.0, hop: int = 80, hold: float = 0.3) -> float:
    """Start of the first stretch of ``hold`` seconds quieter than threshold_db after t (the speakers went quiet)."""
    start = int(t * RATE)
    blocks = x[start: start + (len(x) - start) // hop * hop].reshape(-1, hop)
    quiet = 10 * np.log10(np.mean(blocks.astype(np.float64) ** 2, axis=1) + 1e-12) <= threshold_db
    need = int(hold * RATE / hop)
    run = 0
    for i, q in enumerate(quiet):
        run = run + 1 if q else 0
        if run >= need:
            return t + (i + 1 - need) * hop / RATE
    raise AssertionError("the speakers never went quiet after the user spoke")


@contextlib.contextmanager
def forget_server():
    """After the private daemon is gone, drop soundcard's exit hook for it (shutting a dead context aborts)."""
    try:
        yield
    finally:
        import atexit
        import sys

        pa = sys.modules.get("soundcard.pulseaudio")
        if pa is not None and hasattr(pa, "_pulse"):
            atexit.unregister(pa._pulse._shutdown)  # the next soundcard_module() call reconnects


def wait_for(cond, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return False


def test_barge_in_stops_the_reply_within_150_ms_and_the_words_are_heard(tmp_path, artifacts_dir):
    from pipeline.chat.conversation import transcribe_utterance
    from pipeline.chat.voice_mode import FRAME_S
    from pipeline.voices.check import word_error_rate
    from trayapp.voice_chat import build_voice_mode

    first, barge = default_voice(FIRST_TEXT), default_voice(BARGE_TEXT)
    hiss = lambda n: (np.random.default_rng(n).standard_normal(n) * 0.02).astype(np.float32)  # noqa: E731
    # ~12 s of reply; a -34 dB hiss under it keeps the speakers audibly busy through the pauses between words
    reply_sentences = [a + hiss(len(a)) for a in (ss.espeak(s, voice="en+f3") for s in ss.SENTENCES)]
    film = ss.espeak("Nobody in the village knew why he kept doing it. The storm pushed the ship onto the rocks.",
                     voice="en+m7")
    first_wav = write_wav(tmp_path / "first.wav", np.concatenate([ss.silence(0.3), first]))
    barge_wav = write_wav(tmp_path / "barge.wav", np.concatenate([ss.silence(0.3), barge]))
    film_wav = write_wav(tmp_path / "film.wav", film)

    with private_pulseaudio(sinks=("vw_out", "vw_mic"), rate=48000, default="vw_out") as pa, forget_server():
        pa.pactl("load-module", "module-loopback", "source=vw_out.monitor", "sink=vw_mic", "latency_msec=30",
                 "source_dont_move=true", "sink_dont_move=true")
        events, heard, cancels = [], [], []

        def respond(text, cancel, play):
            heard.append(text)
            cancels.append(cancel)
            for s in reply_sentences if len(heard) == 1 else []:
                if cancel.cancelled:
                    break
                play(s, RATE)
            return SimpleNamespace(text="reply")

        vm, frames, cleanup = build_voice_mode(None, 0, mic="vw_mic.monitor", speaker="vw_out",
                                               on_event=lambda k, d: events.append((k, d, time.monotonic())))
        vm.respond, vm.transcribe = respond, transcribe_utterance
        stop_feed = threading.Event()

        def feed():
            for frame, t in frames:
                vm.feed(frame, t)
                if stop_feed.is_set():
                    return

        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        rec = LockstepRecorder(["vw_out.monitor", "vw_mic.monitor"], block=320).start()
        try:
            time.sleep(0.5)  # let the streams settle (no assertion depends on it)
            # a film on the speakers, heard by the microphone: not a turn
            pa.play(film_wav, device="vw_out")
            time.sleep(1.0)
            assert not any(k == "speech_start" for k, _, _ in events), events

            # the user's first turn → transcribed → the reply plays
            pa.play(first_wav, device="vw_mic")
            assert wait_for(lambda: vm.player.playing, 30), events
            assert heard and word_error_rate([FIRST_TEXT], [heard[0]]) <= 0.2, heard
            time.sleep(1.5)  # the reply plays, its echo is in the microphone
            assert not vm.barge_ins, f"the reply's own echo triggered a barge-in: {events}"
            echo_holds = dict(vm.holds)

            # the user cuts in while the reply sounds (not in a pause between its sentences, which a loaded
            # machine makes longer: the speakers would be quiet already and nothing could be measured)
            assert wait_for(lambda: rec.sounding("vw_out.monitor"), 10), events
            pa.play(barge_wav, device="vw_mic")
            assert wait_for(lambda: vm.barge_ins, 10), events
            assert wait_for(lambda: len(heard) == 2, 60), events
        finally:
            time.sleep(0.3)
            tracks = rec.stop()
            stop_feed.set()
            cleanup()
            feeder.join(10)

        assert cancels[0].cancelled
        assert len(vm.barge_ins) == 1, events  # only the user's speech interrupted, never the echo
        spk, mic = tracks["vw_out.monitor"], tracks["vw_mic.monitor"]
        film_end = onset_of(mic, film) + len(film) / RATE
        first_at = onset_of(mic[int(film_end * RATE):], first) + film_end
        barge_at = onset_of(mic[int((first_at + len(first) / RATE) * RATE):], barge) + first_at + len(first) / RATE
        np.save(artifacts_dir / "speakers.npy", spk)
        np.save(artifacts_dir / "mic.npy", mic)
        (artifacts_dir / "events.txt").write_text("\n".join(map(repr, events)) + f"\nfilm_end {film_end} first_at {first_at} "
                                                  f"barge_at {barge_at}\n")
        b = vm.barge_ins[0]
        reply_part = spk[int(first_at * RATE):int(barge_at * RATE)]
        blocks = reply_part[: len(reply_part) // 160 * 160].reshape(-1, 160)
        underruns = int(np.sum(~blocks.any(axis=1) & (np.arange(len(blocks)) > np.argmax(blocks.any(axis=1)))))
        starved = (f"; CPU starved: the deciding frame was handled {1000 * b['lag']:.0f} ms late and the reply had "
                   f"{underruns} silent 10 ms gaps" if b["lag"] > 0.05 or underruns else "")
        # the engine may silence the reply on the onset's first frames, and the two recorded streams are skewed (CI
        # runs measured the speakers quiet 0 and 29 ms before the onset the mic track shows, the engine's own onset
        # 56 ms after its stop); quiet 100 ms earlier or more means a pause of the reply's own, not the barge-in
        quiet_at = quiet_after(spk, barge_at - 0.3)
        assert quiet_at >= barge_at - SKEW, (f"the speakers were already quiet {1000 * (barge_at - quiet_at):.0f} ms "
                                             f"before the user spoke{starved}")
        gap = max(0.0, quiet_at - barge_at)
        costs = np.array(vm.frame_costs)
        print(f"\nbarge-in: speakers quiet {gap * 1000:.0f} ms after the user's speech onset (engine: onset frame at "
              f"{b['t_onset']:.3f}, silenced {1000 * (b['t_stopped'] - b['t_onset']):.0f} ms later; the deciding frame was "
              f"handled {1000 * b['lag']:.0f} ms after it was complete; handling a frame took {1000 * np.median(costs):.1f} ms"
              f" median, {1000 * np.percentile(costs, 99):.1f} ms p99 over {len(costs)})")
        # the engine's own work stays far under a frame's time (32 ms), so frames handled late were delivered late or
        # the CPU went elsewhere (this host: full collections of a big test process, steal); only then the deciding
        # frame's delay is not held against the engine
        assert np.median(costs) < FRAME_S / 4, f"handling a frame is too slow: {1000 * np.median(costs):.1f} ms median"
        engine_gap = gap - b["lag"] if starved else gap
        assert engine_gap <= BOUND, f"speakers quiet {1000 * gap:.0f} ms after the onset{starved}: {events}"
        print(f"tentative pauses while only the reply's echo was heard: {echo_holds['paused']}")
        assert echo_holds["paused"] <= 1, f"the reply's own echo kept pausing it: {echo_holds}"
        wer = word_error_rate([BARGE_TEXT], [heard[1]])
        print(f"heard {heard[1]!r} (WER {wer:.2f})")
        assert wer <= 0.25
