"""Build a TTS training set from attributed clips: quality filter, loudness normalisation, resampling, split.

Each clip is (optionally) isolated first (the caller passes the separation backend's ``isolate``), then checked:
its text (none, unverified "check text" lines are left out unless asked), attribution (confidence, overlapped
speech), length, the signal filter (clipping, music bed, SNR), duplicates; then scored: DNSMOS (speechmos, the
same helper as the voice check) and speaker consistency (Resemblyzer embedding against the centroid of the
character's more consistent half of clips, pipeline.stages.voiceprint). Every rejected clip keeps its reason.

Output (in ``out_dir``):
  wavs/<id>.wav + metadata.csv ("id|text|text")               LJSpeech layout
  audiofolder/{train,validation}/<id>.wav + metadata.csv        Hugging Face audiofolder (file_name,transcription)
  summary.json                                                   the DatasetSummary
"""

from __future__ import annotations

import csv
import json
import os
import random
import re
import shutil
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from ..errors import BadInputError, Cancelled, StorageError, WeaverError
from ..files import replace_folder
from ..progress import CancelToken, ProgressCallback, no_progress
from ..stages.voiceprint import DEFAULT_THRESHOLD as SPEAKER_THRESHOLD, consistent_centroid

# Thresholds of the quality filter (tuned on espeak-ng speech vs the same speech with sox noise/music/clipping).
CLIP_LEVEL = 0.985  # |sample| at or above this counts as "at full scale"
CLIP_MAX_FRACTION = 0.001  # more than 0.1 % of samples pinned at full scale (in runs of >= 2) → clipping
SNR_MIN_DB = 15.0  # loud-frame (p95) vs quiet-frame (p10) energy
MUSIC_BG_MIN_REL_DB = -30.0  # background (quietest 20 % of frames) at least this close to the loud frames ...
MUSIC_BG_MIN_ABS_DB = -65.0  # ... and above this absolute level ...
MUSIC_MAX_FLATNESS = 0.3  # ... and tonal (spectral flatness below this) → residual music
MIN_CONFIDENCE = 0.5
TARGET_LUFS = -23.0
TARGET_RMS_DBFS = -23.0
PEAK_LIMIT = 10 ** (-1.0 / 20)  # -1 dBFS
USEFUL_MINUTES = 10.0
DNSMOS_FLOOR = 1.25  # below: unusable (heavy reverb ≈1.3); espeak-ng under music scores 1.2–1.7, clean dialogue ≥ 2.5
DNSMOS_BELOW_MEDIAN = 0.6  # ... and a clip this far below the character's median is worse than their other lines
SPEAKER_CHECK_MIN_CLIPS = 5  # fewer clips give no reliable centroid: the speaker check is skipped (and says so)
BACKEND_RATES = {"orpheus": 24000, "pocket-lora": 24000, "pocket": 24000, "piper": 22050}  # what each TTS trains at

REASONS = ("no_text", "check_text", "low_confidence", "overlap", "unreadable", "too_short", "too_long", "clipping",
           "music", "low_snr", "duplicate_text", "other_voice", "low_dnsmos")


@dataclass
class ClipSample:
    """One candidate clip: a file (or a window of it) and what is said in it."""

    audio_path: Path
    text: str
    start: float = 0
    end: float | None = None
    confidence: float = 1.0
    overlap: bool = False
    clip_id: int | None = None
    check_text: bool = False  # no text source matched the audio well: the words are unverified


@dataclass
class ClipQuality:
    """Measurements the filter decides on (exposed for tests and the panel)."""

    duration: float
    clip_fraction: float
    snr_db: float
    background_rel_db: float
    background_abs_db: float
    background_flatness: float


