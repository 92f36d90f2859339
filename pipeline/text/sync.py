"""Subtitle timing sync: find ``scale`` and ``offset`` so that ``corrected = scale * t + offset``.

Official subtitles are often off by a constant offset (another release, an added logo) and by a linear drift
(framerate conversion, e.g. 25 → 23.976 fps = ×1.0427). Two estimators:

* **ASR words** (``asr_words``, media clock): distinctive word n-grams shared by subtitles and transcript give
  anchor pairs; RANSAC over (scale, offset) picks the consistent ones, then each subtitle line is matched to the
  transcript near its predicted time (first words, fuzzy) and a robust line is fitted to line-start anchors.
  When speech regions are given too, the offset is then fine-tuned on them (within ±0.3 s).
* **Speech regions** (VAD, media clock): a coarse search over common framerate ratios and a scale grid, each
  with an FFT cross-correlation of a subtitle mask against a ±1 speech mask, then a hierarchical grid
  refinement of the exact objective (speech covered − silence covered, plus a bonus for cue starts that sit on
  speech onsets) at 10 ms.

The ASR estimate is used when it finds enough consistent anchors; otherwise speech regions. ``score`` is 0..1:
for ASR the share of subtitle lines confirmed by the transcript, for speech how much better than chance the cues
sit on speech.

On top of the global fit, :mod:`pipeline.text.sync_sections` looks for sections with their own offset (a cut
scene, an ad break, another edit) against the speech regions (or, without them, regions made of the ASR words);
``sections`` lists (subtitle time the section starts, offset), one entry in the normal case.
"""

from __future__ import annotations

import math
import re
import unicodedata
from bisect import bisect_right
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from pipeline.text import sync_sections
from pipeline.types import Line, Region, Word

_NTSC24 = 24000 / 1001
_NTSC30 = 30000 / 1001
_FPS = [(_NTSC24, "23.976"), (24.0, "24"), (25.0, "25"), (_NTSC30, "29.97"), (30.0, "30")]
# scale = source fps / target fps: subtitles timed for `source` played against a `target` video.
FRAMERATE_RATIOS: list[tuple[float, str]] = [
    (a / b, f"{na}→{nb} fps") for a, na in _FPS for b, nb in _FPS if a != b and 0.79 < a / b < 1.27
]

RELIABLE_SCORE = 0.3
SECTIONS_MIN_SCORE = 0.15  # a global fit scoring lower (another film) is not searched for sections
_RES = 0.01  # fine time resolution (s)
_ONSET_WEIGHT = 0.5  # seconds of overlap a perfect onset hit is worth
_ONSET_WIDTH = 0.25  # half width of the triangular onset kernel (s)


