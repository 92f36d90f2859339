"""The built-in ``default`` voice: espeak-ng, offline, no training, no model files."""

from __future__ import annotations

import shutil
import struct
import subprocess

import numpy as np

from ..errors import BackendUnavailableError, BadInputError

NAME = "default"
ESPEAK_VOICE = "en+m3"
INSTALL_HINT = "espeak-ng is not installed: apt-get install espeak-ng (Windows/macOS: install eSpeak NG and put it on PATH)"


def espeak_binary() -> str:
    """Path of espeak-ng (or espeak); BackendUnavailableError with the install command when missing."""
    for name in ("espeak-ng", "espeak"):
        p = shutil.which(name)
        if p:
            return p
    raise BackendUnavailableError(INSTALL_HINT)


def _parse_wav(data: bytes) -> tuple[np.ndarray, int]:
    """espeak-ng --stdout writes a streaming WAV (sizes set to 0x7fffffff): read fmt, then all data after 'data'."""
    if len(data) < 44 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise BadInputError("espeak-ng did not return WAV audio")
    pos, rate, bits = 12, 22050, 16
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        if cid == b"fmt ":
            _fmt, _ch, rate, _br, _ba, bits = struct.unpack("<HHIIHH", data[pos + 8 : pos + 24])
        elif cid == b"data":
            body = data[pos + 8 :]
            if bits != 16:
                raise BadInputError(f"unexpected espeak-ng sample size {bits} bits")
            body = body[: len(body) // 2 * 2]
            return (np.frombuffer(body, dtype="<i2").astype(np.float32) / 32768.0), rate
        pos += 8 + size + (size & 1)
    return np.zeros(0, dtype=np.float32), rate


def speak(text: str, *, rate: int | None = 24000, voice: str = ESPEAK_VOICE, speed: int = 165, timeout: float = 120.0) -> tuple[np.ndarray, int]:
    """Say ``text`` with espeak-ng; float32 mono audio resampled to ``rate`` (None: espeak's own 22050 Hz)."""
    if not text or not text.strip():
        raise BadInputError("nothing to say: the text is empty")
    exe = espeak_binary()
    try:
        r = subprocess.run([exe, "--stdout", "-v", voice, "-s", str(speed), "--stdin"], input=text.encode("utf-8"), capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BadInputError(f"espeak-ng took longer than {timeout:.0f} s for {len(text)} characters") from None
    if r.returncode != 0:
        raise BadInputError(f"espeak-ng failed: {r.stderr.decode(errors='replace').strip()[:200]}")
    audio, native = _parse_wav(r.stdout)
    if rate and rate != native:
        from ..media import resample

        audio = resample(audio, native, rate)
        native = rate
    return audio.astype(np.float32, copy=False), native
