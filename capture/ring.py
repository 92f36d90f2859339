"""A fixed-size rolling audio buffer and level helpers (numpy only)."""

from __future__ import annotations

import threading

import numpy as np

FLOOR_DB = -120.0
"""Level reported for digital silence (kept finite so statuses stay JSON-serialisable)."""


SCALE = 32767.0
"""Float ↔ 16-bit: the ring holds what the FLAC chunks store (PCM_16), at half the memory of float32."""


def to_pcm16(block: np.ndarray) -> np.ndarray:
    """Float audio in [-1, 1] (clipped) → int16, rounded as libsndfile writes PCM_16."""
    return np.rint(np.clip(block, -1.0, 1.0) * SCALE).astype(np.int16)


class RingBuffer:
    """The last `seconds` of audio, shape (frames, channels); memory fixed at creation.

    Held as 16-bit samples (10 min of 48 kHz stereo: 115 MB instead of 230 MB as float32); blocks go in and
    come out as float32, clipped to [-1, 1] and quantised exactly as the 16-bit FLAC chunks would store them.
    `append` copies the block into a preallocated array (no reallocation, cost proportional to the
    block only), `last(s)` returns a chronological copy. Thread-safe: one writer, any readers.
    """

    def __init__(self, seconds: float, rate: int, channels: int):
        if seconds <= 0 or rate <= 0 or channels <= 0:
            raise ValueError("seconds, rate and channels must be positive")
        self.rate = int(rate)
        self.channels = int(channels)
        self.capacity = max(1, int(round(seconds * rate)))
        self._data = np.zeros((self.capacity, self.channels), dtype=np.int16)
        self._pos = 0  # next write index
        self._total = 0  # frames ever appended
        self._lock = threading.Lock()

    @property
    def seconds(self) -> float:
        return self.capacity / self.rate

    @property
    def total_frames(self) -> int:
        """Frames appended since creation (the absolute position of the newest frame + 1)."""
        return self._total

    @property
    def frames(self) -> int:
        """Frames currently held (≤ capacity)."""
        return min(self._total, self.capacity)

    @property
    def fill(self) -> float:
        """How full the buffer is, 0..1."""
        return self.frames / self.capacity

    @property
    def nbytes(self) -> int:
        return self._data.nbytes

    def append(self, block: np.ndarray) -> None:
        """Append a (frames, channels) or (frames,) block; the oldest audio falls off."""
        b = np.asarray(block, dtype=np.float32)
        if b.ndim == 1:
            b = b[:, None]
        if b.shape[1] != self.channels:
            raise ValueError(f"block has {b.shape[1]} channels, buffer has {self.channels}")
        b = to_pcm16(b)
        n = b.shape[0]
        if n == 0:
            return
        with self._lock:
            total = self._total + n
            if n >= self.capacity:
                b = b[-self.capacity:]
                n = self.capacity
            first = min(n, self.capacity - self._pos)
            self._data[self._pos:self._pos + first] = b[:first]
            if first < n:
                self._data[:n - first] = b[first:]
            self._pos = (self._pos + n) % self.capacity
            self._total = total

    def last(self, seconds: float | None = None) -> np.ndarray:
        """A copy of the newest `seconds` (all held audio if None), oldest first, shape (frames, channels)."""
        with self._lock:
            held = min(self._total, self.capacity)
            n = held if seconds is None else min(held, max(0, int(round(seconds * self.rate))))
            return self._tail(n)

    def last_frames(self, n: int) -> tuple[np.ndarray, int]:
        """The newest `n` frames (or fewer) and the absolute position of the first returned frame."""
        with self._lock:
            n = min(int(n), self._total, self.capacity)
            return self._tail(n), self._total - n

    def _tail(self, n: int) -> np.ndarray:
        start = self._pos - n
        if start >= 0:
            pcm = self._data[start:self._pos]
        else:
            pcm = np.concatenate([self._data[start:], self._data[:self._pos]])
        return pcm.astype(np.float32) / np.float32(SCALE)

    def clear(self) -> None:
        with self._lock:
            self._pos = 0
            self._total = 0


def to_db(x: np.ndarray | float) -> np.ndarray:
    """Linear amplitude → dBFS, floored at FLOOR_DB."""
    return np.maximum(20.0 * np.log10(np.maximum(np.asarray(x, dtype=np.float64), 1e-12)), FLOOR_DB)


def levels(block: np.ndarray) -> tuple[list[float], list[float]]:
    """(RMS dBFS per channel, peak dBFS per channel) of a (frames, channels) block."""
    b = np.asarray(block, dtype=np.float32)
    if b.ndim == 1:
        b = b[:, None]
    if b.shape[0] == 0:
        return [FLOOR_DB] * b.shape[1], [FLOOR_DB] * b.shape[1]
    rms = np.sqrt(np.mean(np.square(b, dtype=np.float64), axis=0))
    peak = np.max(np.abs(b), axis=0)
    return [round(float(v), 1) for v in to_db(rms)], [round(float(v), 1) for v in to_db(peak)]
