"""Voice activity detection: where in the audio someone speaks.

Backends:
- ``silero``: the Silero VAD network that ships inside the ``silero-vad`` wheel (offline, best).
- ``energy``: frame energy against an adaptive noise floor (plain numpy, always available, crude).

Both return :class:`~pipeline.types.Region` lists in seconds, merged, filtered and padded the same way.
"""

from __future__ import annotations

import numpy as np

from ..errors import BadInputError
from ..progress import CancelToken, ProgressCallback, no_progress
from ..types import Region
from .base import StageBackend, register

RATE = 16000


def prepare_audio(audio: np.ndarray, rate: int) -> np.ndarray:
    """Check and convert input to float32 mono at 16 kHz (resampling through pipeline.media)."""
    a = np.asarray(audio)
    if a.ndim == 2:
        a = a.mean(axis=1)
    if a.ndim != 1:
        raise BadInputError(f"expected mono audio, got an array shaped {a.shape}")
    if rate <= 0:
        raise BadInputError(f"bad sample rate {rate}")
    a = a.astype(np.float32, copy=False)
    if rate != RATE:
        from ..media import resample

        a = resample(a, rate, RATE)
    return a


def postprocess(
    spans: list[tuple[float, float]],
    duration: float,
    *,
    min_speech: float,
    min_silence: float,
    pad: float,
) -> list[Region]:
    """Merge spans closer than ``min_silence``, drop those shorter than ``min_speech``, pad and clip."""
    merged: list[list[float]] = []
    for s, e in sorted(spans):
        if e <= s:
            continue
        if merged and s - merged[-1][1] < min_silence:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    out: list[Region] = []
    for s, e in merged:
        if e - s < min_speech:
            continue
        s, e = max(0.0, s - pad), min(duration, e + pad)
        if out and s <= out[-1].end:  # padding made neighbours touch
            out[-1].end = max(out[-1].end, e)
        else:
            out.append(Region(round(s, 3), round(e, 3)))
    return out


class VadBackend(StageBackend):
    """Base for VAD backends: ``speech_regions`` returns speech spans in seconds."""

    stage = "vad"

    def speech_regions(
        self,
        audio: np.ndarray,
        rate: int,
        *,
        min_speech: float = 0.25,
        min_silence: float = 0.3,
        pad: float = 0.05,
        progress: ProgressCallback = no_progress,
        cancel: CancelToken | None = None,
    ) -> list[Region]:
        """Speech regions of ``audio`` (float mono at ``rate`` Hz), best guess at where people talk."""
        a = prepare_audio(audio, rate)
        duration = len(a) / RATE
        if len(a) < RATE // 10:
            progress(1.0, "no audio")
            return []
        spans = self._raw_spans(a, progress=progress, cancel=cancel)
        regions = postprocess(spans, duration, min_speech=min_speech, min_silence=min_silence, pad=pad)
        progress(1.0, f"{len(regions)} speech regions")
        return regions

    def _raw_spans(self, audio: np.ndarray, *, progress: ProgressCallback, cancel: CancelToken | None) -> list[tuple[float, float]]:
        raise NotImplementedError


