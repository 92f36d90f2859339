"""Live audio for hands-free voice chat through soundcard: microphone frames, an interruptible player, and a
recorder of what the output plays (the echo reference: our voice and anything else playing, e.g. a film).

Everything is plain callbacks and numpy arrays, so this module stays a leaf (pipeline.chat.voice_mode consumes it).
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Iterator

import numpy as np

from .devices import find_source, soundcard_module

RATE = 16000
FRAME = 512


def mic_frames(device_id: str | None = None, *, kind: str = "mic", stop: threading.Event | None = None,
               frame: int = FRAME) -> Iterator[tuple[np.ndarray, float]]:
    """(16 kHz mono float32 frame, capture time of its first sample) from a microphone until ``stop`` is set."""
    mic, _ = find_source(kind, device_id)
    with mic.recorder(samplerate=RATE, channels=1, blocksize=160) as rec:  # 10 ms fragments: low input latency
        rec.flush()
        offset = None  # capture time of sample 0: the earliest arrival - samples so far (a late read is not early)
        n = 0
        while stop is None or not stop.is_set():
            data = rec.record(numframes=frame)
            n += len(data)
            seen = time.monotonic() - n / RATE
            offset = seen if offset is None or seen < offset else offset + min(seen - offset, 1e-4)  # drift slowly
            yield np.asarray(data, dtype=np.float32).reshape(len(data), -1).mean(axis=1), offset + (n - len(data)) / RATE


class OutputRecorder:
    """Records the loopback of an output on a thread and hands each block to ``push(samples, t_start)``."""

    def __init__(self, push: Callable[[np.ndarray, float], None], device_id: str | None = None, block: int = 160):
        self.push, self.device_id, self.block = push, device_id, block
        self._stop = threading.Event()
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name="voice-reference", daemon=True)

    def start(self) -> "OutputRecorder":
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            for x, t in mic_frames(self.device_id, kind="loopback", stop=self._stop, frame=self.block):
                self.push(x, t)
        except Exception as e:  # noqa: BLE001 - without a reference the player's own samples are used
            self.error = str(e) or type(e).__name__

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


class PlaybackControl:
    """stop / pause / unpause / resume and ``playing``, shared by the players (what voice mode needs to barge in)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._stop = threading.Event()
        self._pause = threading.Event()
        self._playing = threading.Event()
        self.t_stopped: float | None = None  # when the voice was last silenced while playing

    @property
    def playing(self) -> bool:
        return self._playing.is_set()

    def stop(self) -> None:
        """Stop now; later play() calls return at once until resume()."""
        self._stop.set()
        if self._playing.is_set():
            self.t_stopped = self.clock()

    def pause(self) -> None:
        """Hold the voice (the output plays silence) until unpause() or stop()."""
        self._pause.set()
        if self._playing.is_set():
            self.t_stopped = self.clock()

    def unpause(self) -> None:
        self._pause.clear()

    def resume(self) -> None:
        self._stop.clear()
        self._pause.clear()

    def _go_on(self) -> bool:
        """Between blocks: wait while paused; False once stopped."""
        while self._pause.is_set() and not self._stop.is_set():
            time.sleep(0.002)
        return not self._stop.is_set()


class SoundcardPlayer(PlaybackControl):
    """Plays on an output in small blocks so :meth:`stop` silences it within about one block (10 ms).

    ``on_played(samples, rate, t_start)`` (optional) sees each block as it is queued: the echo reference when no
    loopback of the output can be recorded."""

    def __init__(self, device_id: str | None = None, *, block: float = 0.01,
                 on_played: Callable[[np.ndarray, int, float], None] | None = None):
        super().__init__()
        self.device_id, self.block, self.on_played = device_id, block, on_played

    def _speaker(self):
        sc = soundcard_module()
        return sc.get_speaker(self.device_id) if self.device_id else sc.default_speaker()

    def play(self, audio: np.ndarray, rate: int) -> None:
        if self._stop.is_set():
            return
        x = np.asarray(audio, dtype=np.float32).reshape(-1)
        step = max(1, int(self.block * rate))
        self._playing.set()
        try:
            with self._speaker().player(samplerate=rate, channels=1, blocksize=step) as out:
                for i in range(0, len(x), step):
                    if not self._go_on():
                        return
                    piece = x[i:i + step]
                    if self.on_played is not None:
                        self.on_played(piece, rate, time.monotonic())
                    out.play(piece)  # returns once the server has room: paced by the output
        finally:
            self._playing.clear()


class BufferPlayer(PlaybackControl):
    """A player without a device (tests, benches): "plays" 16 kHz in real time in small blocks, hands each block
    to ``on_played(samples, t_start)`` (e.g. an echo reference's push) and keeps what it played and when."""

    def __init__(self, on_played: Callable[[np.ndarray, float], None] | None = None, *, block: float = 0.02,
                 realtime: bool = True, clock: Callable[[], float] = time.monotonic):
        super().__init__(clock)
        self.on_played, self.block, self.realtime = on_played, block, realtime
        self.played: list[tuple[float, np.ndarray]] = []  # (t_start, 16 kHz audio actually played)

    def play(self, audio: np.ndarray, rate: int) -> None:
        x = np.asarray(audio, dtype=np.float32).reshape(-1)
        if rate != RATE:  # linear resampling is enough for a stand-in output
            x = np.interp(np.arange(int(len(x) * RATE / rate)) * rate / RATE, np.arange(len(x)), x).astype(np.float32)
        step = int(self.block * RATE)
        self._playing.set()
        try:
            t_next = self.clock()
            for i in range(0, len(x), step):
                if self._pause.is_set():
                    if not self._go_on():
                        return
                    t_next = self.clock()
                if self._stop.is_set():
                    return
                piece = x[i:i + step]
                now = self.clock()
                self.played.append((now, piece))
                if self.on_played is not None:
                    self.on_played(piece, now)
                if self.realtime:
                    t_next += len(piece) / RATE
                    time.sleep(max(0.0, t_next - self.clock()))
        finally:
            self._playing.clear()
