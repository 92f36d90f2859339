"""Hands-free voice mode: listen with VAD, end a turn when the user stops, reply sentence by sentence, allow barge-in.

Pure logic over injected audio: :meth:`VoiceMode.feed` takes 16 kHz microphone frames (512 samples, 32 ms) with
their capture time; a player object plays the reply; what is being played (our voice, or everything the output
plays, e.g. a film) is pushed into an :class:`EchoReference`. Nothing here opens a device
(capture/voice_io.py does that for the CLI).

Per frame:

1. :class:`EchoGate` removes what the playback explains: it finds the delay and gain of the reference in the
   recent microphone window (FFT cross-correlation) and subtracts it; ``echo_share`` is the part of the
   microphone's energy the playback explains.
2. A frame VAD (Silero, bundled in the silero-vad wheel; an energy fallback) scores the *residual*.
3. :class:`TurnDetector` applies separate start/end thresholds: speech starts after ``start_frames`` frames at or
   above ``start_threshold`` (and not explained by the playback), and ends after ``end_hangover`` seconds below
   ``end_threshold``. Bursts shorter than ``min_speech`` are dropped, so clicks, noise and silence are never sent.

When speech starts while a reply is being generated or played, the engine stops the player and cancels the
reply (barge-in). When speech ends, the utterance is transcribed and answered on a worker thread.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from ..progress import CancelToken

RATE = 16000
FRAME = 512  # samples per decision (32 ms): Silero's window at 16 kHz
FRAME_S = FRAME / RATE


# -- frame VADs ---------------------------------------------------------------------------------------
class FrameVad(Protocol):
    def reset(self) -> None: ...

    def prob(self, frame: np.ndarray) -> float: ...


class SileroFrameVad:
    """Silero VAD run frame by frame with its own state (its own model instance; ~0.2 ms a frame).

    With onnxruntime the bundled ONNX model is run directly on numpy arrays (state and the 64-sample context kept
    here): no torch op per frame, whose OpenMP threads would spin beside the ASR and the LLM on a small CPU."""

    CONTEXT = 64

    def __init__(self):
        import importlib.util

        from silero_vad import load_silero_vad

        self.model = load_silero_vad(onnx=importlib.util.find_spec("onnxruntime") is not None)
        self.session = getattr(self.model, "session", None)
        self.reset()

    def reset(self) -> None:
        self.model.reset_states()
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros((1, self.CONTEXT), dtype=np.float32)

    def prob(self, frame: np.ndarray) -> float:
        x = np.ascontiguousarray(frame, dtype=np.float32).reshape(1, -1)
        if self.session is not None:
            inp = np.concatenate([self._context, x], axis=1)
            out, self._state = self.session.run(None, {"input": inp, "state": self._state,
                                                       "sr": np.array(RATE, dtype=np.int64)})
            self._context = inp[:, -self.CONTEXT:]
            return float(out.reshape(-1)[0])
        import torch

        with torch.inference_mode():
            return float(self.model(torch.from_numpy(x), RATE))


class EnergyFrameVad:
    """Fallback without a model: level above an adaptive noise floor mapped to 0..1 (fooled by steady loud noise)."""

    def __init__(self, margin_db: float = 12.0):
        self.margin_db = margin_db
        self.reset()

    def reset(self) -> None:
        self.floor = -60.0

    def prob(self, frame: np.ndarray) -> float:
        db = level_db(frame)
        self.floor = min(db, self.floor + 0.05) if db > self.floor else 0.9 * self.floor + 0.1 * db
        return float(1.0 / (1.0 + np.exp(-(db - self.floor - self.margin_db) / 2.0)))


def default_frame_vad() -> FrameVad:
    """Silero when the silero-vad package is installed, else the energy fallback."""
    try:
        return SileroFrameVad()
    except ImportError:
        return EnergyFrameVad()


def level_db(x: np.ndarray) -> float:
    """RMS level in dBFS (-120 for silence)."""
    ms = float(np.mean(np.square(x, dtype=np.float64))) if len(x) else 0.0
    return 10.0 * np.log10(ms + 1e-12)


# -- echo: what is being played -----------------------------------------------------------------------
class EchoReference:
    """The recent playback (16 kHz mono) on one timeline: a ring buffer indexed by the time each sample was played.

    Fed by the player (our own voice) or by a loopback recorder of the output (everything played, films too).
    A chunk that starts less than SNAP after the previous one ended continues it (callers' clocks jitter); one that
    starts earlier continues it too, and the timeline moves back to its time (a capture clock's estimate is corrected
    back as the stream runs: the samples stay contiguous). A later chunk leaves a gap, which reads as silence.
    Reads and writes are slices, cheap enough for every 10 ms block and 32 ms frame."""

    SNAP = 0.05

    def __init__(self, keep: float = 3.0):
        self.size = int(keep * RATE)
        self._buf = np.zeros(self.size, dtype=np.float32)
        self._origin: float | None = None  # time of timeline index 0
        self._end = 0  # timeline index after the last written sample
        self._lock = threading.Lock()
        self.last_push = -1e9  # time the last written sample ends

    def push(self, samples: np.ndarray, t_start: float, rate: int = RATE) -> None:
        x = np.asarray(samples, dtype=np.float32)
        if x.ndim > 1:
            x = x.mean(axis=1)
        if rate != RATE:
            from ..media import resample

            x = resample(x, rate, RATE)
        if not len(x):
            return
        x = x[-self.size:]
        with self._lock:
            if self._origin is None:
                self._origin = t_start
            if t_start < self.last_push:  # the same stream, its clock corrected back: re-time what it played
                self._origin = t_start - self._end / RATE
            elif t_start - self.last_push >= self.SNAP:  # nothing was played in between: silence
                a = int(round((t_start - self._origin) * RATE))
                self._write(self._end, np.zeros(min(a - self._end, self.size), dtype=np.float32))
                self._end = a
            self._write(self._end, x)
            self._end += len(x)
            self.last_push = self._origin + self._end / RATE

    def _write(self, a: int, x: np.ndarray) -> None:
        idx = np.arange(a, a + len(x)) % self.size
        self._buf[idx] = x

    def window(self, t_end: float, n: int) -> np.ndarray:
        """The ``n`` reference samples ending at time ``t_end`` (zeros where nothing was played)."""
        out = np.zeros(n, dtype=np.float32)
        with self._lock:
            if self._origin is None:
                return out
            b = int(round((t_end - self._origin) * RATE))
            idx = np.arange(b - n, b)
            ok = (idx < self._end) & (idx >= max(0, self._end - self.size))
            out[ok] = self._buf[idx[ok] % self.size]
        return out

    def active(self, t: float, within: float = 0.6) -> bool:
        """Whether something was played in the last ``within`` seconds before ``t``."""
        return self.last_push > t - within


@dataclass
class EchoResult:
    residual: np.ndarray  # the frame minus the playback it contains
    echo_share: float  # 0..1: how much of the microphone's recent energy the playback explains
    lag: float | None  # seconds the microphone hears the playback late (None: nothing played)
    frame_share: float = 0.0  # 0..1: the same for this frame alone (reacts a frame sooner when the user cuts in)


class EchoGate:
    """Single-path echo removal: delay + gain of the reference found by cross-correlation over the recent window."""

    def __init__(self, reference: EchoReference | None, *, max_lag: float = 0.5, lead: float = 0.08,
                 window: int = 8):
        self.reference = reference
        self.max_lag = int(max_lag * RATE)
        # the microphone may seem to hear the playback up to `lead` early: the two streams' clocks are estimated
        # apart and can be skewed by more than the acoustic delay (tens of ms against a few)
        self.lead = int(lead * RATE)
        self.win = window * FRAME  # 256 ms of microphone audio to estimate with
        self._mic = np.zeros(self.win, dtype=np.float32)
        self._valid = 0  # samples of _mic that are one contiguous stream

    def reset(self) -> None:
        """The microphone stream restarted (a gap): forget its history."""
        self._valid = 0

    def process(self, frame: np.ndarray, t: float) -> EchoResult:
        """``frame``: FRAME samples whose first sample was captured at ``t`` (consecutive calls: contiguous audio)."""
        self._mic = np.concatenate([self._mic[len(frame):], frame])
        self._valid = min(self.win, self._valid + len(frame))
        t_end = t + len(frame) / RATE
        if self.reference is None or not self.reference.active(t_end, within=self.max_lag / RATE + 0.3):
            return EchoResult(frame, 0.0, None)
        win = self._valid
        m = self._mic[-win:].astype(np.float64)
        lags = self.max_lag + self.lead + 1
        ref = self.reference.window(t_end + self.lead / RATE, win + lags - 1).astype(np.float64)
        if not np.any(ref):
            return EchoResult(frame, 0.0, None)
        # cross-correlation of the mic window against every lag of the reference: c[k] = sum m[i] ref[k + i]
        n = 1 << int(np.ceil(np.log2(len(ref))))  # no wrap-around for the lags read: k + win <= len(ref)
        c = np.fft.irfft(np.fft.rfft(ref, n) * np.conj(np.fft.rfft(m, n)), n)[:lags]
        csum = np.concatenate([[0.0], np.cumsum(ref ** 2)])
        energy = csum[win: win + lags] - csum[:lags]  # ref energy per offset
        mic_e = float(np.dot(m, m)) + 1e-12
        score = np.where(energy > 1e-9, c * np.abs(c) / (energy + 1e-12), 0.0)
        k = int(np.argmax(score))  # offset into ref: lag = max_lag - k (negative: heard early)
        if score[k] <= 0:
            return EchoResult(frame, 0.0, (self.max_lag - k) / RATE)
        g = c[k] / energy[k]
        seg = ref[k: k + win]
        share = float(min(1.0, max(0.0, score[k] / mic_e)))  # 1 - |m - g r|^2 / |m|^2
        residual = (m[-len(frame):] - g * seg[-len(frame):]).astype(np.float32)
        f = m[-len(frame):]
        frame_share = float(min(1.0, max(0.0, 1.0 - np.dot(residual, residual) / (np.dot(f, f) + 1e-12))))
        return EchoResult(residual, share, (self.max_lag - k) / RATE, frame_share)


# -- turns -------------------------------------------------------------------------------------------
@dataclass
class VadSettings:
    start_threshold: float = 0.6  # a frame this likely to be speech may start a turn …
    end_threshold: float = 0.35  # … and speech goes on while frames stay above this
    start_frames: int = 2  # consecutive start frames needed (64 ms)
    end_hangover: float = 0.55  # seconds below the end threshold that end the user's turn
    min_speech: float = 0.3  # shorter bursts (clicks, coughs, noise) are dropped
    pre_roll: float = 0.3  # audio kept from before the start decision (the onset itself)
    max_utterance: float = 30.0
    min_level_db: float = -50.0  # quieter frames are never speech
    max_echo_share: float = 0.6  # frames mostly explained by the playback never start speech
    pause_threshold: float = 0.4  # during playback one such frame pauses the voice at once …
    pause_frame_echo_share: float = 0.6  # … when the playback explains little of it: of the frame alone, while
    pause_echo_share: float = 0.9  # … the recent window is not all echo (or the window itself is ≤ max_echo_share)
    confirm: float = 0.25  # … and unless speech starts within this many seconds, the voice goes on
    speculative_asr: bool = True  # transcribe at the first pause, while the hangover runs (used if speech ends there)


@dataclass
class SpeechStart:
    t: float  # time of the first frame of the onset
    t_decided: float  # end of the frame that decided it


@dataclass
class SpeechEnd:
    t: float  # time the speech ended (first frame of the hangover)
    t_decided: float  # time the end was decided (after the hangover)
    audio: np.ndarray  # 16 kHz, with the pre-roll and a little trailing silence
    forced: bool = False  # cut at max_utterance


@dataclass
class SpeechPause:
    """Speech has paused long enough that, if it does not resume, ``audio`` is exactly what SpeechEnd will carry:
    the engine may transcribe it while the hangover runs (speculative ASR)."""

    t: float  # time the speech paused
    audio: np.ndarray


@dataclass
class SpeechDropped:
    t: float
    duration: float  # too short: noise or a click, not sent


class TurnDetector:
    """Start/end-of-speech decisions on per-frame (probability, echo share, level) with hysteresis and hangover."""

    TAIL = 0.2  # seconds of the trailing quiet kept at the end of an utterance

    def __init__(self, settings: VadSettings | None = None):
        self.s = settings or VadSettings()
        self.speaking = False
        self._run = 0  # consecutive start frames
        self._quiet = 0  # consecutive frames below the end threshold while speaking
        self._pre: collections.deque = collections.deque(maxlen=max(1, int(round(self.s.pre_roll / FRAME_S))))
        self._buf: list[np.ndarray] = []
        self._t_start = 0.0
        self._voiced = 0

    def feed(self, frame: np.ndarray, t: float, prob: float, echo_share: float = 0.0):
        """One frame → None or an event (SpeechStart, SpeechEnd, SpeechDropped)."""
        s = self.s
        loud = level_db(frame) >= s.min_level_db
        if not self.speaking:
            starting = loud and prob >= s.start_threshold and echo_share <= s.max_echo_share
            self._pre.append((t, frame))
            self._run = self._run + 1 if starting else 0
            if self._run >= s.start_frames:
                self.speaking = True
                onset = list(self._pre)[-self._run][0]
                self._t_start = onset
                self._buf = [f for _, f in self._pre]
                self._pre.clear()
                self._quiet = 0
                self._voiced = self._run
                self._run = 0
                return SpeechStart(onset, t + FRAME_S)
            return None
        self._buf.append(frame)
        if loud and prob >= s.end_threshold:
            self._quiet = 0
            self._voiced += 1
        else:
            self._quiet += 1
        hang = max(1, int(round(s.end_hangover / FRAME_S)))
        forced = len(self._buf) * FRAME_S >= s.max_utterance
        tail = int(round(self.TAIL / FRAME_S))
        if self._quiet < hang and not forced:
            if self._quiet == tail and hang > tail and self._voiced * FRAME_S >= s.min_speech:
                # from here on the end audio is fixed unless speech resumes (it keeps `tail` quiet frames)
                return SpeechPause(t + FRAME_S - self._quiet * FRAME_S, np.concatenate(self._buf))
            return None
        self.speaking = False
        t_end = t + FRAME_S - self._quiet * FRAME_S
        keep_tail = min(self._quiet, tail)
        frames = self._buf[: len(self._buf) - self._quiet + keep_tail]
        self._buf, self._quiet = [], 0
        if self._voiced * FRAME_S < s.min_speech:
            return SpeechDropped(self._t_start, self._voiced * FRAME_S)
        return SpeechEnd(t_end, t + FRAME_S, np.concatenate(frames), forced=forced)


# -- the engine ----------------------------------------------------------------------------------------
class InterruptiblePlayer(Protocol):
    """What VoiceMode needs from the audio output."""

    def play(self, audio: np.ndarray, rate: int) -> None: ...  # blocks until played or stopped

    def stop(self) -> None: ...  # stop now; later play() calls return at once until resume()

    def resume(self) -> None: ...

    # optional: pause() / unpause() hold the voice mid-sentence while a possible barge-in is confirmed

    @property
    def playing(self) -> bool: ...


@dataclass
class TurnTiming:
    """Seconds from the end of the user's speech (SpeechEnd.t) to each step of the answer."""

    vad_end: float = 0.0  # end detected (the hangover)
    asr: float | None = None  # transcript ready
    first_token: float | None = None
    first_sentence: float | None = None
    first_audio: float | None = None  # first sentence synthesised
    first_play: float | None = None  # first reply audio handed to the output


@dataclass
class Turn:
    text: str = ""
    reply: object = None  # pipeline.chat.conversation.Reply
    interrupted: bool = False  # barge-in cut it
    timing: TurnTiming = field(default_factory=TurnTiming)
    error: str | None = None


class _Speculation:
    """A transcription started at a pause in the user's speech, on a thread; used when the turn ends right there."""

    def __init__(self, audio: np.ndarray, transcribe: "Transcribe", lock: threading.Lock):
        self.audio = audio
        self.text: str | None = None
        self.error: BaseException | None = None
        self.done = threading.Event()
        threading.Thread(target=self._run, args=(transcribe, lock), daemon=True, name="voice-asr-ahead").start()

    def _run(self, transcribe: "Transcribe", lock: threading.Lock) -> None:
        try:
            with lock:
                self.text = transcribe(self.audio, RATE)
        except BaseException as e:  # noqa: BLE001 - re-raised on the turn's thread when it is used
            self.error = e
        finally:
            self.done.set()

    def matches(self, audio: np.ndarray) -> bool:
        return len(audio) == len(self.audio) and np.array_equal(audio, self.audio)

    def result(self) -> str:
        self.done.wait()
        if self.error is not None:
            raise self.error
        return self.text or ""


Respond = Callable[[str, CancelToken, Callable[[np.ndarray, int], None]], object]
Transcribe = Callable[[np.ndarray, int], str]


class VoiceMode:
    """The hands-free loop. ``respond(text, cancel, play)`` answers a transcript (e.g. Conversation.send with
    ``player=play``) and returns a Reply; ``transcribe(audio, rate)`` is the ASR; ``player`` plays and stops.

    ``on_event(kind, data)`` reports: listening, speech_start, speech_end, dropped, transcript, barge_in, reply,
    nothing_heard, error. Call :meth:`feed` for every microphone frame; :meth:`close` at the end."""

    CLOCK_FIX = 0.25  # frames timed up to this much earlier than the stream's last one: its clock was corrected

    def __init__(self, respond: Respond, transcribe: Transcribe, player: InterruptiblePlayer, *,
                 vad: FrameVad | None = None, settings: VadSettings | None = None,
                 reference: EchoReference | None = None, on_event: Callable[[str, dict], None] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.respond, self.transcribe, self.player = respond, transcribe, player
        self.vad = vad if vad is not None else default_frame_vad()
        self.detector = TurnDetector(settings)
        self.reference = reference
        self.gate = EchoGate(reference)
        self.on_event = on_event or (lambda kind, data: None)
        self.clock = clock
        self.turns: list[Turn] = []
        self._worker: threading.Thread | None = None
        self._cancel: CancelToken | None = None
        self._pending = np.zeros(0, dtype=np.float32)
        self._lag = 0.0
        self._paused_at: tuple[float, float] | None = None  # (frame time, clock) of a pause awaiting confirmation
        self._t_next = -1e9  # where the microphone stream continues (keeps frame times contiguous)
        self.barge_ins: list[dict] = []
        self._asr_lock = threading.Lock()  # one transcription at a time (speculative or not)
        self._spec: _Speculation | None = None
        self.speculations = {"started": 0, "used": 0}
        self.holds = {"paused": 0, "resumed": 0}  # tentative barge-in pauses, and those that were not the user
        # seconds each recent frame took to handle: frames handled late while these stay far under FRAME_S were
        # delivered late or the CPU went elsewhere, not a backlog of our own
        self.frame_costs: collections.deque[float] = collections.deque(maxlen=4096)

    @property
    def busy(self) -> bool:
        """A turn is being transcribed, generated or played."""
        return (self._worker is not None and self._worker.is_alive()) or self.player.playing

    def feed(self, audio: np.ndarray, t: float | None = None) -> None:
        """Microphone audio (16 kHz float mono, any length) whose first sample was captured at ``t``."""
        x = np.asarray(audio, dtype=np.float32).reshape(-1)
        if t is None:
            t = self.clock() - len(x) / RATE
        if 0.0 <= t - self._t_next < 0.05:
            t = self._t_next  # the stream goes on: keep frame times contiguous despite clock jitter
        elif not -self.CLOCK_FIX < t - self._t_next < 0.0:  # a gap (or another stream): its history no longer fits
            self.gate.reset()
            self._pending = self._pending[:0]
        # else the same stream, its capture clock corrected back (by tens of ms as it settles): the samples are still
        # contiguous, so the echo gate keeps its window and the frames are re-timed from here on
        self._t_next = t + len(x) / RATE
        if len(self._pending):
            t -= len(self._pending) / RATE
            x = np.concatenate([self._pending, x])
        n = len(x) // FRAME
        for i in range(n):
            t_frame, began = t + i * FRAME_S, self.clock()
            self._lag = max(0.0, began - (t_frame + FRAME_S))  # how late this frame is handled after it was complete
            self._frame(x[i * FRAME:(i + 1) * FRAME], t_frame)
            self.frame_costs.append(self.clock() - began)
        self._pending = x[n * FRAME:].copy()

    def _frame(self, frame: np.ndarray, t: float) -> None:
        echo = self.gate.process(frame, t)
        prob = self.vad.prob(echo.residual)
        event = self.detector.feed(echo.residual, t, prob, echo.echo_share)
        s = self.detector.s
        pause = getattr(self.player, "pause", None)
        if (pause is not None and self._paused_at is None and not self.detector.speaking and self.player.playing
                and prob >= s.pause_threshold and level_db(echo.residual) >= s.min_level_db
                and (echo.echo_share <= s.max_echo_share
                     or (echo.frame_share <= s.pause_frame_echo_share and echo.echo_share <= s.pause_echo_share))):
            pause()  # maybe the user: silence the voice now, decide on the next frames
            self._paused_at = (t, self.clock())
            self.holds["paused"] += 1
        if isinstance(event, SpeechStart):
            self.on_event("speech_start", {"t": event.t, "t_decided": event.t_decided})
            if self.busy:
                self.barge_in(event.t)
            self._paused_at = None
        elif self._paused_at is not None and t - self._paused_at[0] >= s.confirm and not self.detector.speaking:
            self.player.unpause()  # not speech after all (a cough, a knock): the voice goes on
            self._paused_at = None
            self.holds["resumed"] += 1
        elif isinstance(event, SpeechPause):
            if s.speculative_asr:
                self._spec = _Speculation(event.audio, self.transcribe, self._asr_lock)
                self.speculations["started"] += 1
        elif isinstance(event, SpeechDropped):
            self._spec = None
            self.on_event("dropped", {"t": event.t, "duration": event.duration})
        elif isinstance(event, SpeechEnd):
            self.on_event("speech_end", {"t": event.t, "duration": len(event.audio) / RATE})
            self._start_turn(event)

    def barge_in(self, t_onset: float) -> None:
        """The user started speaking: stop the playback now and cancel the reply being generated."""
        self.player.stop()
        if self._cancel is not None:
            self._cancel.cancel()
        if self.turns:
            self.turns[-1].interrupted = True
        silenced = self._paused_at[1] if self._paused_at is not None else self.clock()
        info = {"t_onset": t_onset, "t_stopped": silenced, "lag": self._lag}  # lag: frames handled late (a busy CPU)
        self.barge_ins.append(info)
        self.on_event("barge_in", info)

    def _start_turn(self, end: SpeechEnd) -> None:
        if self._worker is not None:
            if self._cancel is not None:
                self._cancel.cancel()
            self._worker.join()
        self._cancel = CancelToken()
        turn = Turn()
        turn.timing.vad_end = end.t_decided - end.t
        self.turns.append(turn)
        spec, self._spec = self._spec, None
        if spec is not None and not spec.matches(end.audio):
            spec = None  # speech went on after that pause: its transcript is not this turn's
        self._worker = threading.Thread(target=self._run_turn, args=(turn, end, self._cancel, spec), daemon=True,
                                        name="voice-turn")
        self._worker.start()

    def _run_turn(self, turn: Turn, end: SpeechEnd, cancel: CancelToken, spec: _Speculation | None = None) -> None:
        since = lambda: self.clock() - end.t  # noqa: E731
        try:
            if spec is not None:
                text = spec.result().strip()
                self.speculations["used"] += 1
            else:
                with self._asr_lock:
                    text = (self.transcribe(end.audio, RATE) or "").strip()
            turn.timing.asr = since()
            turn.text = text
            if not text:
                self.on_event("nothing_heard", {})
                return
            self.on_event("transcript", {"text": text})
            if cancel.cancelled:
                return
            self.player.resume()
            t_send = since()

            def play(audio: np.ndarray, rate: int) -> None:
                if turn.timing.first_play is None:
                    turn.timing.first_play = since()
                if not cancel.cancelled:
                    self.player.play(audio, rate)

            reply = self.respond(text, cancel, play)
            turn.reply = reply
            for name in ("first_token", "first_sentence", "first_audio"):
                v = getattr(reply, f"t_{name}", None)
                if v is not None:
                    setattr(turn.timing, name, t_send + v)
            self.on_event("reply", {"text": getattr(reply, "text", ""), "interrupted": turn.interrupted})
        except Exception as e:  # noqa: BLE001 - one failed turn must not end voice mode
            turn.error = f"{type(e).__name__}: {e}" if not str(e).startswith(type(e).__name__) else str(e)
            self.on_event("error", {"error": str(e) or type(e).__name__})

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the current turn to finish (tests, benches)."""
        if self._worker is not None:
            self._worker.join(timeout)

    def close(self) -> None:
        """Stop playback and cancel the turn in progress."""
        self.player.stop()
        if self._cancel is not None:
            self._cancel.cancel()
        self.wait(10)
