"""Piecewise subtitle sync: sections of cues whose offset differs from the global fit (a cut scene, an ad break,
another edit), on top of the global scale.

After the global ``scale * t + offset`` fit, windows of consecutive cues are each cross-correlated with the speech
mask over the whole media; the offsets they prefer (beyond the global one) become candidates. Every cue gets a score
per candidate offset (speech covered − silence covered + an onset bonus, the global fit's objective), and a
segmented fit over cue order (dynamic programming, at least ``MIN_SECTION_CUES`` cues a section, ``SECTION_PENALTY``
per extra section) picks where the offset jumps. Each section's offset is then refined at 10 ms. A split is kept
only when every extra section clearly beats the global offset and its neighbours' offsets on its own cues, and does
not lie over speech that another section's cues already hold.

Pure numpy; the objective is passed in (``pipeline.text.sync`` owns it).
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np

MIN_SECTION_CUES = 5
SECTION_PENALTY = 3.0  # per-cue score units (1 = a cue on speech at its onset) an extra section must gain
SECTION_GAIN = 0.4  # a section's own offset must beat the global one by this much a cue on average,
SECTION_SHARE = 0.7  # ... on this share of its cues,
SECTION_T = 3.0  # ... with this t statistic (so one long cue on a missed VAD region cannot make a section)
_WINDOW = 12  # cues per candidate window
_STEP = 4
_MAX_WINDOWS = 400  # more cues than 400 × _STEP: windows spread further apart
_PEAKS = 8  # correlation peaks per window checked with the exact objective
_KEEP = 3  # ... of which the best few become candidates
_COARSE = 0.1  # s, resolution of the candidate search
_MIN_JUMP = 0.4  # s: smaller offset changes are left to the global fit
MAX_JUMP = 300.0  # s: a section's offset differs from the global one by at most this (an ad break, a cut scene)


class Objective(Protocol):
    """What ``pipeline.text.sync`` passes in: its speech objective."""

    def value(self, starts: np.ndarray, ends: np.ndarray) -> np.ndarray: ...

    def cum_at(self, x: np.ndarray) -> np.ndarray: ...


def per_cue(obj: Objective, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The objective of each cue on its own, per cue length: about 1 on speech with its onset, −0.8 on silence."""
    v = obj.value(starts[None, :], ends[None, :])
    return np.clip(v / (ends - starts + 0.5), -1.0, 1.0)


