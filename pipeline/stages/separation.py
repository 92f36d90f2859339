"""Dialogue isolation: keep the voices, drop music and effects.

Backends:
- ``demucs`` (best offline, weights fetched once): HTDemucs "vocals" stem, applied chunk by chunk (overlapping
  windows, linear crossfade) so long files report progress and can be cancelled.
- ``denoise`` (always offline, crude): non-stationary spectral gating (noisereduce) plus a speech band-pass. If the
  source track has a centre channel the caller has already picked it; this only cleans what is left.
- ``elevenlabs`` (cloud, off by default): ElevenLabs' audio-isolation endpoint; needs ELEVENLABS_API_KEY and the
  user's opt-in to cloud services.

Every backend returns mono float32 audio of the same length and rate as its input.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import BackendUnavailableError, BadInputError, ModelMissingError, WeaverError
from ..progress import CancelToken, ProgressCallback, no_progress
from .base import Availability, ModelSpec, StageBackend, register


class SeparationBackend(StageBackend):
    """Base for dialogue-isolation backends."""

    stage = "separation"

    def isolate(self, audio: np.ndarray, rate: int, *, progress: ProgressCallback = no_progress,
                cancel: CancelToken | None = None) -> np.ndarray:
        """Dialogue-only mono float32 audio, same length and rate as ``audio`` ((n,) or (n, channels))."""
        raise NotImplementedError


def _as_2d(audio: np.ndarray) -> np.ndarray:
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[0] == 0:
        raise BadInputError(f"expected audio shaped (samples,) or (samples, channels), got {a.shape}")
    return a


def _fit(x: np.ndarray, n: int) -> np.ndarray:
    """Trim or zero-pad the first axis to n samples."""
    if len(x) >= n:
        return x[:n]
    return np.concatenate([x, np.zeros((n - len(x),) + x.shape[1:], dtype=x.dtype)])


def process_in_chunks(
    x: np.ndarray,
    fn: Callable[[np.ndarray], np.ndarray],
    *,
    chunk: int,
    overlap: int,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
    message: str = "isolating dialogue",
) -> np.ndarray:
    """Apply ``fn`` to overlapping chunks of x (samples first) and crossfade the results linearly.

    ``fn`` maps a (chunk, ...) array to an array with the same number of samples; the output keeps fn's trailing
    shape. Progress is reported after every chunk and ``cancel`` is checked before each one.
    """
    n = len(x)
    if chunk <= 0 or overlap < 0 or overlap >= chunk:
        raise BadInputError(f"bad chunking: chunk {chunk}, overlap {overlap}")
    step = chunk - overlap
    starts = list(range(0, max(1, n - overlap), step)) if n > chunk else [0]
    out = None
    weight = np.zeros(n, dtype=np.float32)
    for i, s in enumerate(starts):
        if cancel is not None:
            cancel.check()
        e = min(n, s + chunk)
        y = np.asarray(fn(x[s:e]), dtype=np.float32)
        if len(y) != e - s:
            y = _fit(y, e - s)
        if out is None:
            out = np.zeros((n,) + y.shape[1:], dtype=np.float32)
        w = np.ones(e - s, dtype=np.float32)
        if overlap and s > 0:  # fade in over the overlap with the previous chunk
            ramp = min(overlap, e - s)
            w[:ramp] = np.linspace(0, 1, ramp + 2, dtype=np.float32)[1:-1]
        if overlap and e < n:  # fade out where the next chunk starts
            ramp = min(overlap, e - s)
            w[-ramp:] = np.minimum(w[-ramp:], np.linspace(1, 0, ramp + 2, dtype=np.float32)[1:-1])
        out[s:e] += y * w.reshape((-1,) + (1,) * (y.ndim - 1))
        weight[s:e] += w
        progress((i + 1) / len(starts), message)
    assert out is not None
    return out / np.maximum(weight, 1e-6).reshape((-1,) + (1,) * (out.ndim - 1))


# --------------------------------------------------------------------------------------------------------------
# demucs

DEMUCS_SIG = "955717e8-8726e21a.th"  # the single model inside the "htdemucs" bag
DEMUCS_FETCH = "python -c \"from demucs.pretrained import get_model; get_model('htdemucs')\""


def _torch_hub_dir() -> Path:
    env = os.environ.get("TORCH_HOME")
    base = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "torch"
    return base / "hub"


def _demucs_weight_paths() -> list[Path]:
    """Where demucs' get_model('htdemucs') leaves its weights: the torch hub cache, or the Hugging Face cache."""
    from ..hub import hub_repo_dir

    return [_torch_hub_dir() / "checkpoints" / DEMUCS_SIG, hub_repo_dir("adefossez/HTDemucs")]