@dataclass
class DatasetSummary:
    kept: int
    rejected: dict[str, int]
    rejected_items: list[tuple[str, str]]
    minutes_kept: float
    train: int
    val: int
    warning: str | None = None
    loudness: str = "ebu_r128"  # or "rms" when pyloudnorm is missing
    rate: int = 24000
    out_dir: str = ""
    items: list[dict] = field(default_factory=list)  # id, clip_id, text, split, duration, source, dnsmos, similarity
    rejected_clips: list[dict] = field(default_factory=list)  # clip_id, start, end, text, reason, detail
    isolation: str | None = None  # the separation backend tried on every clip (kept where it raised DNSMOS)
    isolated: int = 0  # clips kept in their isolated version
    dnsmos: str = "scored"  # or why it was not ("off", "unavailable: …")
    dnsmos_mean: float | None = None
    speaker_check: str = ""  # what the speaker-consistency check did

    def to_dict(self) -> dict:
        return asdict(self)


def normalize_text(text: str) -> str:
    """Lowercase, strip accents/punctuation, collapse spaces: the key for duplicate detection."""
    t = unicodedata.normalize("NFKD", text)
    t = "".join(c for c in t if not unicodedata.combining(c)).lower()
    t = re.sub(r"[^\w\s]", " ", t)
    return re.sub(r"\s+", " ", t).strip()