def totals(obj: Objective, S: np.ndarray, E: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Σ per-cue scores of these cues moved by each offset."""
    v = obj.value((S[:, None] + offsets[None, :])[None], (E[:, None] + offsets[None, :])[None])
    return np.clip(v / (E - S + 0.5)[:, None], -1.0, 1.0).sum(axis=0)


def segment(values: np.ndarray, penalty: float, min_len: int) -> list[tuple[int, int]]:
    """Best split of rows (cues, in order) into runs of ≥ ``min_len`` rows, each run taking one column (offset).

    Maximises Σ values − penalty × (runs − 1); returns (first row, column) per run. Segmented least squares as a
    Viterbi pass over states (column, run length capped at ``min_len``): O(n k min_len)."""
    n, k = values.shape
    if n < 2 * min_len or k == 1 or min_len < 2:
        return [(0, int(np.argmax(values.sum(axis=0))))]
    return _viterbi(values, penalty, min_len)


def _viterbi(values: np.ndarray, penalty: float, L: int) -> list[tuple[int, int]]:
    """State (column c, run length r + 1 capped at L); a new run starts from the best other column's full run."""
    n, k = values.shape
    score = np.full((k, L), -np.inf)
    score[:, 0] = values[0]
    ptr = np.zeros((n, k, L, 2), dtype=np.int32)  # (previous column, previous run state)
    ar = np.arange(k)
    for i in range(1, n):
        done = score[:, L - 1]
        order = np.argsort(done)[::-1]
        from_col = np.where(ar == order[0], order[1], order[0])
        new = np.empty_like(score)
        new[:, 0] = done[from_col] - penalty
        ptr[i, :, 0, 0], ptr[i, :, 0, 1] = from_col, L - 1
        for r in range(1, L - 1):
            new[:, r] = score[:, r - 1]
            ptr[i, :, r, 0], ptr[i, :, r, 1] = ar, r - 1
        stay = score[:, L - 1] >= score[:, L - 2]
        new[:, L - 1] = np.where(stay, score[:, L - 1], score[:, L - 2])
        ptr[i, :, L - 1, 0], ptr[i, :, L - 1, 1] = ar, np.where(stay, L - 1, L - 2)
        new += values[i][:, None]
        score = new
    runs: list[tuple[int, int]] = []
    c, r = int(np.argmax(score[:, L - 1])), L - 1
    for i in range(n - 1, -1, -1):
        if r == 0:
            runs.append((i, c))
        if i:
            c, r = int(ptr[i, c, r, 0]), int(ptr[i, c, r, 1])
    return runs[::-1]


def _candidates(obj: Objective, S: np.ndarray, E: np.ndarray, media_end: float) -> list[tuple[float, list[int]]]:
    """Offsets (relative to the global fit) that windows of cues prefer, with the windows' cue indexes."""
    n = len(S)
    rc = _COARSE
    nv = int(math.ceil(media_end / rc)) + 1
    edges = np.arange(nv + 1) * (rc / 0.01)
    vc = np.diff(obj.cum_at(edges)) / (rc / 0.01)  # mean ±1 speech mask per coarse bin
    step = max(_STEP, math.ceil(n / _MAX_WINDOWS))
    spans = [(w0, min(n, w0 + _WINDOW)) for w0 in range(0, max(1, n - _WINDOW + 1), step)]
    if spans[-1][1] < n:
        spans.append((max(0, n - _WINDOW), n))
    mmax = max(int(math.ceil((E[w1 - 1] - S[w0]) / rc)) + 2 for w0, w1 in spans)
    ext = np.concatenate([np.full(mmax, -1.0), vc, np.full(mmax, -1.0)])
    nfft = 1 << int(math.ceil(math.log2(len(ext) + mmax)))
    ext_f = np.fft.rfft(ext, nfft)
    found: list[tuple[float, int]] = []
    for wi, (w0, w1) in enumerate(spans):
        t0 = S[w0]
        diff = np.zeros(mmax + 1)
        np.add.at(diff, np.floor((S[w0:w1] - t0) / rc).astype(int), 1.0)
        np.add.at(diff, np.minimum(np.ceil((E[w0:w1] - t0) / rc).astype(int), mmax), -1.0)
        mask = np.minimum(np.cumsum(diff)[:mmax], 1.0)
        corr = np.fft.irfft(ext_f * np.conj(np.fft.rfft(mask, nfft)), nfft)[: len(ext) - mmax + 1]
        corr /= max(mask.sum(), 1.0)
        lo = max(0, int((t0 - MAX_JUMP) / rc) + mmax)
        hi = min(len(corr), int((t0 + MAX_JUMP) / rc) + mmax + 1)
        if hi <= lo:
            continue
        # the coarse mask cannot tell dense dialogue from the right place: the per-cue score picks among its peaks
        peaks = [lo + j for j in _peaks(corr[lo:hi], _PEAKS, int(round(1.0 / rc))) if corr[lo + j] >= 0.3]
        if not peaks:
            continue
        ds = np.array([(j - mmax) * rc - t0 for j in peaks])
        Sw, Ew = S[w0:w1], E[w0:w1]
        grid = ds[:, None] + np.linspace(-0.2, 0.2, 21)[None, :]
        vals = totals(obj, Sw, Ew, grid.ravel()).reshape(grid.shape)
        base = float(per_cue(obj, Sw, Ew).sum())
        # the best few peaks, not only the first: where the VAD missed lines a chance place can beat the right one,
        # but the right one comes back in window after window
        for p in np.argsort(vals.max(axis=1))[::-1][:_KEEP]:
            d = float(grid[p, int(np.argmax(vals[p]))])
            if abs(d) >= _MIN_JUMP and vals[p].max() - base >= 0.25 * (w1 - w0):
                found.append((d, wi))
    found.sort()
    groups: list[list[tuple[float, int]]] = []
    for d, wi in found:
        if groups and d - groups[-1][-1][0] <= 1.0:
            groups[-1].append((d, wi))
        else:
            groups.append([(d, wi)])
    groups.sort(key=lambda g: len({wi for _, wi in g}), reverse=True)  # offsets that many windows agree on first
    out = []
    for g in groups[:12]:
        idx = sorted({i for _, wi in g for i in range(*spans[wi])})
        out.append((float(np.median([d for d, _ in g])), idx))
    return out


def _peaks(x: np.ndarray, k: int, sep: int) -> list[int]:
    """Indexes of the ``k`` highest values of ``x`` at least ``sep`` apart."""
    out: list[int] = []
    top = np.argpartition(x, -min(len(x), 64 * k))[-64 * k:] if len(x) > 64 * k else np.arange(len(x))
    for j in top[np.argsort(x[top])[::-1]]:
        if all(abs(int(j) - o) >= sep for o in out):
            out.append(int(j))
            if len(out) >= k:
                break
    return out


def refine_offset(obj: Objective, S: np.ndarray, E: np.ndarray, d0: float, radius: float = 0.5) -> float:
    """Offset near ``d0`` (10 ms grid, then 2 ms) that maximises the objective of these cues."""
    d = d0
    for r, num in ((radius, int(round(2 * radius / 0.01)) + 1), (0.02, 21)):
        dv = d + np.linspace(-r, r, num)
        vals = obj.value(S[:, None] + dv[None, :], E[:, None] + dv[None, :])
        top = vals.max()
        d = float(dv[vals >= top - 1e-3 * max(1.0, abs(top))].mean())
    return d


def clearly_better(gain: np.ndarray) -> bool:
    """Per-cue score gains of a section's own offset over the global one: consistently and clearly positive."""
    n = len(gain)
    if n < MIN_SECTION_CUES or gain.sum() < SECTION_PENALTY:
        return False
    mean, sd = float(gain.mean()), float(gain.std(ddof=1))
    t = mean / max(sd / math.sqrt(n), 1e-9)
    return mean >= SECTION_GAIN and float(np.mean(gain > 0.05)) >= SECTION_SHARE and t >= SECTION_T


def find_sections(obj: Objective, S: np.ndarray, E: np.ndarray, media_end: float) -> list[tuple[int, float]] | None:
    """Sections of the cues (already mapped by the global fit, sorted by start) as (first cue, extra offset), or
    None when one offset fits best (the normal case)."""
    n = len(S)
    if n < 2 * MIN_SECTION_CUES:
        return None
    cands = _candidates(obj, S, E, media_end)
    if not cands:
        return None
    offsets = [0.0]
    for d, idx in cands:
        d = refine_offset(obj, S[idx], E[idx], d)
        if all(abs(d - o) >= _MIN_JUMP for o in offsets):
            offsets.append(d)
    if len(offsets) == 1:
        return None
    V = np.stack([per_cue(obj, S + d, E + d) for d in offsets], axis=1)
    runs = segment(V, SECTION_PENALTY, MIN_SECTION_CUES)
    if len(runs) < 2:
        return None
    bounds = [r[0] for r in runs] + [n]
    secs = [[i0, i1, refine_offset(obj, S[i0:i1], E[i0:i1], offsets[k], radius=0.3)]
            for (i0, k), i1 in zip(runs, bounds[1:])]
    for _ in range(2 * len(secs)):  # a section not clearly better than its neighbours' offsets joins the best one
        secs = _merge(secs)
        # islands over another section's speech first (they would spoil their neighbours' checks), small ones first
        size = lambda k: secs[k][1] - secs[k][0]  # noqa: E731
        weak = sorted((k for k in range(len(secs)) if _overlaps(S, E, secs, k)), key=size) or \
            sorted((k for k in range(len(secs)) if not _clear(obj, S, E, secs, k)), key=size)
        if not weak:
            break
        k = weak[0]
        i0, i1, _ = secs[k]
        alts = {0.0} | {secs[j][2] for j in (k - 1, k + 1) if 0 <= j < len(secs)}
        alts = {a for a in alts if abs(a - secs[k][2]) >= _MIN_JUMP}
        secs[k][2] = max(alts, key=lambda d: float(per_cue(obj, S[i0:i1] + d, E[i0:i1] + d).sum()))
    secs = _merge(secs)
    if any(_overlaps(S, E, secs, k) or not _clear(obj, S, E, secs, k) for k in range(len(secs))):
        return None  # still unsettled: one offset
    return [(i0, d) for i0, _, d in secs] if len(secs) > 1 else None


def _merge(secs: list[list]) -> list[list]:
    """Adjacent sections with the same offset as one."""
    out: list[list] = []
    for i0, i1, d in secs:
        if out and abs(out[-1][2] - d) < _MIN_JUMP:
            out[-1][1] = i1
        else:
            out.append([i0, i1, d])
    return out


def _clear(obj: Objective, S: np.ndarray, E: np.ndarray, secs: list[list], k: int) -> bool:
    """Section ``k`` fits its cues clearly better than the global offset and its neighbours' offsets would."""
    i0, i1, d = secs[k]
    if abs(d) < _MIN_JUMP:  # the global offset needs no proof
        return True
    alts = {0.0} | {secs[j][2] for j in (k - 1, k + 1) if 0 <= j < len(secs)}
    own = per_cue(obj, S[i0:i1] + d, E[i0:i1] + d)
    return all(clearly_better(own - per_cue(obj, S[i0:i1] + a, E[i0:i1] + a)) for a in alts if abs(a - d) >= _MIN_JUMP)


def _overlaps(S: np.ndarray, E: np.ndarray, secs: list[list], k: int) -> bool:
    """Section ``k`` lies over speech that another section's cues hold (more than half of its span: an island
    inside another part of the media)."""
    i0, i1, d = secs[k]
    if abs(d) < _MIN_JUMP:
        return False
    lo, hi = S[i0] + d, E[i0:i1].max() + d
    for j, (j0, j1, dj) in enumerate(secs):
        if j != k and min(hi, E[j0:j1].max() + dj) - max(lo, S[j0] + dj) > 0.5 * (hi - lo):
            return True
    return False
