"""Encode float audio to WAV/FLAC/MP3 bytes for HTTP responses (panel playback, /v1/audio/speech)."""

from __future__ import annotations

import io

import numpy as np


def encode_wav(audio: np.ndarray, rate: int) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.clip(audio, -1, 1), rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()