@dataclass
class SyncResult:
    """A timing correction: ``corrected = scale * t + offset``, the offset taken per section when there are several.

    ``sections``: (subtitle time the section starts, its offset), sorted; the first starts at 0. Empty or one entry:
    ``offset`` everywhere. ``offset`` is then the offset of the longest section."""

    scale: float = 1.0
    offset: float = 0.0
    score: float = 0.0
    method: str = "none"  # "asr", "asr+speech" (transcript fit, offset fine-tuned on speech), "speech" or "none"
    n_anchors: int = 0
    sections: list[tuple[float, float]] = field(default_factory=list)

    def offset_at(self, t: float) -> float:
        """The offset of the section holding subtitle time ``t``."""
        if len(self.sections) < 2:
            return self.offset
        k = bisect_right([s for s, _ in self.sections], t) - 1
        return self.sections[max(k, 0)][1]

    def apply(self, t: float) -> float:
        return self.scale * t + self.offset_at(t)

    @property
    def reliable(self) -> bool:
        """Worth applying: a wrong movie or unrelated speech scores ≈0.1, a right match 0.5–0.9."""
        return self.method != "none" and self.score >= RELIABLE_SCORE

    def is_identity(self, offset_tol: float = 0.05, scale_tol: float = 1e-4) -> bool:
        offsets = [self.offset] + [o for _, o in self.sections]
        return all(abs(o) < offset_tol for o in offsets) and abs(self.scale - 1.0) < scale_tol

    def framerate_label(self, tol: float = 2e-4) -> str | None:
        """'25→23.976 fps' when the scale is a known framerate ratio."""
        best = min(FRAMERATE_RATIOS, key=lambda r: abs(r[0] - self.scale))
        return best[1] if abs(best[0] - self.scale) <= tol * best[0] else None

    def record(self, applied: bool) -> dict:
        """What is stored with the subtitle track: the fields, ``description``, ``summary`` and ``applied``."""
        return {**asdict(self), "sections": [list(x) for x in self.sections], "description": self.describe(),
                "summary": self.summary(), "applied": applied}

    def summary(self) -> str:
        """What was found, short: 'shifted −2.4 s, 25→23.976 fps, 2 sections' (or 'in sync', 'not checked')."""
        if self.method == "none":
            return "not checked"
        parts = []
        if abs(self.offset) >= 0.05:
            parts.append(f"shifted {'−' if self.offset < 0 else '+'}{abs(self.offset):.1f} s")
        if abs(self.scale - 1.0) >= 1e-4:
            parts.append(self.framerate_label() or f"drift ×{self.scale:.4f}")
        if len(self.sections) > 1:
            parts.append(f"{len(self.sections)} sections")
        text = ", ".join(parts) or "in sync"
        return text if self.reliable else f"{text} (low confidence {self.score:.2f}, not applied)"

    def sections_text(self) -> str:
        """'from 12:04 +90.0 s; from 20:10 −20.0 s' for the sections after the first ('' for one section)."""
        def clock(t: float) -> str:
            m, sec = divmod(int(round(t)), 60)
            return f"{m // 60}:{m % 60:02d}:{sec:02d}" if m >= 60 else f"{m}:{sec:02d}"
        return "; ".join(f"from {clock(t)} {'−' if o < 0 else '+'}{abs(o):.2f} s" for t, o in self.sections[1:])

    def describe(self) -> str:
        """One human sentence, e.g. 'shifted −2.40 s, drift ×1.0427 (25→23.976 fps); confidence 0.83 (speech)'."""
        if self.method == "none":
            return "subtitle timing not checked (no speech regions or transcript to compare with)"
        if self.is_identity() and len(self.sections) < 2:
            head = "already in sync"
        else:
            sign = "−" if self.offset < 0 else "+"
            head = f"shifted {sign}{abs(self.offset):.2f} s"
            if abs(self.scale - 1.0) >= 1e-4:
                label = self.framerate_label()
                head += f", drift ×{self.scale:.4f}" + (f" ({label})" if label else "")
            else:
                head += ", no drift"
            if len(self.sections) > 1:
                head += f", {len(self.sections)} sections ({self.sections_text()})"
        how = {"asr": "transcript", "speech": "speech regions", "asr+speech": "transcript + speech regions"}.get(self.method, self.method)
        tail = f"; confidence {self.score:.2f} ({how}, {self.n_anchors} anchors)"
        if self.score < 0.2:
            tail += " — low confidence, check by ear"
        return head + tail


def apply_sync(lines: list[Line], result: SyncResult) -> list[Line]:
    """New lines (and their word times) mapped through ``result``, a line wholly by the section its start is in;
    times are clamped at 0."""
    a = result.scale
    out = []
    for ln in lines:
        b = result.offset_at(ln.start)

        def f(t: float, b: float = b) -> float:
            return max(0.0, a * t + b)

        words = [replace(w, start=f(w.start), end=max(f(w.start), f(w.end))) for w in ln.words]
        s = f(ln.start)
        out.append(replace(ln, start=s, end=max(s, f(ln.end)), words=words, tags=list(ln.tags)))
    return out


# ----------------------------------------------------------------------------------------------- entry point


def estimate_sync(
    lines: list[Line],
    *,
    speech: list[Region] | None = None,
    asr_words: list[Word] | None = None,
    duration: float | None = None,
    scale_range: float = 0.05,
) -> SyncResult:
    """Estimate the correction that maps subtitle times onto the media (see module docstring)."""
    cues = [ln for ln in lines if ln.end > ln.start and _is_speech_text(ln.text)]
    if len(cues) < 2:
        return SyncResult()
    res = SyncResult()
    if asr_words:
        found = _asr_sync(cues, asr_words)
        if found is not None:
            res = _speech_polish(cues, speech, duration, found) if speech else found
    if res.method == "none" and speech:
        res = _speech_sync(cues, speech, duration, scale_range)
    return _with_sections(cues, res, speech, asr_words, duration)


