"""Hands-free voice mode (pipeline/chat/voice_mode.py) on generated audio: the user's speech from the default
Piper voice, replies and "films" from espeak-ng, white noise and silence; the real Silero VAD and Whisper tiny.en.

Turn logic (start/end thresholds, hangover, noise dropped), echo safety (our reply or a film heard back through
the microphone never starts a turn, even with a delay, gain and room reflections) and barge-in through the engine
with an in-memory player."""

from __future__ import annotations

import shutil
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("silero_vad")
if shutil.which("espeak-ng") is None:
    pytest.skip("needs espeak-ng", allow_module_level=True)

import speech_samples as ss  # noqa: E402

from capture.voice_io import BufferPlayer  # noqa: E402
from pipeline.chat.voice_mode import (  # noqa: E402
    FRAME, FRAME_S, RATE, EchoGate, EchoReference, EnergyFrameVad, SileroFrameVad, SpeechDropped,
    SpeechEnd, SpeechPause, SpeechStart, TurnDetector, VadSettings, VoiceMode,
)

USER_TEXT = "What is your name? Tell me about the harbor."
BARGE_TEXT = "Wait, where is the lighthouse? Tell me now."  # voiced onset: Silero flags unvoiced /s/ only at the vowel


def user_speech(text: str = USER_TEXT) -> np.ndarray:
    """The user's words in the default voice (Piper when installed, else espeak-ng), 16 kHz, trimmed."""
    from pipeline.voices import default_voice

    audio, _ = default_voice.speak(text, rate=RATE)
    return ss.trim(np.asarray(audio, dtype=np.float32))


@pytest.fixture(scope="module")
def user() -> np.ndarray:
    return user_speech()


@pytest.fixture(scope="module")
def reply() -> np.ndarray:
    return ss.espeak("The old lighthouse keeper walked down to the harbor every morning. "
                     "She counted the boats and wrote their names in a small notebook.", voice="en+f3")