def measure(audio: np.ndarray, rate: int) -> ClipQuality:
    """Clipping fraction, SNR estimate and background tonality of a mono float clip."""
    from scipy.signal import stft

    x = np.asarray(audio, dtype=np.float32)
    n = len(x)
    near = np.abs(x) >= CLIP_LEVEL
    runs = near & (np.roll(near, 1) | np.roll(near, -1)) if n > 2 else near
    clip_fraction = float(runs.mean()) if n else 0.0

    fl = max(1, int(0.02 * rate))
    nf = n // fl
    if nf >= 2:
        e = 10 * np.log10(np.mean(x[: nf * fl].reshape(nf, fl) ** 2, axis=1) + 1e-10)
        snr = float(np.percentile(e, 95) - np.percentile(e, 10))
    else:
        snr = 0.0

    nper = 1024 if rate >= 16000 else 512
    if n < nper * 2:
        return ClipQuality(n / rate, clip_fraction, snr, -99.0, -120.0, 1.0)
    f, _, z = stft(x, rate, nperseg=nper, noverlap=nper // 2)
    p = np.abs(z) ** 2
    lo, hi = np.searchsorted(f, 100), np.searchsorted(f, min(6000, rate / 2 - 1))
    p = p[lo:hi]
    fe = 10 * np.log10(p.mean(0) + 1e-12)
    quiet = fe <= np.percentile(fe, 20)
    bg = p[:, quiet]
    bg_db = float(10 * np.log10(bg.mean() + 1e-12))
    spec = bg.mean(1) + 1e-12
    flat = float(np.exp(np.mean(np.log(spec))) / np.mean(spec))
    return ClipQuality(n / rate, clip_fraction, snr, bg_db - float(np.percentile(fe, 95)), bg_db, flat)


def judge(q: ClipQuality, *, min_s: float, max_s: float) -> str | None:
    """The rejection reason for a measured clip, or None when it is clean."""
    if q.duration < min_s:
        return "too_short"
    if q.duration > max_s:
        return "too_long"
    if q.clip_fraction > CLIP_MAX_FRACTION:
        return "clipping"
    if q.background_rel_db > MUSIC_BG_MIN_REL_DB and q.background_abs_db > MUSIC_BG_MIN_ABS_DB and q.background_flatness < MUSIC_MAX_FLATNESS:
        return "music"
    if q.snr_db < SNR_MIN_DB:
        return "low_snr"
    return None


def _loudness_normalizer():
    """(name, fn(audio, rate) -> audio): EBU R128 with pyloudnorm when installed, else RMS."""
    try:
        import pyloudnorm  # noqa: F401
    except ImportError:
        pyloudnorm = None

    def rms_norm(audio: np.ndarray, rate: int) -> np.ndarray:
        rms = float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))) or 1e-9
        return audio * (10 ** (TARGET_RMS_DBFS / 20) / rms)

    def limit(audio: np.ndarray) -> np.ndarray:
        peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
        return (audio * (PEAK_LIMIT / peak) if peak > PEAK_LIMIT else audio).astype(np.float32)

    if pyloudnorm is None:
        return "rms", lambda a, r: limit(rms_norm(a, r))

    import warnings

    def r128(audio: np.ndarray, rate: int) -> np.ndarray:
        meter = pyloudnorm.Meter(rate)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lufs = meter.integrated_loudness(audio.astype(np.float64))
        if not np.isfinite(lufs):
            return limit(rms_norm(audio, rate))
        return limit(audio * 10 ** ((TARGET_LUFS - lufs) / 20))

    return "ebu_r128", r128


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def build_dataset(
    samples: Iterable[ClipSample],
    out_dir: str | os.PathLike,
    *,
    target_rate: int = 24000,
    min_s: float = 2.0,
    max_s: float = 15.0,
    val_fraction: float = 0.1,
    seed: int = 0,
    isolate: Callable[[np.ndarray, int], np.ndarray] | None = None,
    isolation_name: str | None = None,
    score: bool = True,
    include_check_text: bool = False,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> DatasetSummary:
    """Filter, score, normalise and write clips as an LJSpeech + audiofolder dataset; see the module docstring.

    Built in a temporary sibling folder and moved into place at the end, so a cancelled or failed build
    leaves any previous dataset in ``out_dir`` untouched. Raises BadInputError when nothing is usable.
    """
    from ..media import load_audio, probe, resample, write_audio

    samples = list(samples)
    if not samples:
        raise BadInputError("no clips to build a dataset from")
    out = Path(out_dir)
    tmp = out.with_name(out.name + ".building")
    shutil.rmtree(tmp, ignore_errors=True)
    loudness_name, normalise = _loudness_normalizer()
    rejected: dict[str, int] = {}
    rejected_items: list[tuple[str, str]] = []
    rejected_clips: list[dict] = []
    kept: list[dict] = []
    embeddings: list[np.ndarray | None] = []
    seen_text: set[str] = set()
    scorer = _ClipScorer(score)

    def reject(s: ClipSample, reason: str, detail: str = "") -> None:
        rejected[reason] = rejected.get(reason, 0) + 1
        label = str(s.audio_path) + (f"@{s.start:.2f}-{s.end:.2f}" if s.end is not None else "")
        rejected_items.append((label, reason))
        rejected_clips.append({"clip_id": s.clip_id, "start": round(float(s.start or 0), 3),
                               "end": None if s.end is None else round(float(s.end), 3), "text": s.text,
                               "reason": reason, "detail": detail})

    try:
        (tmp / "wavs").mkdir(parents=True)
        for i, s in enumerate(samples):
            if cancel is not None:
                cancel.check()
            progress(0.95 * i / len(samples), f"checking clip {i + 1}/{len(samples)}")
            text = " ".join(str(s.text or "").replace("|", " ").split())
            key = normalize_text(text)
            if not key:
                reject(s, "no_text")
                continue
            if s.check_text and not include_check_text:
                reject(s, "check_text", "no text source matched the audio well")
                continue
            if s.confidence < MIN_CONFIDENCE:
                reject(s, "low_confidence", f"attribution confidence {s.confidence:.2f}")
                continue
            if s.overlap:
                reject(s, "overlap", "two voices at once")
                continue
            if s.end is not None and s.end - s.start < min_s:
                reject(s, "too_short", f"{s.end - s.start:.1f} s")
                continue
            if s.end is not None and s.end - s.start > max_s:
                reject(s, "too_long", f"{s.end - s.start:.1f} s")
                continue
            try:
                native = _native_rate(s.audio_path, probe)
                audio = load_audio(s.audio_path, sample_rate=None, start=float(s.start or 0), end=s.end)
            except WeaverError:
                reject(s, "unreadable")
                continue
            versions = [("raw", np.asarray(audio, dtype=np.float32).reshape(-1))]
            if isolate is not None:
                versions.append(("isolated", np.asarray(isolate(versions[0][1], native), dtype=np.float32).reshape(-1)))
            verdicts = [judge(measure(a, native), min_s=min_s, max_s=max_s) for _, a in versions]
            passing = [v for v, r in zip(versions, verdicts) if r is None]
            if not passing:
                reject(s, verdicts[-1], "after isolation" if len(versions) > 1 else "")
                continue
            if key in seen_text:
                reject(s, "duplicate_text")
                continue
            seen_text.add(key)
            # the version that sounds better: isolation that does not raise DNSMOS is not applied to this clip
            scored = [(scorer.dnsmos(a, native), name, a) for name, a in passing]
            mos, version, audio = max(scored, key=lambda t: (-1.0 if t[0] is None else t[0], t[1] == "isolated"))
            emb = scorer.embed(versions[-1][1], native)  # every clip's voiceprint from the same processing
            audio = normalise(resample(audio, native, target_rate), target_rate)
            cid = f"clip{s.clip_id:06d}" if s.clip_id is not None else f"item{i:06d}"
            if any(k["id"] == cid for k in kept):
                cid = f"{cid}_{i}"
            write_audio(tmp / "wavs" / f"{cid}.wav", audio, target_rate)
            kept.append({"id": cid, "clip_id": s.clip_id, "text": text, "duration": round(len(audio) / target_rate, 3),
                         "source": str(s.audio_path), "dnsmos": None if mos is None else round(mos, 3),
                         "isolated": version == "isolated",
                         "similarity": None, "_sample": s})
            embeddings.append(emb)

        progress(0.95, "scoring clips")
        median = float(np.median([k["dnsmos"] for k in kept if k["dnsmos"] is not None])) if scorer.dnsmos_on and kept else None

        def drop(k: dict, reason: str, detail: str) -> None:
            reject(k["_sample"], reason, detail)
            (tmp / "wavs" / f"{k['id']}.wav").unlink()
            embeddings.pop(kept.index(k))
            kept.remove(k)

        for k in list(kept):  # the clip's own quality first: a distorted line of the right voice is "low_dnsmos"
            if k["dnsmos"] is not None and (k["dnsmos"] < DNSMOS_FLOOR or k["dnsmos"] < median - DNSMOS_BELOW_MEDIAN):
                drop(k, "low_dnsmos", f"DNSMOS {k['dnsmos']:.2f} (character median {median:.2f})")
        speaker_check = _check_speaker(kept, embeddings, scorer)
        for k in list(kept):
            if k["similarity"] is not None and k["similarity"] < SPEAKER_THRESHOLD:
                drop(k, "other_voice", f"similarity {k['similarity']:.2f} to the character's voice")
        for k in kept:
            k.pop("_sample")

        if not kept:
            detail = ", ".join(f"{k}: {v}" for k, v in sorted(rejected.items()))
            raise BadInputError(f"no usable clips: all {len(samples)} were rejected ({detail})")

        order = list(range(len(kept)))
        random.Random(seed).shuffle(order)
        n_val = int(round(len(kept) * val_fraction)) if val_fraction > 0 else 0
        if val_fraction > 0 and n_val == 0 and len(kept) >= 10:
            n_val = 1
        n_val = min(n_val, len(kept) - 1)
        val_ids = {kept[j]["id"] for j in order[:n_val]}
        for k in kept:
            k["split"] = "validation" if k["id"] in val_ids else "train"

        with open(tmp / "metadata.csv", "w", encoding="utf-8", newline="") as f:
            for k in kept:
                f.write(f"{k['id']}|{k['text']}|{k['text']}\n")
        for split in ("train", "validation"):
            d = tmp / "audiofolder" / split
            d.mkdir(parents=True)
            with open(d / "metadata.csv", "w", encoding="utf-8", newline="") as f:
                w = csv.writer(f)
                w.writerow(["file_name", "transcription"])
                for k in kept:
                    if k["split"] == split:
                        _link_or_copy(tmp / "wavs" / f"{k['id']}.wav", d / f"{k['id']}.wav")
                        w.writerow([f"{k['id']}.wav", k["text"]])

        minutes = sum(k["duration"] for k in kept) / 60.0
        warning = None
        if minutes < USEFUL_MINUTES:
            warning = f"only {minutes:.1f} min of clean speech; Orpheus LoRA usually needs ≥ {USEFUL_MINUTES:.0f} min"
        moses = [k["dnsmos"] for k in kept if k["dnsmos"] is not None]
        summary = DatasetSummary(
            kept=len(kept),
            rejected=rejected,
            rejected_items=rejected_items,
            minutes_kept=round(minutes, 3),
            train=sum(1 for k in kept if k["split"] == "train"),
            val=len(val_ids),
            warning=warning,
            loudness=loudness_name,
            rate=target_rate,
            out_dir=str(out),
            items=kept,
            rejected_clips=rejected_clips,
            isolation=isolation_name if isolate is not None else None,
            isolated=sum(1 for k in kept if k["isolated"]),
            dnsmos=scorer.state["dnsmos"],
            dnsmos_mean=round(float(np.mean(moses)), 3) if moses else None,
            speaker_check=speaker_check,
        )
        (tmp / "summary.json").write_text(json.dumps(summary.to_dict(), indent=2, ensure_ascii=False))
        replace_folder(tmp, out)
        progress(1.0, f"{len(kept)} clips kept, {sum(rejected.values())} rejected")
        return summary
    except (Cancelled, WeaverError):
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise StorageError(f"could not write the dataset to {out}: {e.strerror or e}") from None


class _ClipScorer:
    """DNSMOS and a speaker embedding per clip; a scorer whose model is missing says so once and is skipped."""

    def __init__(self, on: bool):
        self.state = {"dnsmos": "scored" if on else "off", "voiceprint": "" if on else "off"}

    @property
    def dnsmos_on(self) -> bool:
        return self.state["dnsmos"] == "scored"

    def _run(self, kind: str, fn, audio: np.ndarray, rate: int):
        from ..errors import BackendUnavailableError

        if self.state[kind] not in ("scored", ""):
            return None
        try:
            return fn(audio, rate)
        except BackendUnavailableError as e:
            self.state[kind] = f"unavailable: {e}"
            return None

    def dnsmos(self, audio: np.ndarray, rate: int) -> float | None:
        from .check import dnsmos

        return self._run("dnsmos", dnsmos, audio, rate)

    def embed(self, audio: np.ndarray, rate: int) -> np.ndarray | None:
        from ..stages.voiceprint import embed

        return self._run("voiceprint", embed, audio, rate)


def _check_speaker(kept: list[dict], embeddings: list[np.ndarray | None], scorer: _ClipScorer) -> str:
    """Set each kept clip's similarity to the character's centroid; returns what the check did."""
    if scorer.state["voiceprint"]:
        return scorer.state["voiceprint"]
    pairs = [(k, e) for k, e in zip(kept, embeddings) if e is not None]
    if len(pairs) < SPEAKER_CHECK_MIN_CLIPS:
        return f"skipped: {len(pairs)} clip(s), need {SPEAKER_CHECK_MIN_CLIPS} for a reliable centroid"
    _, sims = consistent_centroid([e for _, e in pairs])
    for (k, _), sim in zip(pairs, sims):
        k["similarity"] = round(float(sim), 4)
    return f"centroid of {len(pairs)} clips, threshold {SPEAKER_THRESHOLD:.2f}"


def _native_rate(path, probe) -> int:
    info = probe(path)
    a = [s for s in info.audio if s.default] or info.audio
    return a[0].sample_rate


def read_dataset(dataset_dir: str | os.PathLike, split: str = "train") -> list[tuple[Path, str]]:
    """(wav path, text) pairs of a dataset built by :func:`build_dataset` (audiofolder split, else LJSpeech)."""
    d = Path(dataset_dir)
    meta = d / "audiofolder" / split / "metadata.csv"
    if meta.is_file():
        with open(meta, encoding="utf-8", newline="") as f:
            return [(meta.parent / r["file_name"], r["transcription"]) for r in csv.DictReader(f)]
    lj = d / "metadata.csv"
    if lj.is_file():
        out = []
        for line in lj.read_text(encoding="utf-8").splitlines():
            parts = line.split("|")
            if len(parts) >= 2:
                out.append((d / "wavs" / f"{parts[0]}.wav", parts[-1]))
        return out
    raise BadInputError(f"{d} is not a dataset folder (no audiofolder/{split}/metadata.csv or metadata.csv)")