def _with_sections(cues: list[Line], res: SyncResult, speech: list[Region] | None, words: list[Word] | None,
                   duration: float | None, scale_range: float = 0.05) -> SyncResult:
    """The global fit with its sections (:mod:`sync_sections`) when several offsets fit clearly better than one.

    A speech fit over sections sees a mix: its scale may be a compromise. When sections turn up, or the fit is
    mediocre, the search is repeated at 1.0, each framerate ratio and the scale the longest section fits alone."""
    if res.method == "none" or res.score < SECTIONS_MIN_SCORE:
        return res
    regions = sorted((r for r in speech or [] if r.end > r.start), key=lambda r: r.start) or _word_regions(words or [])
    if not regions:
        return res
    cues = sorted(cues, key=lambda c: c.start)
    s = np.array([c.start for c in cues])
    e = np.array([c.end for c in cues])
    media_end = max(duration or 0.0, regions[-1].end)
    obj = _SpeechObjective(regions, media_end)
    fits = [_sections_at(obj, s, e, res.scale, res.offset, media_end)]
    if res.method == "speech" and (len(fits[0][2]) > 1 or res.score < 0.6):
        span = max(float(e.max() - s.min()), 1.0)
        scales = [a for a in [1.0] + [r for r, _ in FRAMERATE_RATIOS]
                  if abs(a - 1.0) <= scale_range + 0.05 and abs(a - res.scale) * span >= 0.04]
        if len(fits[0][2]) > 1:  # the longest section on its own
            bounds = fits[0][3]
            k = int(np.argmax(np.diff(bounds)))
            alone = _speech_sync(cues[bounds[k]:bounds[k + 1]], regions, duration, scale_range)
            if alone.method != "none":
                fits.append(_sections_at(obj, s, e, alone.scale, alone.offset, media_end))
        rc = float(np.clip(max(media_end, span) / 15000, 0.04, 0.25))
        tc = float(np.median(s))
        for _, a, b in _coarse_fits(obj, s, e, scales, media_end, rc) if scales else []:
            _, m, _ = _refine(obj, s, e, tc, a, a * tc + b, 0.0, rc, offsets_only=True)
            fits.append(_sections_at(obj, s, e, a, m - a * tc, media_end))
    total, a, offsets, bounds = max(fits, key=lambda f: f[0])
    if len(offsets) < 2:
        return res
    sections = [(0.0 if k == 0 else float(s[i0]), float(o)) for k, (i0, o) in enumerate(zip(bounds, offsets))]
    split = replace(res, scale=a, offset=sections[int(np.argmax(np.diff(bounds)))][1], sections=sections)
    if res.method == "speech":
        b = np.array([split.offset_at(t) for t in s])
        score = _mapped_score(obj, a * s + b, a * e + b)
        each = [_mapped_score(obj, a * s[i0:i1] + b[i0:i1], a * e[i0:i1] + b[i0:i1]) for i0, i1 in zip(bounds, bounds[1:])]
        if score < res.score or min(each) < RELIABLE_SCORE:  # no better than one offset, or a section on chance
            return res
        return replace(split, score=score)
    score = _asr_score(cues, words or [], split)
    return replace(split, score=score) if score >= res.score else res


def _sections_at(obj: _SpeechObjective, s: np.ndarray, e: np.ndarray, a: float, b: float, media_end: float):
    """(per-cue score total less the section penalties, scale, offsets, section bounds) at scale ``a``."""
    found = sync_sections.find_sections(obj, a * s + b, a * e + b, media_end)
    if not found:
        total = float(sync_sections.per_cue(obj, a * s + b, a * e + b).sum())
        return total, a, [b], [0, len(s)]
    bounds = [i0 for i0, _ in found] + [len(s)]
    a, offsets = _refit_scale(obj, s, e, a, [b + d for _, d in found], bounds)
    off = np.repeat(offsets, np.diff(bounds))
    total = float(sync_sections.per_cue(obj, a * s + off, a * e + off).sum()) - sync_sections.SECTION_PENALTY * (len(found) - 1)
    return total, a, offsets, bounds[:-1] + [len(s)]


def _refit_scale(obj: _SpeechObjective, s: np.ndarray, e: np.ndarray, a0: float, offsets: list[float],
                 bounds: list[int]) -> tuple[float, list[float]]:
    """The scale refitted with one offset per section (the global fit saw the sections as one): ``a0``, 1.0 or a
    framerate ratio moving no cue by more than 0.5 s, whichever the sections' cues fit best (a ratio on a tie)."""
    span = max(float(e.max() - s.min()), 1.0)
    cands = [a0] + [r for r in [1.0] + [r for r, _ in FRAMERATE_RATIOS] if abs(r - a0) * span < 0.5]
    fits = []
    for a in cands:
        offs, total = [], 0.0
        for (i0, i1), b in zip(zip(bounds, bounds[1:]), offsets):
            tc = float(np.median(s[i0:i1]))
            d = sync_sections.refine_offset(obj, a * (s[i0:i1] - tc), a * (e[i0:i1] - tc), b + a0 * tc, radius=0.6)
            total += float(obj.value(a * (s[i0:i1] - tc) + d, a * (e[i0:i1] - tc) + d))
            offs.append(d - a * tc)
        fits.append((total, a, offs))
    top = max(f[0] for f in fits)
    snapped = [f for f in fits[1:] if f[0] >= top - 0.01 * abs(top)]
    _, a, offs = snapped[0] if snapped else max(fits, key=lambda f: f[0])
    return float(a), offs