def run_detector(mic: np.ndarray, reference: EchoReference | None = None, settings: VadSettings | None = None,
                 vad=None) -> list:
    vad = vad or SileroFrameVad()
    det, gate = TurnDetector(settings), EchoGate(reference)
    events = []
    for i in range(len(mic) // FRAME):
        t = i * FRAME_S
        r = gate.process(mic[i * FRAME:(i + 1) * FRAME], t)
        e = det.feed(r.residual, t, vad.prob(r.residual), r.echo_share)
        if e is not None:
            events.append(e)
    return events


def heard(speech: np.ndarray, delay: float = 0.07, gain: float = 0.5, reflections: bool = False,
          seed: int = 1) -> np.ndarray:
    """What a microphone picks up of played audio: late, quieter, optionally with room reflections, a little hiss."""
    x = speech
    if reflections:
        ir = np.zeros(int(0.05 * RATE))
        ir[[0, int(0.007 * RATE), int(0.019 * RATE), int(0.033 * RATE)]] = [1.0, 0.4, -0.25, 0.15]
        x = np.convolve(speech, ir)[:len(speech)]
    out = np.zeros(len(x) + int(delay * RATE), dtype=np.float32)
    out[int(delay * RATE):] = gain * x
    return out + (np.random.default_rng(seed).standard_normal(len(out)) * 0.002).astype(np.float32)


# -- turn detection ------------------------------------------------------------------------------------
def test_one_utterance_is_one_turn_ended_after_the_hangover(user):
    mic = np.concatenate([ss.silence(1.0), user, ss.silence(1.5)])
    events = run_detector(mic)
    kinds = [type(e) for e in events]
    assert kinds[0] == SpeechStart and kinds[-1] == SpeechEnd and set(kinds[1:-1]) == {SpeechPause}
    start, pause, end = events[0], events[-2], events[-1]
    assert np.array_equal(pause.audio, end.audio)  # what a transcription started at the pause would hear
    assert end.t_decided - pause.t >= VadSettings().end_hangover - 0.25  # time left to transcribe ahead
    spoken_end = 1.0 + len(user) / RATE
    assert abs(start.t - 1.0) < 0.1 and start.t_decided - 1.0 < 0.15  # onset found and decided quickly
    assert abs(end.t - spoken_end) < 0.25
    assert end.t_decided - end.t == pytest.approx(VadSettings().end_hangover, abs=FRAME_S)
    # the turn's audio holds all the speech (pre-roll included), not the long trailing silence
    assert len(end.audio) / RATE == pytest.approx(len(user) / RATE, abs=0.6)
    assert len(end.audio) / RATE < len(user) / RATE + 0.6


def test_silence_and_noise_are_never_sent():
    noise = (np.random.default_rng(0).standard_normal(3 * RATE) * 0.05).astype(np.float32)
    hum = (0.2 * np.sin(2 * np.pi * 120 * np.arange(3 * RATE) / RATE)).astype(np.float32)
    for mic in (ss.silence(3.0), noise, hum):
        assert [e for e in run_detector(mic) if isinstance(e, (SpeechStart, SpeechEnd))] == []


def test_a_click_is_dropped_not_sent(user):
    # a 100 ms burst of speech is below min_speech: it may start, but it ends as SpeechDropped, never SpeechEnd
    mic = np.concatenate([ss.silence(0.5), user[: int(0.1 * RATE)], ss.silence(1.2)])
    events = run_detector(mic, settings=VadSettings(start_frames=1))
    assert not any(isinstance(e, SpeechEnd) for e in events)


def test_hangover_bridges_a_pause_but_a_long_silence_ends_the_turn(user):
    short = np.concatenate([ss.silence(0.5), user, ss.silence(0.25), user, ss.silence(1.2)])
    assert sum(isinstance(e, SpeechEnd) for e in run_detector(short)) == 1
    long = np.concatenate([ss.silence(0.5), user, ss.silence(1.2), user, ss.silence(1.2)])
    assert sum(isinstance(e, SpeechEnd) for e in run_detector(long)) == 2


def test_start_and_end_thresholds_are_separate():
    s = VadSettings()
    assert s.start_threshold > s.end_threshold
    det = TurnDetector(VadSettings(start_frames=1, end_hangover=2 * FRAME_S, min_speech=0.0))
    loud = np.full(FRAME, 0.1, dtype=np.float32)
    assert det.feed(loud, 0.0, 0.5) is None  # above the end threshold but below the start one: no start
    assert isinstance(det.feed(loud, FRAME_S, 0.7), SpeechStart)
    assert det.feed(loud, 2 * FRAME_S, 0.4) is None  # below start, above end: speech goes on
    assert det.feed(loud, 3 * FRAME_S, 0.1) is None
    assert isinstance(det.feed(loud, 4 * FRAME_S, 0.1), SpeechEnd)


def test_energy_fallback_finds_the_utterance(user):
    mic = np.concatenate([ss.silence(1.0), user, ss.silence(1.5)])
    ends = [e for e in run_detector(mic, vad=EnergyFrameVad()) if isinstance(e, SpeechEnd)]
    assert len(ends) == 1


# -- echo safety ------------------------------------------------------------------------------------
@pytest.mark.parametrize("reflections", [False, True])
def test_our_own_reply_heard_back_never_starts_a_turn(reply, reflections):
    ref = EchoReference(keep=30)  # the whole clip at once (a live player pushes 10-20 ms blocks)
    ref.push(reply, 0.0)
    mic = heard(reply, reflections=reflections)
    assert run_detector(mic) != []  # without the reference the echo is speech …
    assert run_detector(mic, ref) == []  # … with it, nothing starts


def test_a_film_playing_does_not_trigger_but_the_user_over_it_does(reply, user):
    film = np.concatenate([reply, ss.espeak("Nobody in the village knew why he kept doing it.", voice="en+m7")])
    ref = EchoReference(keep=30)  # the whole clip at once (a live player pushes 10-20 ms blocks)
    ref.push(film, 0.0)  # what the output plays (the loopback of the speakers)
    mic = heard(film, delay=0.12, gain=0.7)
    onset = 2.0
    with_user = mic.copy()
    a = int(onset * RATE)
    with_user[a:a + len(user)] += user[: len(with_user) - a]
    assert run_detector(mic, ref) == []
    events = run_detector(with_user, ref)
    starts = [e for e in events if isinstance(e, SpeechStart)]
    assert starts and abs(starts[0].t - onset) < 0.1 and starts[0].t_decided - onset < 0.15
    assert any(isinstance(e, SpeechEnd) for e in events)


def late_by(amount: float, corrected_at: float = 1e9, steps: int = 1, step_s: float = 0.032):
    """A stream's clock error: ``amount`` seconds late, corrected to 0 in ``steps`` equal steps from ``corrected_at``
    (how capture/voice_io.mic_frames' estimate settles once a read arrives early)."""
    return lambda t: amount * (1 - min(steps, max(0, int((t - corrected_at) / step_s) + 1)) / steps) \
        if t >= corrected_at else amount


@pytest.mark.parametrize("ref_error,mic_error", [
    (late_by(0.04), late_by(0.0)),  # the loopback's clock 40 ms late: the mic seems to hear it 5 ms early
    (late_by(0.04, 1.0, steps=4, step_s=0.03), late_by(0.0)),  # … then corrected in 10 ms steps
    (late_by(0.04), late_by(0.06, 1.5, steps=3)),  # the mic's clock corrected back by 60 ms mid-film
], ids=["skewed", "reference-corrected", "mic-corrected"])
def test_a_film_on_two_separately_timed_streams_never_starts_a_turn(reply, user, ref_error, mic_error):
    """The echo reference (a loopback recorder) and the microphone are two streams whose capture times are estimated
    apart (capture/voice_io.mic_frames): their clocks may be skewed by more than the acoustic delay and are corrected
    while they run. Fed as live (the reference a little ahead, in 10 ms blocks), a film still never starts a turn
    and the user speaking over it still does."""
    delay, block, onset = 0.035, 160, 2.0
    film = np.concatenate([ss.silence(0.3), reply])
    mic = heard(film, delay=delay, gain=0.7)
    with_user = mic.copy()
    a = int(onset * RATE)
    with_user[a:a + len(user)] += user[: len(with_user) - a]
    for sound, user_speaks in ((mic, False), (with_user, True)):
        ref, events = EchoReference(), []
        vm = VoiceMode(lambda *a: None, lambda a, r: "", BufferPlayer(), reference=ref,
                       on_event=lambda k, d: events.append((k, d)))
        j = 0
        for k in range(len(film) // block):
            t = k * block / RATE
            ref.push(film[k * block:(k + 1) * block], t + ref_error(t))
            while (j + 1) * FRAME / RATE <= t + block / RATE - 0.02 and (j + 1) * FRAME <= len(sound):
                tm = j * FRAME_S
                vm.feed(sound[j * FRAME:(j + 1) * FRAME], tm + mic_error(tm))
                j += 1
        starts = [d["t"] for kind, d in events if kind == "speech_start"]
        if not user_speaks:
            assert starts == [], events
        else:
            assert starts and abs(starts[0] - (onset + mic_error(onset))) < 0.1, events
    vm.close()


def test_echo_gate_finds_the_delay_and_removes_most_of_the_echo(reply):
    ref = EchoReference(keep=30)  # the whole clip at once (a live player pushes 10-20 ms blocks)
    ref.push(reply, 10.0)
    mic = heard(reply, delay=0.09, gain=0.4)
    gate = EchoGate(ref)
    results = [gate.process(mic[i * FRAME:(i + 1) * FRAME], 10.0 + i * FRAME_S) for i in range(40, 80)]
    lags = [r.lag for r in results if r.echo_share > 0.9]
    assert len(lags) > 20 and np.median(lags) == pytest.approx(0.09, abs=0.002)
    mic_e = sum(float(np.sum(mic[i * FRAME:(i + 1) * FRAME] ** 2)) for i in range(40, 80))
    res_e = sum(float(np.sum(r.residual ** 2)) for r in results)
    assert res_e < 0.05 * mic_e


def test_reference_gaps_read_as_silence():
    ref = EchoReference(keep=30)  # the whole clip at once (a live player pushes 10-20 ms blocks)
    ref.push(np.ones(1600, dtype=np.float32), 1.0)  # 1.0–1.1 s
    w = ref.window(1.2, 3200)  # 1.0–1.2 s
    assert w[:1600].min() == 1.0 and not w[1600:].any()
    assert ref.active(1.3) and not ref.active(3.0)


def test_a_stream_whose_clock_is_corrected_back_stays_contiguous():
    ref = EchoReference(keep=30)
    ref.push(np.full(1600, 1.0, dtype=np.float32), 1.0)  # 1.0–1.1 s by the first estimate …
    ref.push(np.full(1600, 2.0, dtype=np.float32), 1.06)  # … the next block arrives early: the clock was 40 ms late
    w = ref.window(1.22, 4160)  # re-timed: 0.96–1.06 s, then 1.06–1.16 s; nothing after
    assert w[:1600].min() == 1.0 and w[1600:3200].min() == 2.0 and not w[3200:].any()
    ref.push(np.full(160, 3.0, dtype=np.float32), 1.17)  # 10 ms late: jitter, it still follows on
    assert ref.window(1.17, 160).min() == 3.0


# -- the engine: turns, barge-in ------------------------------------------------------------------------
def wer(ref: str, hyp: str) -> float:
    from pipeline.voices.check import word_error_rate

    return word_error_rate([ref], [hyp])


def wait_for(cond, timeout: float = 30.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return False


@pytest.mark.slow
def test_engine_answers_a_turn_and_the_user_barges_in(user, reply):
    pytest.importorskip("faster_whisper")
    from pipeline.chat.conversation import transcribe_utterance

    ref = EchoReference()
    player = BufferPlayer(ref.push)
    heard_texts, cancels = [], []
    sentences = [reply[: len(reply) // 2], reply[len(reply) // 2:]]

    def respond(text, cancel, play):
        heard_texts.append(text)
        cancels.append(cancel)
        for s in sentences:
            if cancel.cancelled:
                break
            play(s, RATE)
        return SimpleNamespace(text="reply", t_first_token=0.0, t_first_sentence=0.0, t_first_audio=0.0)

    events = []
    vm = VoiceMode(respond, transcribe_utterance, player, reference=ref, on_event=lambda k, d: events.append((k, d)))
    t = time.monotonic()
    vm.feed(np.concatenate([ss.silence(0.5), user, ss.silence(1.0)]), t)  # fast: no pacing needed to end a turn
    assert wait_for(lambda: player.playing), events
    assert heard_texts and wer(USER_TEXT, heard_texts[0]) <= 0.2, heard_texts

    # the user talks over the reply: microphone frames now come in real time, with the reply's echo in them
    barge = user_speech(BARGE_TEXT)
    mic = np.concatenate([ss.silence(0.6), barge, ss.silence(1.2)])
    onset_frame = int(0.6 / FRAME_S)
    fed_onset = None
    t0 = time.monotonic()
    for i in range(len(mic) // FRAME):
        t = t0 + i * FRAME_S  # the first sample of this frame is captured now …
        time.sleep(max(0.0, t + FRAME_S - time.monotonic()))  # … and the frame is complete 32 ms later
        frame = mic[i * FRAME:(i + 1) * FRAME].copy()
        frame += 0.5 * ref.window(t + FRAME_S - 0.05, FRAME)  # the playback heard 50 ms late at half level
        if i == onset_frame:
            fed_onset = t
        vm.feed(frame, t)
        if i == onset_frame - 1:
            assert not vm.barge_ins, "the reply's own echo triggered a barge-in"
    assert vm.barge_ins, events
    stop = vm.barge_ins[0]
    starts = [d for k, d in events if k == "speech_start"]
    assert stop["t_stopped"] - fed_onset <= 0.15, (fed_onset, starts, stop)  # from the first sample of the speech
    assert player.t_stopped is not None and cancels[0].cancelled
    assert all(ts <= player.t_stopped + 0.03 for ts, _ in player.played if ts < fed_onset + 1.0)
    assert wait_for(lambda: len(heard_texts) == 2 and not vm.busy, 60), events
    assert wer(BARGE_TEXT, heard_texts[1]) <= 0.25, heard_texts
    vm.close()
    assert vm.turns[0].interrupted and vm.turns[0].timing.asr is not None


def test_the_transcript_is_started_at_the_pause_and_dropped_when_speech_goes_on(user):
    """Speculative ASR: the turn's transcript is the one started at the pause when the speech ended there; when the
    user went on after a pause, the early transcript is not used and the whole utterance is transcribed."""
    calls: list[int] = []
    answered: list[str] = []

    def transcribe(audio, rate):
        calls.append(len(audio))
        return f"{len(audio)} samples"

    vm = VoiceMode(lambda text, cancel, play: answered.append(text), transcribe, BufferPlayer())
    vm.feed(np.concatenate([ss.silence(0.5), user, ss.silence(1.0)]), 0.0)
    vm.wait(10)
    # (a pause between the sample's words starts one more that is then dropped)
    assert vm.speculations["used"] == 1 and len(calls) == vm.speculations["started"]  # no transcription after the end
    assert answered == [f"{calls[-1]} samples"] and calls[-1] / RATE == pytest.approx(len(user) / RATE, abs=0.6)

    calls.clear(), answered.clear()
    vm = VoiceMode(lambda text, cancel, play: answered.append(text), transcribe, BufferPlayer())
    vm.feed(np.concatenate([ss.silence(0.5), user, ss.silence(0.35), user, ss.silence(1.0)]), 0.0)  # one turn
    vm.wait(10)
    assert len(vm.turns) == 1 and vm.speculations["started"] >= 2 and vm.speculations["used"] == 1
    assert answered == [f"{max(calls)} samples"] and max(calls) / RATE > 2 * len(user) / RATE  # the whole utterance

    vm = VoiceMode(lambda text, cancel, play: answered.append(text), transcribe, BufferPlayer(),
                   settings=VadSettings(speculative_asr=False))
    vm.feed(np.concatenate([ss.silence(0.5), user, ss.silence(1.0)]), 0.0)
    vm.wait(10)
    assert vm.speculations == {"started": 0, "used": 0} and answered[-1] == f"{calls[-1]} samples" and len(answered) == 2


def test_engine_sends_nothing_for_noise():
    calls = []
    vm = VoiceMode(lambda *a: calls.append(a), lambda a, r: calls.append("asr") or "", BufferPlayer())
    noise = (np.random.default_rng(2).standard_normal(3 * RATE) * 0.05).astype(np.float32)
    vm.feed(noise, 0.0)
    vm.wait(5)
    assert calls == [] and vm.turns == []


def test_feed_accepts_any_chunk_size(user):
    got = []
    done = threading.Event()
    vm = VoiceMode(lambda *a: None, lambda a, r: got.append(len(a)) or done.set() or "", BufferPlayer(),
                   on_event=lambda k, d: None)
    mic = np.concatenate([ss.silence(0.5), user, ss.silence(1.0)])
    for i in range(0, len(mic), 700):  # not a multiple of the frame
        vm.feed(mic[i:i + 700], i / RATE)
    vm.wait(10)  # (a transcription may also start at a pause between the words: the turn's is the last)
    assert done.wait(10) and got[-1] / RATE == pytest.approx(len(user) / RATE, abs=0.6)
