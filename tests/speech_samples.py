"""Speech fixtures for the VAD/ASR/alignment tests, made in code (espeak-ng) or taken from a PyPI package.

- ``espeak_*``: synthetic speech whose speech spans are known exactly (silences are inserted by us).
- ``librivox_clips``: five real LibriVox recordings (public domain, one reader, 25 s in all) with their
  transcripts, shipped in the pocketsphinx source distribution on PyPI (test/data/librivox). The sdist file is
  downloaded once (checked against PyPI's sha256) and only read, never built, into a cache folder; tests skip
  when that is impossible (no PyPI access and no cache).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import numpy as np

RATE = 16000
CACHE = Path(os.environ.get("VOICE_WEAVER_TEST_DATA") or Path.home() / ".cache" / "voice-weaver-test-data")


def espeak(text: str, *, voice: str = "en+m3", speed: int = 160) -> np.ndarray:
    """Speak ``text`` with espeak-ng; 16 kHz float32 mono, decoded through pipeline.media."""
    from pipeline.media import load_audio

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "say.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(out), text], check=True,
                       capture_output=True)
        return load_audio(out)


def trim(audio: np.ndarray, threshold: float = 0.01) -> np.ndarray:
    """Cut leading/trailing near-silence so the clip starts and ends with sound."""
    loud = np.flatnonzero(np.abs(audio) > threshold)
    if not len(loud):
        return audio[:0]
    return audio[loud[0]: loud[-1] + 1]


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(round(seconds * RATE)), dtype=np.float32)


def espeak_sentences(sentences: list[str], gaps: list[float], *, voice: str = "en+m3", lead: float = 0.8
                     ) -> tuple[np.ndarray, list[tuple[float, float, str]]]:
    """Sentences separated by inserted silences: (audio, [(speech start, speech end, text)]) with exact times."""
    parts, spans, t = [silence(lead)], [], lead
    for i, s in enumerate(sentences):
        a = trim(espeak(s, voice=voice))
        spans.append((t, t + len(a) / RATE, s))
        parts.append(a)
        t += len(a) / RATE
        g = gaps[i % len(gaps)]
        parts.append(silence(g))
        t += g
    return np.concatenate(parts), spans


def espeak_words(words: list[str], gap: float = 0.2, *, voice: str = "en+m3", lead: float = 0.5
                 ) -> tuple[np.ndarray, list[tuple[float, float, str]]]:
    """Each word spoken alone, trimmed and joined with ``gap`` s of silence: exact start/end of every word."""
    parts, spans, t = [silence(lead)], [], lead
    for w in words:
        a = trim(espeak(w, voice=voice))
        spans.append((t, t + len(a) / RATE, w))
        parts += [a, silence(gap)]
        t += len(a) / RATE + gap
    return np.concatenate(parts), spans


def add_noise(audio: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    """White noise at ``snr_db`` below the speech level (measured on the non-silent part), seeded."""
    speech = trim(audio)
    level = float(np.sqrt(np.mean(speech.astype(np.float64) ** 2))) if len(speech) else 0.1
    noise = np.random.default_rng(seed).standard_normal(len(audio)) * level * 10 ** (-snr_db / 20)
    return (audio + noise).astype(np.float32)


def _pocketsphinx_version() -> str:
    from importlib.metadata import version

    return version("pocketsphinx")


def download_sdist(name: str, version: str, folder: Path) -> Path:
    """Download a package's source distribution file from the package index as a plain file, sha256-checked.

    Uses the index's JSON Simple API (PEP 691) at $PIP_INDEX_URL or PyPI. (``pip download --no-binary :all:``
    would also prepare the sdist's metadata, building its build dependencies from source too: for pocketsphinx
    that compiled Cython for minutes at test time.)
    """
    import hashlib

    import httpx

    index = (os.environ.get("PIP_INDEX_URL") or "https://pypi.org/simple").rstrip("/")
    listing = httpx.get(f"{index}/{name}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"},
                        timeout=30, follow_redirects=True)
    listing.raise_for_status()
    wanted = f"{name}-{version}.tar.gz"
    entry = next(f for f in listing.json()["files"] if f["filename"] == wanted)
    target = folder / wanted
    digest = hashlib.sha256()
    with httpx.stream("GET", str(listing.url.join(entry["url"])), timeout=120, follow_redirects=True) as r, \
            open(target, "wb") as f:
        r.raise_for_status()
        for block in r.iter_bytes(1 << 20):
            digest.update(block)
            f.write(block)
    if digest.hexdigest() != entry["hashes"]["sha256"]:
        raise OSError(f"{wanted}: sha256 differs from the index's")
    return target


def librivox_clips() -> list[tuple[Path, str]] | None:
    """[(wav path, reference transcript)] of the LibriVox clips, fetching them once; None if unavailable."""
    import httpx

    ver = _pocketsphinx_version()
    folder = CACHE / f"pocketsphinx-{ver}-librivox"
    done = folder / ".complete"
    if not done.exists():
        if os.environ.get("VOICE_WEAVER_TEST_OFFLINE"):
            return None
        try:
            with tempfile.TemporaryDirectory() as tmp:
                sdist = download_sdist("pocketsphinx", ver, Path(tmp))
                folder.mkdir(parents=True, exist_ok=True)
                with tarfile.open(sdist) as tar:
                    for m in tar.getmembers():
                        if "/test/data/librivox/" in m.name and m.name.endswith((".wav", ".txt")) and m.isfile():
                            data = tar.extractfile(m).read()
                            (folder / Path(m.name).name).write_bytes(data)
                done.write_text("ok\n")
        except (OSError, httpx.HTTPError, ValueError, KeyError, StopIteration, tarfile.TarError):
            shutil.rmtree(folder, ignore_errors=True)
            return None
    clips = []
    for wav in sorted(folder.glob("*.wav")):
        txt = wav.with_suffix(".txt")
        if txt.exists():
            clips.append((wav, txt.read_text().strip()))
    return clips or None


# known text for the espeak-ng speech used by the ASR and alignment tests
SENTENCES = [
    "The old lighthouse keeper walked down to the harbor every morning.",
    "She counted the boats and wrote their names in a small notebook.",
    "Nobody in the village knew why he kept doing it.",
    "One winter night a storm pushed a strange ship onto the rocks.",
]