@register
class DemucsSeparator(SeparationBackend):
    """HTDemucs vocals stem (Meta's hybrid transformer demucs), run in overlapping chunks on CPU or GPU."""

    name = "demucs"
    offline = True
    quality = 10
    description = "HTDemucs vocals stem (best local isolation; ≈80 MB weights fetched once)"
    requires = ("demucs", "torch")
    install_hint = 'pip install "voice-weaver[demucs]"'

    def __init__(self, model=None, chunk_seconds: float = 10.0, overlap_seconds: float = 1.0, threads: int = 2,
                 device: str | None = None, **options) -> None:
        super().__init__(chunk_seconds=chunk_seconds, overlap_seconds=overlap_seconds, threads=threads, **options)
        self._model = model  # an already built (e.g. random-init, for tests) demucs model or bag
        self.chunk_seconds = float(chunk_seconds)
        self.overlap_seconds = float(overlap_seconds)
        self.threads = int(threads)
        self.device = device

    @classmethod
    def models(cls) -> list[ModelSpec]:
        paths = _demucs_weight_paths()
        present = any(p.exists() for p in paths)
        return [ModelSpec(name="htdemucs", path=str(paths[0]), fetch_command=DEMUCS_FETCH, size_mb=80.0,
                          present=present)]

    def require(self) -> None:
        if self._model is not None:
            return
        super().require()

    def load(self):
        """The htdemucs model from the local caches only (never the network)."""
        if self._model is not None:
            return self._model
        spec = self.models()[0]
        if not spec.present:
            raise ModelMissingError("htdemucs", DEMUCS_FETCH, "needed by separation backend 'demucs'")
        prev = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE",)}
        os.environ["HF_HUB_OFFLINE"] = "1"  # a cached copy must not trigger a download attempt
        try:
            torch_file = _demucs_weight_paths()[0]
            if torch_file.exists():
                import torch
                from demucs.states import load_model

                model = load_model(torch.load(torch_file, map_location="cpu", weights_only=False))
            else:
                from demucs.pretrained import get_model

                model = get_model("htdemucs")
        except Exception as e:
            raise ModelMissingError("htdemucs", DEMUCS_FETCH, f"cached weights unreadable: {type(e).__name__}") from None
        finally:
            for k, v in prev.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        model.eval()
        self._model = model
        return model

    @staticmethod
    def _members(model) -> list[tuple[object, np.ndarray]]:
        """(model, per-source weights) pairs of a BagOfModels, or the single model with weight 1."""
        inner = getattr(model, "models", None)
        if inner is None:
            return [(model, np.ones(len(model.sources), dtype=np.float32))]
        weights = getattr(model, "weights", None) or [[1.0] * len(model.sources)] * len(inner)
        return [(m, np.asarray(w, dtype=np.float32)) for m, w in zip(inner, weights)]

    def isolate(self, audio, rate, *, progress=no_progress, cancel=None) -> np.ndarray:
        import torch

        from ..media import resample

        x = _as_2d(audio)
        n = len(x)
        model = self.load()
        sources = list(model.sources)
        if "vocals" not in sources:
            raise BadInputError(f"demucs model has no 'vocals' source (has {', '.join(sources)})")
        vi = sources.index("vocals")
        sr = int(model.samplerate)
        ch = int(getattr(model, "audio_channels", 2))
        # channel layout the model wants: mono → duplicated, many → mixed down
        if x.shape[1] == ch:
            mix = x
        elif x.shape[1] == 1:
            mix = np.repeat(x, ch, axis=1)
        else:
            mix = np.repeat(x.mean(axis=1, keepdims=True), ch, axis=1)
        if rate != sr:
            mix = resample(mix, rate, sr).astype(np.float32)
        members = self._members(model)
        # a chunk may not exceed the model's training segment (HTDemucs refuses longer input)
        seg = min((float(getattr(m, "segment", self.chunk_seconds)) for m, _ in members), default=self.chunk_seconds)
        chunk = int(min(self.chunk_seconds, seg) * sr)
        overlap = min(int(self.overlap_seconds * sr), chunk // 2)
        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        for m, _ in members:
            m.to(device)

        def run(block: np.ndarray) -> np.ndarray:
            t = torch.from_numpy(np.ascontiguousarray(block.T))  # (channels, samples)
            ref = t.mean(0)
            mean, std = ref.mean(), ref.std() + 1e-8
            t = ((t - mean) / std)[None].to(device)
            length = t.shape[-1]
            total, wsum = None, 0.0
            for m, w in members:
                valid = int(float(getattr(m, "segment", length / sr)) * sr)
                inp = torch.nn.functional.pad(t, (0, max(0, valid - length))) if valid > length else t
                est = m(inp)[0, vi, :, :length] * float(w[vi])
                total = est if total is None else total + est
                wsum += float(w[vi])
            voc = (total / max(wsum, 1e-8)) * std + mean
            return voc.mean(0).float().cpu().numpy()  # mono

        prev = torch.get_num_threads()
        torch.set_num_threads(max(1, self.threads))
        try:
            with torch.inference_mode():
                out = process_in_chunks(mix, run, chunk=chunk, overlap=overlap, progress=progress, cancel=cancel)
        finally:
            torch.set_num_threads(prev)
        if rate != sr:
            out = resample(out, sr, rate)
        return _fit(np.asarray(out, dtype=np.float32), n)


# --------------------------------------------------------------------------------------------------------------
# spectral gating


@register
class DenoiseSeparator(SeparationBackend):
    """Non-stationary spectral gating (noisereduce) and a 80 Hz – 7.5 kHz band-pass: tames steady music and hum."""

    name = "denoise"
    offline = True
    quality = 2
    description = "spectral gating + speech band-pass (no model; removes steady noise and sustained music)"
    requires = ("noisereduce", "scipy")
    install_hint = 'pip install "voice-weaver[offline]"'

    def __init__(self, prop_decrease: float = 0.9, low_hz: float = 80.0, high_hz: float = 7500.0,
                 chunk_seconds: float = 30.0, **options) -> None:
        super().__init__(prop_decrease=prop_decrease, low_hz=low_hz, high_hz=high_hz, **options)
        self.prop_decrease = float(prop_decrease)
        self.low_hz, self.high_hz = float(low_hz), float(high_hz)
        self.chunk_seconds = float(chunk_seconds)

    def isolate(self, audio, rate, *, progress=no_progress, cancel=None) -> np.ndarray:
        import noisereduce
        from scipy.signal import butter, sosfiltfilt

        x = _as_2d(audio).mean(axis=1)
        n = len(x)
        hi = min(self.high_hz, rate / 2 * 0.95)
        sos = butter(4, [self.low_hz, hi], btype="bandpass", fs=rate, output="sos") if hi > self.low_hz else None

        def run(block: np.ndarray) -> np.ndarray:
            if len(block) < rate // 10:  # too short to gate; band-pass only
                y = block
            else:
                y = noisereduce.reduce_noise(y=block, sr=rate, stationary=False, prop_decrease=self.prop_decrease,
                                             n_jobs=1)
            if sos is not None and len(y) > 27:
                y = sosfiltfilt(sos, y)
            return np.asarray(y, dtype=np.float32)

        chunk = int(self.chunk_seconds * rate)
        out = process_in_chunks(x, run, chunk=chunk, overlap=min(rate, chunk // 4), progress=progress, cancel=cancel)
        return _fit(out.astype(np.float32), n)


# --------------------------------------------------------------------------------------------------------------
# ElevenLabs (cloud)

ELEVENLABS_URL = "https://api.elevenlabs.io/v1/audio-isolation"


def _cloud_enabled() -> bool:
    try:
        from ..config import Settings

        return bool(Settings.load().cloud_enabled)
    except Exception:  # unreadable settings never turn cloud on
        return False


@register
class ElevenLabsSeparator(SeparationBackend):
    """ElevenLabs voice isolator over HTTPS. Off unless the user set an API key AND enabled cloud services."""

    name = "elevenlabs"
    offline = False
    quality = 8  # below demucs: audio only leaves the machine when the user picks this backend or has no demucs
    description = "ElevenLabs audio isolation (cloud; sends the audio to ElevenLabs; needs an API key)"
    requires = ("httpx",)
    install_hint = "pip install httpx"

    def __init__(self, api_key: str | None = None, cloud_enabled: bool | None = None, timeout: float = 300.0,
                 **options) -> None:
        super().__init__(**options)
        self.api_key = api_key or os.environ.get("ELEVENLABS_API_KEY")
        self.cloud_enabled = _cloud_enabled() if cloud_enabled is None else bool(cloud_enabled)
        self.timeout = float(timeout)

    @classmethod
    def availability(cls) -> Availability:
        if not os.environ.get("ELEVENLABS_API_KEY"):
            return Availability(False, "no ElevenLabs API key", "set ELEVENLABS_API_KEY and enable cloud services in settings")
        if not _cloud_enabled():
            return Availability(False, "cloud services are off", "enable cloud services in settings (sends audio to ElevenLabs)")
        return super().availability()

    def require(self) -> None:
        if not self.api_key:
            raise BackendUnavailableError("separation backend 'elevenlabs' needs an API key: set ELEVENLABS_API_KEY")
        if not self.cloud_enabled:
            raise BackendUnavailableError("separation backend 'elevenlabs' is a cloud service: enable cloud services in settings first")

    def build_request(self, audio: np.ndarray, rate: int):
        """The HTTP request (not sent): 16 kHz mono 16-bit PCM as multipart field 'audio', file_format pcm_s16le_16."""
        import httpx

        from ..media import resample

        x = _as_2d(audio).mean(axis=1)
        if rate != 16000:
            x = resample(x, rate, 16000)
        pcm = (np.clip(x, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        return httpx.Request(
            "POST", ELEVENLABS_URL,
            headers={"xi-api-key": self.api_key or "", "accept": "audio/mpeg"},
            files={"audio": ("audio.pcm", pcm, "application/octet-stream")},
            data={"file_format": "pcm_s16le_16"},
        )

    def isolate(self, audio, rate, *, progress=no_progress, cancel=None) -> np.ndarray:
        import tempfile

        import httpx

        from ..media import load_audio

        self.require()
        n = len(_as_2d(audio))
        if cancel is not None:
            cancel.check()
        progress(0.05, "uploading to ElevenLabs")
        try:
            with httpx.Client(timeout=self.timeout) as client:
                resp = client.send(self.build_request(audio, rate))
        except httpx.HTTPError as e:
            raise WeaverError(f"ElevenLabs request failed: {type(e).__name__}: {e}") from None
        if resp.status_code != 200:
            detail = resp.text[:200].replace("\n", " ")
            raise WeaverError(f"ElevenLabs audio isolation failed (HTTP {resp.status_code}): {detail}")
        if cancel is not None:
            cancel.check()
        progress(0.9, "decoding result")
        with tempfile.TemporaryDirectory() as td:
            p = Path(td) / "isolated.mp3"
            p.write_bytes(resp.content)
            out = load_audio(p, sample_rate=rate, channels="mono")
        progress(1.0, "dialogue isolated")
        return _fit(np.asarray(out, dtype=np.float32), n)