@register
class SileroVad(VadBackend):
    """Silero VAD v6 (the model bundled in the silero-vad wheel), run window by window on CPU."""

    name = "silero"
    offline = True
    quality = 10
    description = "Silero VAD neural network (bundled in the silero-vad package)"
    requires = ("silero_vad", "torch")
    install_hint = "pip install silero-vad"
    WINDOW = 512  # samples per decision at 16 kHz (32 ms)

    _model = None  # shared by every instance: loading takes ~0.3 s

    def __init__(self, threshold: float = 0.5, threads: int = 1, **options) -> None:
        super().__init__(threshold=threshold, threads=threads, **options)
        self.threshold = float(threshold)
        self.threads = int(threads)

    @classmethod
    def _load(cls):
        """The bundled model: the ONNX export when onnxruntime is installed (2x faster per window), else TorchScript."""
        if cls._model is None:
            import importlib.util

            from silero_vad import load_silero_vad

            cls._model = load_silero_vad(onnx=importlib.util.find_spec("onnxruntime") is not None)
        return cls._model

    def speech_probabilities(self, audio: np.ndarray, *, progress: ProgressCallback = no_progress,
                             cancel: CancelToken | None = None) -> np.ndarray:
        """Per-window (32 ms) speech probability of 16 kHz float audio."""
        import torch

        model = self._load()
        prev_threads = torch.get_num_threads()
        torch.set_num_threads(max(1, self.threads))
        n = len(audio)
        w = self.WINDOW
        padded = np.zeros(((n + w - 1) // w) * w, dtype=np.float32)
        padded[:n] = audio
        frames = torch.from_numpy(padded).view(-1, w)
        probs = np.empty(len(frames), dtype=np.float32)
        step = max(1, int(30 * RATE / w))  # report about every 30 s of audio
        try:
            model.reset_states()
            with torch.inference_mode():
                for i in range(len(frames)):
                    if i % step == 0:
                        if cancel is not None:
                            cancel.check()
                        progress(i / len(frames), "finding speech")
                    probs[i] = float(model(frames[i : i + 1], RATE))
        finally:
            torch.set_num_threads(prev_threads)
        return probs

    def _raw_spans(self, audio, *, progress, cancel):
        from silero_vad import get_speech_timestamps_from_probs

        probs = self.speech_probabilities(audio, progress=progress, cancel=cancel)
        stamps = get_speech_timestamps_from_probs(
            probs.tolist(), sampling_rate=RATE, threshold=self.threshold, min_speech_duration_ms=0,
            min_silence_duration_ms=0, speech_pad_ms=0, audio_length_samples=len(audio),
        )
        return [(s["start"] / RATE, s["end"] / RATE) for s in stamps]


@register
class EnergyVad(VadBackend):
    """Frame energy above an adaptive noise floor, with hysteresis. Crude but dependency-free."""

    name = "energy"
    offline = True
    quality = 1
    description = "energy threshold (no model; fooled by music and noise)"
    FRAME = 0.03
    HOP = 0.01
    SILENCE_DB = -55.0  # frames quieter than this (dBFS) are never speech

    def __init__(self, margin_db: float = 8.0, **options) -> None:
        super().__init__(margin_db=margin_db, **options)
        self.margin_db = float(margin_db)

    def frame_db(self, audio: np.ndarray) -> np.ndarray:
        """Band-limited (100 Hz – 4 kHz) frame energy in dBFS, one value per 10 ms hop."""
        from scipy.signal import butter, sosfilt

        sos = butter(4, [100, 4000], btype="bandpass", fs=RATE, output="sos")
        x = sosfilt(sos, audio).astype(np.float32)
        frame, hop = int(self.FRAME * RATE), int(self.HOP * RATE)
        if len(x) < frame:
            x = np.pad(x, (0, frame - len(x)))
        n = 1 + (len(x) - frame) // hop
        # mean square per frame from a cumulative sum (no big strided copy)
        c = np.concatenate([[0.0], np.cumsum(x.astype(np.float64) ** 2)])
        idx = np.arange(n) * hop
        ms = (c[idx + frame] - c[idx]) / frame
        return 10.0 * np.log10(ms + 1e-12)

    def _raw_spans(self, audio, *, progress, cancel):
        if cancel is not None:
            cancel.check()
        db = self.frame_db(audio)
        progress(0.5, "finding speech")
        floor = float(np.percentile(db, 10))
        loud = float(np.percentile(db, 95))
        if loud < self.SILENCE_DB:
            return []
        on = max(self.SILENCE_DB, floor + max(self.margin_db, 0.35 * (loud - floor)))
        off = max(self.SILENCE_DB, on - 4.0)
        spans: list[tuple[float, float]] = []
        active, start = False, 0
        for i, v in enumerate(db):
            if not active and v >= on:
                active, start = True, i
            elif active and v < off:
                active = False
                spans.append((start * self.HOP, i * self.HOP + self.FRAME))
        if active:
            spans.append((start * self.HOP, len(audio) / RATE))
        return spans