def _word_regions(words: list[Word], gap: float = 0.3) -> list[Region]:
    """Speech regions made of ASR word times (words closer than ``gap`` merged)."""
    out: list[Region] = []
    for w in sorted(words, key=lambda w: w.start):
        if out and w.start <= out[-1].end + gap:
            out[-1] = Region(out[-1].start, max(out[-1].end, w.end))
        else:
            out.append(Region(w.start, max(w.end, w.start + 0.05)))
    return out


def _is_speech_text(text: str) -> bool:
    t = re.sub(r"\[[^\]]*\]|\([^)]*\)|♪[^♪]*♪?", " ", text or "")
    return bool(re.search(r"\w", t))


def _snap_scale(a: float, span: float) -> float:
    """Snap to 1.0 or a framerate ratio when the difference moves no time point by more than 40 ms."""
    for cand in [1.0] + [r for r, _ in FRAMERATE_RATIOS]:
        if abs(a - cand) * max(span, 1.0) < 0.04:
            return cand
    return a


# ---------------------------------------------------------------------------------------------- speech path


class _SpeechObjective:
    """Speech mask at 10 ms as a cumulative sum (+1 speech, −1 silence/outside) and an onset bonus curve."""

    def __init__(self, regions: list[Region], duration: float):
        n = int(math.ceil(duration / _RES)) + 2
        v = np.full(n, -1.0)
        onset = np.zeros(n)
        w = int(round(_ONSET_WIDTH / _RES))
        kernel = 1.0 - np.abs(np.arange(-w, w + 1)) / (w + 1)
        for r in regions:
            i0, i1 = int(round(r.start / _RES)), int(round(r.end / _RES))
            i0, i1 = max(0, i0), min(n, i1)
            if i1 <= i0:
                continue
            v[i0:i1] = 1.0
            lo, hi = max(0, i0 - w), min(n, i0 + w + 1)
            np.maximum(onset[lo:hi], kernel[lo - (i0 - w) : hi - (i0 - w)], out=onset[lo:hi])
        self.n = n
        self.grid = np.arange(n + 1, dtype=float)  # sample positions, built once (np.interp's xp)
        self.v = v
        self.cum = np.concatenate([[0.0], np.cumsum(v)])
        self.onset = onset
        self.speech_cum = np.concatenate([[0.0], np.cumsum(v > 0)])

    def cum_at(self, x: np.ndarray) -> np.ndarray:
        """Cumulative sum of the mask at fractional sample positions, extended with −1 outside the media."""
        xi = np.clip(x, 0, self.n)
        val = np.interp(xi, self.grid, self.cum)
        return val - (x - xi)  # outside the media every sample counts as silence (−1)

    def value(self, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """Objective for cue positions (seconds); arrays of the same shape, summed over the first axis."""
        xs, xe = starts / _RES, ends / _RES
        overlap = (self.cum_at(xe) - self.cum_at(xs)) * _RES
        ons = np.interp(xs, self.grid[:-1], self.onset, left=0.0, right=0.0)
        return (overlap + _ONSET_WEIGHT * ons).sum(axis=0)

    def speech_fraction(self, a: float, b: float) -> float:
        lo, hi = max(0.0, a), min(float(self.n), b)
        if hi <= lo:
            return 0.0
        return float(np.interp(hi, self.grid, self.speech_cum) - np.interp(lo, self.grid, self.speech_cum)) / (b - a)


def _speech_sync(cues: list[Line], regions: list[Region], duration: float | None, scale_range: float) -> SyncResult:
    regions = sorted((r for r in regions if r.end > r.start), key=lambda r: r.start)
    if not regions:
        return SyncResult()
    s = np.array([c.start for c in cues])
    e = np.array([c.end for c in cues])
    media_end = max(duration or 0.0, regions[-1].end)
    span = max(float(e.max() - s.min()), 1.0)
    obj = _SpeechObjective(regions, media_end)

    # coarse: FFT cross-correlation per candidate scale
    rc = float(np.clip(max(media_end, span) / 15000, 0.04, 0.25))
    step = float(np.clip(0.5 / span, 2.5e-4, 2e-3))
    grid = list(np.arange(1.0 - scale_range, 1.0 + scale_range + 1e-12, step))
    scales = sorted({round(x, 9) for x in grid} | {round(r, 9) for r, _ in FRAMERATE_RATIOS if abs(r - 1) <= scale_range + 0.05} | {1.0})
    hyps = _coarse_fits(obj, s, e, scales, media_end, rc)
    hyps.sort(reverse=True)
    chosen: list[tuple[float, float, float]] = []
    for h in hyps:
        if all(abs(h[1] - c[1]) > 1.5 * step or abs(h[2] - c[2]) > 1.0 for c in chosen):
            chosen.append(h)
        if len(chosen) >= 4:
            break

    tc = float(np.median(s))
    best: tuple[float, float, float] | None = None
    for _, a, b in chosen:
        a2, m2, val = _refine(obj, s, e, tc, a, a * tc + b, step, rc)
        if best is None or val > best[2]:
            best = (a2, m2, val)
    assert best is not None
    a, m, _ = best
    a = _snap_scale(a, span)
    if a != best[0]:  # re-centre the offset for the snapped scale
        _, m, _ = _refine(obj, s, e, tc, a, m, 0.0, rc, offsets_only=True)
    b = m - a * tc
    return SyncResult(scale=float(a), offset=float(b), score=_speech_score(obj, s, e, a, b), method="speech", n_anchors=len(cues))


def _coarse_fits(obj: _SpeechObjective, s, e, scales, media_end: float, rc: float) -> list[tuple[float, float, float]]:
    """(correlation, scale, offset) per scale: the offset where an FFT cross-correlation of the cue mask (at ``rc``
    seconds a bin) with the ±1 speech mask peaks."""
    nv = int(math.ceil(media_end / rc)) + 1
    # coarse speech signal: mean of the 10 ms mask per coarse bin, padded with silence on both sides
    edges = np.arange(nv + 1) * (rc / _RES)
    vc = np.diff(obj.cum_at(edges)) / (rc / _RES)
    t0 = float(s.min())
    mmax = int(math.ceil(max(scales) * (e.max() - t0) / rc)) + 2
    ext = np.concatenate([np.full(mmax, -1.0), vc, np.full(mmax, -1.0)])
    nfft = 1 << int(math.ceil(math.log2(len(ext) + mmax)))
    ext_f = np.fft.rfft(ext, nfft)
    hyps: list[tuple[float, float, float]] = []
    for a in scales:
        ss, ee = a * (s - t0), a * (e - t0)
        diff = np.zeros(mmax + 1)
        np.add.at(diff, np.floor(ss / rc).astype(int), 1.0)
        np.add.at(diff, np.ceil(ee / rc).astype(int), -1.0)
        mask = np.minimum(np.cumsum(diff)[:mmax], 1.0)
        corr = np.fft.irfft(ext_f * np.conj(np.fft.rfft(mask, nfft)), nfft)[: len(ext) - mmax + 1]
        corr /= max(mask.sum(), 1.0)
        j = int(np.argmax(corr))
        b = (j - mmax) * rc - a * t0  # corrected = a * t + b
        hyps.append((float(corr[j]), a, b))
    return hyps


def _speech_polish(cues: list[Line], regions: list[Region], duration: float | None, res: SyncResult) -> SyncResult:
    """Fine-tune the offset of a transcript-based fit against speech regions (ASR word times are coarse, ±0.1 s)."""
    regions = sorted((r for r in regions if r.end > r.start), key=lambda r: r.start)
    if not regions:
        return res
    s = np.array([c.start for c in cues])
    e = np.array([c.end for c in cues])
    obj = _SpeechObjective(regions, max(duration or 0.0, regions[-1].end))
    tc = float(np.median(s))
    m0 = res.scale * tc + res.offset
    _, m, _ = _refine(obj, s, e, tc, res.scale, m0, 0.0, 0.0, offsets_only=True)
    if abs(m - m0) > 0.3:  # the speech regions disagree with the transcript: keep the transcript's answer
        return res
    return replace(res, offset=float(m - res.scale * tc), method="asr+speech")


def _refine(obj: _SpeechObjective, s, e, tc, a0, m0, step, rc, offsets_only: bool = False):
    """Hierarchical grid search of (scale, media time of the pivot tc) around a coarse estimate."""
    levels = [(step, 21, max(0.6, 3 * rc), 61), (step / 10, 21, 0.1, 41), (step / 100, 11, 0.02, 41)]
    if offsets_only:
        levels = [(0.0, 1, 0.3, 61), (0.0, 1, 0.02, 41)]
    a, m = a0, m0
    val = -np.inf
    for li, (da, na, dm, nm) in enumerate(levels):
        av = a + np.linspace(-da, da, na) if na > 1 else np.array([a])
        mv = m + np.linspace(-dm, dm, nm)
        vals = np.empty((len(av), len(mv)))
        for k, ak in enumerate(av):
            xs = ak * (s - tc)
            xe = ak * (e - tc)
            vals[k] = obj.value(xs[:, None] + mv[None, :], xe[:, None] + mv[None, :])
        top = vals.max()
        if li == len(levels) - 1:
            near = vals >= top - 1e-3 * max(1.0, abs(top))
            ki, mi = np.nonzero(near)
            a, m = float(av[ki].mean()), float(mv[mi].mean())
        else:
            ki, mi = np.unravel_index(int(np.argmax(vals)), vals.shape)
            a, m = float(av[ki]), float(mv[mi])
        val = float(top)
    return a, m, val


def _speech_score(obj: _SpeechObjective, s, e, a, b) -> float:
    return _mapped_score(obj, a * s + b, a * e + b)


def _mapped_score(obj: _SpeechObjective, starts, ends) -> float:
    """How much better than chance cues at these media times sit on speech (0..1)."""
    xs, xe = np.asarray(starts) / _RES, np.asarray(ends) / _RES
    covered = float(((np.interp(np.clip(xe, 0, obj.n), obj.grid, obj.speech_cum)
                      - np.interp(np.clip(xs, 0, obj.n), obj.grid, obj.speech_cum))).sum())
    total = float((xe - xs).sum())
    p = covered / max(total, 1e-9)
    p0 = obj.speech_fraction(float(xs.min()), float(xe.max()))
    if p0 >= 0.999:
        return 0.0
    return float(np.clip((p - p0) / (1.0 - p0), 0.0, 1.0))


# ------------------------------------------------------------------------------------------------- ASR path


def _tokens(text: str) -> list[str]:
    text = re.sub(r"\[[^\]]*\]|\([^)]*\)", " ", text or "")
    text = unicodedata.normalize("NFKD", text.replace("’", "'")).lower()
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return [t.strip("'_") for t in re.findall(r"\w+(?:'\w+)*", text) if t.strip("'_")]


def _sub_token_times(cues: list[Line]) -> tuple[list[str], np.ndarray, list[int]]:
    """Subtitle tokens with a time estimated from their character position in the cue."""
    toks: list[str] = []
    times: list[float] = []
    owner: list[int] = []
    for i, c in enumerate(cues):
        tk = _tokens(c.text)
        if not tk:
            continue
        if c.words and len(c.words) == len(tk):
            ts = [w.start for w in c.words]
        else:
            nchar = sum(len(t) + 1 for t in tk)
            speak = min(c.end - c.start, max(0.3, 0.07 * nchar))
            pos, ts = 0, []
            for t in tk:
                ts.append(c.start + speak * pos / nchar)
                pos += len(t) + 1
        toks += tk
        times += ts
        owner += [i] * len(tk)
    return toks, np.array(times, dtype=float), owner


def _gram_index(toks: list[str], n: int) -> dict[tuple[str, ...], list[int]]:
    idx: dict[tuple[str, ...], list[int]] = {}
    for i in range(len(toks) - n + 1):
        idx.setdefault(tuple(toks[i : i + n]), []).append(i)
    return idx


def _asr_tokens(words: list[Word]) -> tuple[list[str], np.ndarray]:
    """Transcript tokens, in time order, each with its word's start."""
    toks: list[str] = []
    times: list[float] = []
    for w in sorted(words, key=lambda w: w.start):
        for t in _tokens(w.text):
            toks.append(t)
            times.append(w.start)
    return toks, np.array(times, dtype=float)


def _head_anchors(cues: list[Line], a_toks: list[str], at: np.ndarray, predict, radius: float):
    """(subtitle start, transcript time) of each cue whose first words the transcript has within ``radius`` of the
    predicted media time."""
    from rapidfuzz import fuzz

    lx: list[float] = []
    ly: list[float] = []
    for c in cues:
        tk = _tokens(c.text)
        if not tk:
            continue
        kk = min(3, len(tk))
        if kk == 1 and len(tk[0]) < 4:
            continue
        head = " ".join(tk[:kk])
        p = predict(c.start)
        lo, hi = np.searchsorted(at, p - radius), np.searchsorted(at, p + radius)
        best, bj = 0.0, -1
        for jj in range(lo, min(hi, len(a_toks))):
            if a_toks[jj][:1] != tk[0][:1]:
                continue
            sc = fuzz.ratio(head, " ".join(a_toks[jj : jj + kk]))
            if sc > best:
                best, bj = sc, jj
        if bj >= 0 and best >= 80:
            lx.append(c.start)
            ly.append(float(at[bj]))
    return lx, ly


def _asr_score(cues: list[Line], words: list[Word], res: SyncResult) -> float:
    """Share of subtitle lines whose first words the transcript has within 0.5 s of where ``res`` puts them."""
    a_toks, at = _asr_tokens(words)
    n_lines = sum(1 for c in cues if _tokens(c.text))
    if not a_toks or not n_lines:
        return 0.0
    lx, ly = _head_anchors(cues, a_toks, at, res.apply, 1.5)
    n_in = sum(abs(y - res.apply(x)) < 0.5 for x, y in zip(lx, ly))
    return float(min(1.0, n_in / n_lines))


def _asr_sync(cues: list[Line], words: list[Word]) -> SyncResult | None:
    if sum(1 for w in words if _tokens(w.text)) < 10:
        return None
    a_toks, at = _asr_tokens(words)
    s_toks, st, _ = _sub_token_times(cues)
    if len(s_toks) < 10:
        return None

    # 1) anchors: rare n-grams present in both
    xs: list[float] = []
    ys: list[float] = []
    for n, min_len in ((3, 0), (2, 7), (1, 6)):
        gs, ga = _gram_index(s_toks, n), _gram_index(a_toks, n)
        for g, ps in gs.items():
            qa = ga.get(g)
            if not qa or len(ps) > 2 or len(qa) > 2 or sum(len(t) for t in g) < max(min_len, 6):
                continue
            for p in ps:
                for q in qa:
                    xs.append(float(st[p]))
                    ys.append(float(at[q]))
    if len(xs) < 3:
        return None
    x, y = np.array(xs), np.array(ys)
    rng = np.random.default_rng(0)
    if len(x) > 3000:
        keep = rng.choice(len(x), size=3000, replace=False)
        x, y = x[keep], y[keep]
    span = max(float(st.max() - st.min()), 1.0)

    # 2) RANSAC over (scale, offset)
    k = len(x)
    ha: list[np.ndarray] = []
    hb: list[np.ndarray] = []
    if k >= 2:
        i = rng.integers(0, k, 800)
        j = rng.integers(0, k, 800)
        dx = x[j] - x[i]
        ok = np.abs(dx) > max(10.0, 0.05 * span)
        a = (y[j] - y[i])[ok] / dx[ok]
        good = (a > 0.8) & (a < 1.25)
        ha.append(a[good])
        hb.append((y[i][ok] - a * x[i][ok])[good])
    pick = rng.choice(k, size=min(k, 300), replace=False)
    for r in [1.0] + [r for r, _ in FRAMERATE_RATIOS]:
        ha.append(np.full(len(pick), r))
        hb.append(y[pick] - r * x[pick])
    A, B = np.concatenate(ha), np.concatenate(hb)
    resid = np.abs(y[None, :] - (A[:, None] * x[None, :] + B[:, None]))
    counts = (resid < 1.0).sum(axis=1)
    h = int(np.argmax(counts))
    if counts[h] < 3:
        return None
    a, b = float(A[h]), float(B[h])
    inl = resid[h] < 1.0
    if inl.sum() >= 2 and np.ptp(x[inl]) > 10:
        a, b = np.polyfit(x[inl], y[inl], 1)

    # 3) line-level anchors: first words of each cue matched near the predicted time
    lx: list[float] = []
    ly: list[float] = []
    for _ in range(2):
        lx, ly = _head_anchors(cues, a_toks, at, lambda t, a=a, b=b: a * t + b, 1.5)
        if len(lx) < 3:
            return None
        a, b = _robust_line(np.array(lx), np.array(ly), a, b)
    X, Y = np.array(lx), np.array(ly)
    inliers = np.abs(Y - (a * X + b)) < 0.5
    a2 = _snap_scale(a, span)
    if a2 != a:
        a, b = a2, float(np.median(Y[inliers] - a2 * X[inliers]))
    n_lines = sum(1 for c in cues if _tokens(c.text))
    n_in = int(inliers.sum())
    if n_in < max(5, 0.1 * n_lines):
        return None
    return SyncResult(scale=float(a), offset=float(b), score=float(min(1.0, n_in / n_lines)), method="asr", n_anchors=n_in)


def _robust_line(x: np.ndarray, y: np.ndarray, a: float, b: float) -> tuple[float, float]:
    """Huber-weighted least squares of y = a x + b, started from (a, b); outliers beyond 1 s get no weight."""
    for _ in range(8):
        r = np.abs(y - (a * x + b))
        w = np.where(r < 0.15, 1.0, 0.15 / np.maximum(r, 1e-9))
        w[r > 1.0] = 0.0
        if w.sum() < 2:
            break
        if np.ptp(x[w > 0]) < 10:  # too short a span for a slope: offset only
            b = float(np.average(y - a * x, weights=w))
            continue
        W = np.sqrt(w)
        M = np.stack([x * W, W], axis=1)
        sol, *_ = np.linalg.lstsq(M, y * W, rcond=None)
        a, b = float(sol[0]), float(sol[1])
    return a, b


UNCOVERED_MARGIN = 0.5  # seconds: speech this close to a cue is that cue's
UNCOVERED_JOIN = 1.0  # seconds: pieces of uncovered speech this close are one stretch
UNCOVERED_MIN = 1.0  # seconds of speech a stretch without cues must hold to be transcribed


def uncovered_speech(regions: list[Region], lines: list[Line], *, margin: float = UNCOVERED_MARGIN,
                     join: float = UNCOVERED_JOIN, min_speech: float = UNCOVERED_MIN) -> list[tuple[float, float]]:
    """Stretches of speech (VAD regions) that no cue covers, after sync: a scene the subtitles' edit does not have,
    lines the subtitler left out. Each holds at least ``min_speech`` seconds of speech farther than ``margin``
    from every cue; pieces closer than ``join`` are one stretch."""
    cues = sorted((ln.start - margin, max(ln.end, ln.start) + margin) for ln in lines)
    pieces: list[tuple[float, float]] = []
    for r in sorted(regions, key=lambda r: r.start):
        cur = r.start
        for a, b in cues:
            if b <= cur or a >= r.end:
                continue
            if a > cur:
                pieces.append((cur, a))
            cur = max(cur, b)
            if cur >= r.end:
                break
        if cur < r.end:
            pieces.append((cur, r.end))
    out: list[tuple[float, float, float]] = []  # (start, end, speech held)
    for a, b in pieces:
        if out and a - out[-1][1] <= join:
            s, _, held = out[-1]
            out[-1] = (s, b, held + b - a)
        else:
            out.append((a, b, b - a))
    return [(round(s, 3), round(e, 3)) for s, e, held in out if held >= min_speech]


CROWDED_WORD = 0.15  # seconds a word takes at the least: a cue shorter than that for its words is mistimed
TURN_REACH = 2.0  # seconds after a crowded cue within which its second speaker's part may be spoken
TURN_MIN_SPEECH = 0.25  # seconds of speech no other line covers that can hold such a part


def place_crowded_turns(lines: list[Line], regions: list[Region], *, reach: float = TURN_REACH,
                        min_speech: float = TURN_MIN_SPEECH) -> tuple[list[Line], int]:
    """Lines (in time order) with the later parts of each dialogue-dash cue too short for its words (``Line.turn``
    after the first part; under ``CROWDED_WORD`` seconds a word) moved to the first speech after the cue that no
    other line covers, within ``reach`` seconds: the subtitler squeezed the cue between others and the second
    speaker answers after it. A part stays where no such speech is. Second: how many parts moved."""
    moved: dict[int, tuple[float, float]] = {}
    i = 0
    while i < len(lines):
        k = i + 1
        while k < len(lines) and lines[k].turn and not lines[i].turn:
            k += 1
        words = sum(len(ln.text.split()) for ln in lines[i:k])
        cue_end = max(ln.end for ln in lines[i:k])
        if k - i > 1 and cue_end - lines[i].start < CROWDED_WORD * words:
            others = [ln for n, ln in enumerate(lines) if not i < n < k]
            free = [(a, b) for a, b in uncovered_speech(regions, others, margin=0.05, join=0.1, min_speech=min_speech)
                    if cue_end <= a <= cue_end + reach]
            for n, (a, b) in zip(range(i + 1, k), free):
                moved[n] = (a, b)
        i = k
    if not moved:
        return lines, 0
    out = [replace(ln, start=moved[n][0], end=moved[n][1], words=[]) if n in moved else ln for n, ln in enumerate(lines)]
    return sorted(out, key=lambda ln: (ln.start, ln.end)), len(moved)
