"""Pick a character's best reference audio for voice cloning, automatically, from their clips.

The same measures as the rest of the house, no new copies:

1. **isolated**: no overlapping speaker, attribution confidence ≥ the dataset's ``MIN_CONFIDENCE``, 1–15 s long,
   and clean by the dataset filter (pipeline.voices.dataset ``measure`` / ``judge``: no clipping, no music bed,
   SNR ≥ 15 dB);
2. **speaker-consistent**: Resemblyzer embedding (pipeline.stages.voiceprint) close to the character's centroid —
   the centroid of the more consistent half of the clean clips, so a few mis-attributed lines cannot pull it —
   at the voiceprint stage's own match threshold;
3. **high DNSMOS** (pipeline.voices.check ``dnsmos``): the clips are ranked by DNSMOS + similarity and taken
   best first until the reference holds ``target_s`` (15 s) of speech, at most ``max_s`` (30 s); fewer than
   ``min_s`` (5 s) of such speech is refused with one line that says what was found.

The clips not used as reference are the *held-out* clips the voice check compares the new voice with.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np

from ..errors import BadInputError, WeaverError
from ..progress import CancelToken, ProgressCallback, no_progress
from .dataset import MIN_CONFIDENCE, ClipSample, judge, measure

MIN_CLIP_S = 1.0
MAX_CLIP_S = 15.0
GAP_S = 0.25  # silence between the clips of the reference
MAX_CANDIDATES = 16  # clips measured with the embedder and DNSMOS (the cleanest by SNR first)


@dataclass
class ReferenceClip:
    clip_id: int | None
    start: float
    end: float
    text: str
    snr_db: float
    similarity: float
    dnsmos: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass
class Reference:
    audio: np.ndarray
    rate: int
    clips: list[ReferenceClip]
    held_out: list[tuple[np.ndarray, int]] = field(default_factory=list)
    rejected: dict[str, int] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return len(self.audio) / self.rate

    def summary(self) -> dict:
        return {"seconds": round(self.seconds, 2), "clips": [{**asdict(c), "seconds": round(c.seconds, 2)} for c in self.clips],
                "held_out": len(self.held_out), "rejected": dict(self.rejected),
                "dnsmos": round(float(np.mean([c.dnsmos for c in self.clips])), 3) if self.clips else None,
                "similarity": round(float(np.mean([c.similarity for c in self.clips])), 3) if self.clips else None}


def pick_reference(
    samples: Sequence[ClipSample],
    *,
    rate: int = 24000,
    min_s: float = 5.0,
    target_s: float = 15.0,
    max_s: float = 30.0,
    max_candidates: int = MAX_CANDIDATES,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> Reference:
    """The best 5–30 s of the character's speech (see the module docstring) as one array at ``rate``."""
    from ..media import load_audio
    from ..stages.voiceprint import DEFAULT_THRESHOLD, consistent_centroid, embed
    from .check import dnsmos
    from .dataset import _loudness_normalizer

    rejected: dict[str, int] = {}

    def reject(reason: str) -> None:
        rejected[reason] = rejected.get(reason, 0) + 1

    clean: list[tuple[ClipSample, np.ndarray, float]] = []
    for i, s in enumerate(samples):
        if cancel is not None:
            cancel.check()
        progress(0.4 * i / max(1, len(samples)), f"reference: checking clip {i + 1}/{len(samples)}")
        if s.overlap:
            reject("overlap")
            continue
        if s.confidence < MIN_CONFIDENCE:
            reject("low_confidence")
            continue
        if s.end is not None and not MIN_CLIP_S <= s.end - s.start <= MAX_CLIP_S:
            reject("too_short" if s.end - s.start < MIN_CLIP_S else "too_long")
            continue
        try:
            audio = np.asarray(load_audio(s.audio_path, sample_rate=rate, start=float(s.start or 0), end=s.end), dtype=np.float32).reshape(-1)
        except WeaverError:
            reject("unreadable")
            continue
        q = measure(audio, rate)
        reason = judge(q, min_s=MIN_CLIP_S, max_s=MAX_CLIP_S)
        if reason:
            reject(reason)
            continue
        clean.append((s, audio, q.snr_db))
    clean.sort(key=lambda c: -c[2])
    for _ in clean[max_candidates:]:
        reject("not_measured")
    clean = clean[:max_candidates]
    if not clean:
        detail = ", ".join(f"{k} {v}" for k, v in sorted(rejected.items())) or "no clips"
        raise BadInputError(f"no clean isolated clip to clone the voice from ({detail})")

    embs = []
    for i, (_, audio, _) in enumerate(clean):
        if cancel is not None:
            cancel.check()
        progress(0.4 + 0.3 * i / len(clean), f"reference: voiceprint {i + 1}/{len(clean)}")
        embs.append(embed(audio, rate))
    _, sims = consistent_centroid(embs)

    scored: list[tuple[float, ReferenceClip, np.ndarray]] = []
    for i, ((s, audio, snr), sim) in enumerate(zip(clean, sims)):
        if cancel is not None:
            cancel.check()
        progress(0.7 + 0.3 * i / len(clean), f"reference: DNSMOS {i + 1}/{len(clean)}")
        if sim < DEFAULT_THRESHOLD:
            reject("other_voice")
            continue
        mos = dnsmos(audio, rate)
        end = s.end if s.end is not None else s.start + len(audio) / rate
        clip = ReferenceClip(clip_id=s.clip_id, start=round(float(s.start), 3), end=round(float(end), 3), text=s.text,
                             snr_db=round(float(snr), 1), similarity=round(float(sim), 4), dnsmos=round(mos, 3))
        scored.append((mos + 2.0 * sim, clip, audio))
    scored.sort(key=lambda t: -t[0])

    chosen: list[tuple[ReferenceClip, np.ndarray]] = []
    held: list[tuple[np.ndarray, int]] = []
    total = 0.0
    for _, clip, audio in scored:
        seconds = len(audio) / rate
        if total < target_s and total + seconds <= max_s:
            chosen.append((clip, audio))
            total += seconds + GAP_S
        else:
            held.append((audio, rate))
    speech = sum(len(a) for _, a in chosen) / rate
    if speech < min_s:
        raise BadInputError(f"only {speech:.1f} s of clean isolated speech in the character's own voice "
                            f"({len(chosen)} clip(s)); cloning needs at least {min_s:.0f} s — keep or add more of their clips")
    gap = np.zeros(int(GAP_S * rate), dtype=np.float32)
    parts = []
    for clip, audio in sorted(chosen, key=lambda c: c[0].start):  # film order reads as one continuous take
        parts.extend([audio, gap])
    _, normalise = _loudness_normalizer()
    ref = normalise(np.concatenate(parts[:-1]), rate).astype(np.float32)
    progress(1.0, f"reference: {len(chosen)} clips, {len(ref) / rate:.1f} s")
    return Reference(audio=ref, rate=rate, clips=[c for c, _ in sorted(chosen, key=lambda c: c[0].start)], held_out=held,
                     rejected=rejected)
