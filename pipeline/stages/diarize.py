"""Speaker diarization: who speaks when, with a mean voice embedding per speaker.

Backends:
- ``resemblyzer`` (offline): speech regions (VAD stage) → overlapping windows → Resemblyzer speaker embeddings →
  clustering with an automatic speaker count → frame-level re-segmentation against the speaker centroids →
  smoothed turns. Everything it needs ships in PyPI wheels.
- ``pyannote`` (best): pyannote.audio's pretrained pipeline; needs the user's Hugging Face token (gated model).

Labels are ``SPEAKER_00``, ``SPEAKER_01``… in order of first appearance.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import BackendUnavailableError, BadInputError, ModelMissingError
from ..hub import hub_repo_dir
from ..progress import CancelToken, ProgressCallback, no_progress
from ..types import Diarization, Region, Turn
from .base import Availability, ModelSpec, StageBackend, register

RATE = 16000
FRAME = 0.01  # mel frame hop of the encoder, seconds
MAX_SPEAKERS = 8  # the backends' default upper bound of the speaker count (a meeting, a short clip)
MOST_SPEAKERS = 20  # the bound for long media (pyannote itself sets none)
SPEECH_PER_SPEAKER = 30.0  # seconds of speech per voice the bound allows above MAX_SPEAKERS


class DiarizeBackend(StageBackend):
    """Base for diarization backends."""

    stage = "diarize"

    def diarize(
        self,
        audio: np.ndarray,
        rate: int,
        *,
        regions: list[Region] | None = None,
        num_speakers: int | None = None,
        min_speakers: int = 1,
        max_speakers: int = MAX_SPEAKERS,
        progress: ProgressCallback = no_progress,
        cancel: CancelToken | None = None,
    ) -> Diarization:
        """Sorted turns and per-speaker mean (unit, Resemblyzer-space) embeddings of float audio at ``rate`` Hz.

        ``regions`` are speech regions (the VAD stage's); without them the backend runs VAD itself. The offline
        backend's turns never overlap; pyannote's may (two people talking at once).
        """
        raise NotImplementedError


def _check_counts(num_speakers, min_speakers, max_speakers) -> tuple[int, int]:
    if num_speakers is not None:
        if num_speakers < 1:
            raise BadInputError(f"num_speakers must be >= 1 (got {num_speakers})")
        return num_speakers, num_speakers
    lo, hi = max(1, int(min_speakers or 1)), int(max_speakers or MAX_SPEAKERS)
    if hi < lo:
        raise BadInputError(f"max_speakers ({hi}) is below min_speakers ({lo})")
    return lo, hi


def relabel(turns: list[Turn], embeddings: dict[str, np.ndarray] | None = None) -> tuple[list[Turn], dict[str, list[float]]]:
    """Rename speakers SPEAKER_00.. by first appearance; sort turns; carry embeddings over."""
    turns = sorted(turns, key=lambda t: (t.start, t.end))
    names: dict[str, str] = {}
    for t in turns:
        names.setdefault(t.speaker, f"SPEAKER_{len(names):02d}")
    out = [Turn(round(t.start, 3), round(t.end, 3), names[t.speaker]) for t in turns]
    embs = {names[k]: [float(x) for x in v] for k, v in (embeddings or {}).items() if k in names}
    return out, embs


# --------------------------------------------------------------------------------------------------------------
# offline backend


@dataclass
class ResemblyzerParams:
    """Tuning of the offline diarizer.

    Defaults chosen by DER (pyannote.metrics, collar 0, overlap scored, inside the UEM) over the ten 30 s AMI
    excerpts + pyannote's sample.wav: spectral/eigengap beat every single AHC threshold (AMI's far-field
    voices vary more within a speaker than the sample's do between speakers); 1.5 s windows beat 1 s and 2-3 s;
    folding clusters under 3 s of speech helped most. Oracle-VAD DER 28.0 % overall, system VAD 32.5 %.
    """

    window: float = 1.5  # seconds of audio per embedding
    hop: float = 0.25  # seconds between window starts
    method: str = "spectral"  # "spectral" (eigengap picks the count) or "ahc" (average linkage, cosine threshold)
    threshold: float = 0.3  # AHC cosine distance at which clusters stop merging (method "ahc")
    merge_threshold: float | None = None  # then merge clusters whose centroids are more cosine-similar than this
    min_cluster_seconds: float = 3.0  # smaller clusters are folded into their nearest neighbour
    refine_iters: int = 5  # k-means style centroid refinement passes
    smooth: float = 0.5  # median filter over frame labels, seconds
    min_turn: float = 0.3  # shorter label runs are absorbed by their neighbours
    overlap_margin: float | None = None  # also give a frame to the runner-up speaker within this score margin
    overlap_count: float = 1.5  # with speaker counts (pipeline.stages.overlap): frames counting this many get two
    overlap_counts: bool = False  # diarize() runs the bundled segmentation model for those counts (≈1x real time
    # on 2 cores, so off by default; AMI excerpts with ahc 0.35: DER mean 39.9 % -> 38.2 %, pooled 34.3 -> 31.0 %)
    per_window_gain: bool = False  # normalise each window to the encoder's training loudness
    max_cluster_windows: int = 2000  # beyond this, cluster a subsample and assign the rest


def _windows_for(regions: list[Region], duration: float, win: float, hop: float) -> list[float]:
    """Window start times covering every speech region (short regions get one centred window)."""
    starts: list[float] = []
    last_start = max(0.0, duration - win)
    for r in regions:
        if r.duration >= win:
            s = np.arange(r.start, r.end - win + 1e-6, hop).tolist()
            if r.end - win - s[-1] > hop / 2:
                s.append(r.end - win)
            starts.extend(s)
        elif r.duration > 0.1:
            c = (r.start + r.end) / 2
            starts.append(min(max(0.0, c - win / 2), last_start))
    return sorted(set(round(s, 2) for s in starts))


def _ahc(x: np.ndarray, threshold: float, n: int | None) -> np.ndarray:
    from sklearn.cluster import AgglomerativeClustering

    if len(x) == 1:
        return np.zeros(1, dtype=int)
    if n is not None:
        m = AgglomerativeClustering(n_clusters=min(n, len(x)), metric="cosine", linkage="average")
    else:
        m = AgglomerativeClustering(n_clusters=None, metric="cosine", linkage="average", distance_threshold=threshold)
    return m.fit_predict(x)


def _spectral(x: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Spectral clustering on a row-pruned cosine affinity, k chosen by the normalised eigengap (NME-SC)."""
    from scipy.linalg import eigh
    from sklearn.cluster import KMeans

    n = len(x)
    if n < 3:
        return np.zeros(n, dtype=int)
    sim = np.clip(x @ x.T, 0, 1)
    hi = min(hi, n - 1)
    best = None
    for p in sorted({max(2, int(n * f)) for f in (0.05, 0.1, 0.15, 0.2, 0.3, 0.4)}):
        a = sim.copy()
        idx = np.argsort(-a, axis=1)[:, p:]
        np.put_along_axis(a, idx, 0.0, axis=1)
        a = (a + a.T) / 2
        np.fill_diagonal(a, 0)
        d = a.sum(1)
        lap = np.diag(d) - a
        vals, vecs = eigh(lap)
        gaps = np.diff(vals[: hi + 1])
        k = int(np.argmax(gaps[lo - 1 : hi]) + lo) if hi >= lo else lo
        g = float(gaps[k - 1]) / max(float(vals[-1]), 1e-9)
        ratio = p / n / max(g, 1e-9)
        if best is None or ratio < best[0]:
            best = (ratio, k, vecs[:, :k])
    _, k, emb = best
    if k == 1:
        return np.zeros(n, dtype=int)
    return KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(emb)


def _centroids(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    cs = []
    for c in range(labels.max() + 1):
        v = x[labels == c].mean(axis=0)
        cs.append(v / max(np.linalg.norm(v), 1e-9))
    return np.stack(cs)


def _compact(labels: np.ndarray) -> np.ndarray:
    _, inv = np.unique(labels, return_inverse=True)
    return inv


def _median_filter_labels(labels: np.ndarray, width: int) -> np.ndarray:
    """Majority vote over a sliding window (a median filter for categorical labels)."""
    if width <= 1 or len(labels) < 3:
        return labels
    k = int(labels.max()) + 1
    onehot = np.eye(k, dtype=np.float32)[labels]
    c = np.cumsum(np.vstack([np.zeros((1, k), np.float32), onehot]), axis=0)
    h = width // 2
    lo = np.clip(np.arange(len(labels)) - h, 0, len(labels))
    hi = np.clip(np.arange(len(labels)) + h + 1, 0, len(labels))
    return np.argmax(c[hi] - c[lo], axis=1)


def _runs(labels: np.ndarray) -> list[tuple[int, int, int]]:
    """(start, end, label) runs of equal labels (end exclusive)."""
    out = []
    i = 0
    n = len(labels)
    while i < n:
        j = i
        while j < n and labels[j] == labels[i]:
            j += 1
        out.append((i, j, int(labels[i])))
        i = j
    return out


def _absorb_short(labels: np.ndarray, min_len: int) -> np.ndarray:
    """Give label runs shorter than min_len to the longer neighbouring run."""
    labels = labels.copy()
    changed = True
    while changed:
        changed = False
        runs = _runs(labels)
        if len(runs) < 2:
            break
        order = sorted(range(len(runs)), key=lambda i: runs[i][1] - runs[i][0])
        for i in order:
            s, e, _ = runs[i]
            if e - s >= min_len:
                break
            left = runs[i - 1] if i > 0 else None
            right = runs[i + 1] if i + 1 < len(runs) else None
            nb = max((r for r in (left, right) if r), key=lambda r: r[1] - r[0])
            labels[s:e] = nb[2]
            changed = True
            break
    return labels


class ResemblyzerCore:
    """The offline algorithm, separate from the backend class so tests and benches can vary its parameters."""

    def __init__(self, params: ResemblyzerParams | None = None):
        self.p = params or ResemblyzerParams()

    def embed(self, audio16k: np.ndarray, regions: list[Region], *, progress=no_progress, cancel=None):
        """(window start times, unit embeddings) over the speech regions."""
        from . import voiceprint as vp

        starts = self.window_starts(regions, len(audio16k) / RATE)
        if not len(starts):
            return np.zeros(0), np.zeros((0, 256), np.float32)
        return starts, self.embed_span(vp.normalize_volume(audio16k), 0, starts, progress=progress, cancel=cancel)

    def window_starts(self, regions: list[Region], duration: float) -> np.ndarray:
        """Start times (seconds) of the embedding windows covering the speech regions."""
        return np.asarray(_windows_for(regions, duration, self.p.window, self.p.hop), dtype=np.float64)

    def embed_span(self, audio16k: np.ndarray, first_sample: int, starts, *, progress=no_progress,
                   cancel=None) -> np.ndarray:
        """Unit embeddings of the windows starting at ``starts`` (seconds in the file), computed from a stretch of
        the file's loudness-normalised 16 kHz audio that begins at sample ``first_sample`` (a multiple of the
        160-sample mel hop). A stretch with a few frames of context around its windows gives the same embeddings
        as the whole file does, so long media can be embedded piece by piece and clustered once."""
        from . import voiceprint as vp

        p = self.p
        hop = int(RATE * FRAME)
        if first_sample % hop:
            raise ValueError(f"first_sample must be a multiple of {hop}")
        wf = int(round(p.window / FRAME))
        mel = vp.mel_frames(audio16k)
        offset = first_sample // hop
        fstarts = [int(round(s / FRAME)) - offset for s in starts]
        if p.per_window_gain:
            # window loudness from mean mel power, scaled to the stretch's overall level: quiet windows get louder
            total = mel.sum(axis=1)
            ref = float(np.mean(total[total > 0])) if np.any(total > 0) else 1.0
            mel = mel.copy()
            gains = []
            for s in fstarts:
                w = float(total[s : s + wf].mean()) if s < len(total) else 0.0
                gains.append(np.clip(ref / w, 0.1, 10.0) if w > 0 else 1.0)
            feats = np.stack([np.pad(mel[s : s + wf], ((0, max(0, s + wf - len(mel))), (0, 0))) * g
                              for s, g in zip(fstarts, gains)]).astype(np.float32)
            return self._encode_batches(feats, progress=progress, cancel=cancel)
        return vp.embed_windows(mel, fstarts, wf, cancel=cancel, progress=progress)

    @staticmethod
    def _encode_batches(feats: np.ndarray, *, progress, cancel, batch: int = 32) -> np.ndarray:
        import torch

        from . import voiceprint as vp

        enc = vp.get_encoder()
        out = np.zeros((len(feats), 256), np.float32)
        with torch.inference_mode():
            for b in range(0, len(feats), batch):
                if cancel is not None:
                    cancel.check()
                out[b : b + batch] = enc(torch.from_numpy(feats[b : b + batch])).numpy()
                progress(min(1.0, (b + batch) / len(feats)), "embedding voices")
        return out

    def cluster(self, x: np.ndarray, lo: int, hi: int, fixed: int | None) -> np.ndarray:
        """Window labels 0..k-1 with lo <= k <= hi (or k == fixed)."""
        p = self.p
        n = len(x)
        if n == 0:
            return np.zeros(0, dtype=int)
        if n == 1:
            return np.zeros(1, dtype=int)
        sub = np.arange(n)
        if n > p.max_cluster_windows:
            sub = np.linspace(0, n - 1, p.max_cluster_windows).astype(int)
        xs = x[sub]
        if p.method == "spectral" and fixed is None:
            lab = _spectral(xs, lo, hi)
        else:
            lab = _ahc(xs, p.threshold, fixed)
        cents = _centroids(xs, _compact(lab))
        labels = np.argmax(x @ cents.T, axis=1)
        # fold clusters holding too little speech into their nearest neighbour, then enforce the count bounds
        min_windows = max(1, int(round(p.min_cluster_seconds / p.hop)))
        labels = self._fold_small(x, labels, min_windows, keep_at_least=lo)
        if p.merge_threshold is not None and fixed is None:
            labels = self._merge_close(x, labels, p.merge_threshold, keep_at_least=lo)
        k = labels.max() + 1
        if k > hi:
            labels = _compact(_ahc(_centroids(x, labels), 0, hi)[labels])
        elif k < lo and n >= lo:
            labels = _ahc(x, 0, lo)
        for _ in range(p.refine_iters):
            cents = _centroids(x, _compact(labels))
            new = np.argmax(x @ cents.T, axis=1)
            if np.array_equal(new, labels):
                break
            labels = _compact(new)
        return _compact(labels)

    @staticmethod
    def _fold_small(x, labels, min_windows, keep_at_least):
        labels = _compact(labels)
        while labels.max() + 1 > keep_at_least:
            counts = np.bincount(labels)
            small = int(np.argmin(counts))
            if counts[small] >= min_windows:
                break
            cents = _centroids(x, labels)
            sims = cents[small] @ cents.T
            sims[small] = -np.inf
            labels = _compact(np.where(labels == small, int(np.argmax(sims)), labels))
        return labels

    @staticmethod
    def _merge_close(x, labels, threshold, keep_at_least):
        """Merge the two clusters with the most similar centroids while that similarity exceeds threshold."""
        labels = _compact(labels)
        while labels.max() + 1 > keep_at_least:
            cents = _centroids(x, labels)
            sims = cents @ cents.T
            np.fill_diagonal(sims, -np.inf)
            i, j = np.unravel_index(int(np.argmax(sims)), sims.shape)
            if sims[i, j] < threshold:
                break
            labels = _compact(np.where(labels == j, i, labels))
        return labels

    def segment(self, duration: float, regions: list[Region], starts: np.ndarray, x: np.ndarray,
                labels: np.ndarray, counts: np.ndarray | None = None) -> tuple[list[Turn], dict[str, np.ndarray]]:
        """Frame-level re-segmentation: every 10 ms of speech goes to the centroid its covering windows favour.

        ``counts`` (speakers talking per 10 ms frame, pipeline.stages.overlap) gives frames where two or more talk
        a second turn, for the runner-up centroid."""
        p = self.p
        k = int(labels.max()) + 1
        cents = _centroids(x, labels)
        scores = x @ cents.T  # (windows, k)
        nf = int(np.ceil(duration / FRAME)) + 1
        wf = int(round(p.window / FRAME))
        # triangular weights: a window speaks most for its middle
        tri = 1.0 - np.abs(np.linspace(-1, 1, wf)) * 0.9
        w0s = np.array([int(round(s / FRAME)) for s in starts], dtype=np.int64)
        order = np.argsort(w0s, kind="stable")
        sorted_w0 = w0s[order]
        turns: list[Turn] = []
        smooth = max(1, int(round(p.smooth / FRAME)) | 1)
        min_len = max(1, int(round(p.min_turn / FRAME)))
        for r in regions:
            f0, f1 = int(round(r.start / FRAME)), min(nf, int(round(r.end / FRAME)))
            if f1 <= f0:
                continue
            # the frames' window votes, summed over the windows touching this region only (memory grows with the
            # region, not the file)
            seg_acc = np.zeros((f1 - f0, k), np.float32)
            seg_cnt = np.zeros(f1 - f0, np.float32)
            first, last = np.searchsorted(sorted_w0, f0 - wf + 1), np.searchsorted(sorted_w0, f1)
            for j in order[first:last]:
                w0 = int(w0s[j])
                a, b = max(w0, f0), min(w0 + wf, nf, f1)
                if b > a:
                    seg_acc[a - f0 : b - f0] += tri[a - w0 : b - w0, None] * scores[j][None, :]
                    seg_cnt[a - f0 : b - f0] += tri[a - w0 : b - w0]
            covered = seg_cnt > 0
            if not covered.any():
                # a region no window touched: nearest window in time decides
                mid = (r.start + r.end) / 2
                lab = np.full(f1 - f0, int(labels[int(np.argmin(np.abs(starts + p.window / 2 - mid)))]))
            else:
                lab = np.argmax(seg_acc, axis=1)
                if not covered.all():  # fill uncovered frames from the nearest covered frame
                    idx = np.where(covered)[0]
                    near = idx[np.clip(np.searchsorted(idx, np.arange(f1 - f0)), 0, len(idx) - 1)]
                    lab = lab[near]
            lab = _median_filter_labels(lab, smooth)
            lab = _absorb_short(lab, min_len)
            for a, b, c in _runs(lab):
                turns.append(Turn(r.start + a * FRAME, min(r.end, r.start + b * FRAME), str(c)))
            if (p.overlap_margin is not None or counts is not None) and k > 1 and covered.any():
                mean = seg_acc / np.maximum(seg_cnt, 1e-6)[:, None]
                srt = np.sort(mean, axis=1)
                order2 = np.argsort(mean, axis=1)
                second = np.where(order2[:, -1] == lab, order2[:, -2], order2[:, -1])
                if counts is not None:
                    c = np.zeros(f1 - f0)
                    m = min(len(counts), f1) - f0
                    if m > 0:
                        c[:m] = counts[f0 : f0 + m]
                    flag = covered & (c >= p.overlap_count) & (second != lab)
                else:
                    flag = covered & (srt[:, -1] - srt[:, -2] < p.overlap_margin) & (second != lab)
                flag = _median_filter_labels(flag.astype(int), smooth).astype(bool)
                for a, b, c in _runs(np.where(flag, second, -1)):
                    if c >= 0 and b - a >= min_len:
                        turns.append(Turn(r.start + a * FRAME, min(r.end, r.start + b * FRAME), str(c)))
        embs = {str(c): cents[c] for c in range(k)}
        return turns, embs

    def run(self, audio16k: np.ndarray, regions: list[Region], *, lo: int, hi: int, fixed: int | None,
            progress: ProgressCallback = no_progress, cancel: CancelToken | None = None):
        duration = len(audio16k) / RATE
        starts, x = self.embed(audio16k, regions, progress=lambda f, m="": progress(f * 0.9, m), cancel=cancel)
        return self.cluster_segment(duration, regions, starts, x, lo=lo, hi=hi, fixed=fixed, progress=progress,
                                    cancel=cancel)

    def cluster_segment(self, duration: float, regions: list[Region], starts: np.ndarray, x: np.ndarray, *, lo: int,
                        hi: int, fixed: int | None, progress: ProgressCallback = no_progress,
                        cancel: CancelToken | None = None, counts: np.ndarray | None = None):
        """Turns and speaker embeddings from every window's embedding at once (the whole file's view)."""
        starts, x = np.asarray(starts), np.asarray(x)
        if len(x) == 0:
            return [], {}
        ok = np.isfinite(x).all(axis=1) & (np.abs(x).sum(axis=1) > 0)  # silent windows embed to nothing
        starts, x = starts[ok], x[ok]
        if len(x) == 0:
            return [], {}
        if cancel is not None:
            cancel.check()
        progress(0.9, "grouping voices")
        labels = self.cluster(x, lo, hi, fixed)
        if cancel is not None:
            cancel.check()
        turns, embs = self.segment(duration, regions, starts, x, labels, counts)
        # the published speaker embedding: mean of the windows finally attributed to that speaker
        final = {}
        for c in {t.speaker for t in turns}:
            ci = int(c)
            m = labels == ci
            v = x[m].mean(axis=0) if m.any() else embs[c]
            final[c] = v / max(np.linalg.norm(v), 1e-9)
        return turns, final


# VAD settings for when the caller gives no regions: a lower Silero threshold and wider padding than the VAD
# stage's defaults catch far-field meeting speech (AMI: detection error 9.8 % vs 18 % at threshold 0.5, pad 0.05).
VAD_THRESHOLD = 0.3
VAD_PAD = 0.25


def speech_regions(audio16k: np.ndarray, *, progress=no_progress, cancel=None) -> list[Region]:
    """Speech regions from the best available VAD backend (pipeline.stages.vad)."""
    from .base import get_backend

    vad = get_backend("vad", threshold=VAD_THRESHOLD)
    return vad.speech_regions(audio16k, RATE, pad=VAD_PAD, progress=progress, cancel=cancel)


@register
class ResemblyzerDiarizer(DiarizeBackend):
    """Offline diarizer built on Resemblyzer speaker embeddings (see module docstring)."""

    name = "resemblyzer"
    offline = True
    quality = 5
    description = "Resemblyzer embeddings + clustering with automatic speaker count (offline, no account)"
    requires = ("resemblyzer", "sklearn", "torch")
    install_hint = 'pip install "voice-weaver[offline]"'

    def __init__(self, threads: int = 2, **options) -> None:
        super().__init__(threads=threads, **options)
        self.threads = int(threads)
        self.params = _params(ResemblyzerParams, options)

    def diarize(self, audio, rate, *, regions=None, num_speakers=None, min_speakers=1, max_speakers=MAX_SPEAKERS,
                progress=no_progress, cancel=None) -> Diarization:
        from . import voiceprint as vp

        _check_counts(num_speakers, min_speakers, max_speakers)
        a = vp.prepare(audio, rate)
        duration = len(a) / RATE
        with self._threads():
            if regions is None:
                progress(0.0, "finding speech")
                regions = speech_regions(a, progress=lambda f, m="": progress(0.1 * f, m), cancel=cancel)
                base = 0.1
            else:
                base = 0.0
            regions = clip_regions(regions, duration)
            core = ResemblyzerCore(self.params)
            starts, x = core.embed(a, regions, progress=lambda f, m="": progress(base + (1 - base) * 0.9 * f, m),
                                   cancel=cancel)
            counts = None
            if self.params.overlap_counts:
                from . import overlap

                if overlap.available():
                    progress(base + (1 - base) * 0.9, "finding overlapped speech")
                    counts = overlap.speaker_counts(a, cancel=cancel)
        return self.diarize_embedded(duration, regions, starts, x, num_speakers=num_speakers, min_speakers=min_speakers,
                                     max_speakers=max_speakers,
                                     progress=lambda f, m="": progress(base + (1 - base) * f, m), cancel=cancel,
                                     counts=counts)

    # the same algorithm in pieces, for media too long to hold whole: window_starts → embed_span per stretch of
    # audio → diarize_embedded once over every window (pipeline.workflows.analysis does this)
    def window_starts(self, regions: list[Region], duration: float) -> np.ndarray:
        """Start times of the embedding windows (seconds) over the (clipped, sorted) speech regions."""
        return ResemblyzerCore(self.params).window_starts(regions, duration)

    def embed_span(self, audio16k: np.ndarray, first_sample: int, starts, *, progress=no_progress,
                   cancel=None) -> np.ndarray:
        """Embeddings of windows ``starts`` from loudness-normalised audio beginning at ``first_sample``."""
        with self._threads():
            return ResemblyzerCore(self.params).embed_span(audio16k, first_sample, starts, progress=progress,
                                                           cancel=cancel)

    def diarize_embedded(self, duration: float, regions: list[Region], starts, x, *, num_speakers=None,
                         min_speakers=1, max_speakers=MAX_SPEAKERS, progress=no_progress, cancel=None,
                         counts: np.ndarray | None = None) -> Diarization:
        """Cluster every window's embedding and re-segment the regions: the diarization of the whole file."""
        lo, hi = _check_counts(num_speakers, min_speakers, max_speakers)
        with self._threads():
            turns, embs = ResemblyzerCore(self.params).cluster_segment(
                duration, regions, starts, x, lo=lo, hi=hi, fixed=num_speakers, progress=progress, cancel=cancel,
                counts=counts)
        turns, out = relabel(turns, embs)
        progress(1.0, f"{len({t.speaker for t in turns})} speakers")
        return Diarization(turns=turns, embeddings=out, backend=self.name)

    def _threads(self):
        return _torch_threads(self.threads)


def _params(kind, options: dict):
    """A tuning dataclass from the backend options that name its fields (the rest are the base class's)."""
    return kind(**{k: v for k, v in options.items() if k in kind.__dataclass_fields__})


@contextlib.contextmanager
def _torch_threads(n: int):
    """Run torch with ``n`` threads inside the block."""
    import torch

    prev = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(prev)


@register
class SegmentationDiarizer(DiarizeBackend):
    """Overlap-aware offline diarizer: PyanNet local speakers + Resemblyzer + pyannote clustering
    (pipeline.stages.local_speakers). Better on real meeting speech than ``resemblyzer``, at the cost of a
    segmentation pass; chosen by name (settings ``backends.diarize``), not by default."""

    name = "segmentation"
    offline = True
    quality = 4  # below "resemblyzer": the chain's default stays the faster backend
    description = ("pyannote-style local speakers from the segmentation model in the whisperX wheel + Resemblyzer "
                   "(offline, overlap-aware, ≈1x real time slower)")
    requires = ("resemblyzer", "torch")
    install_hint = 'pip install "voice-weaver[offline,pyannote]" whisperx'

    def __init__(self, threads: int = 2, **options) -> None:
        from .local_speakers import LocalSpeakerParams

        super().__init__(threads=threads, **options)
        self.threads = int(threads)
        self.params = _params(LocalSpeakerParams, options)

    @classmethod
    def availability(cls) -> Availability:
        from . import overlap

        av = super().availability()
        if av.ok and not overlap.available():
            return Availability(False, "pyannote.audio or the segmentation model in the whisperX wheel is missing",
                                cls.install_hint)
        return av

    def diarize(self, audio, rate, *, regions=None, num_speakers=None, min_speakers=1, max_speakers=MAX_SPEAKERS,
                progress=no_progress, cancel=None) -> Diarization:
        """``regions`` are not needed: the segmentation model finds the speech itself."""
        from . import local_speakers
        from . import voiceprint as vp

        lo, hi = _check_counts(num_speakers, min_speakers, max_speakers)
        a = vp.prepare(audio, rate)
        with _torch_threads(self.threads):
            raw, embs = local_speakers.diarize(a, self.params, lo=lo, hi=hi, fixed=num_speakers, progress=progress,
                                               cancel=cancel)
        turns, out = relabel([Turn(s, e, lab) for s, e, lab in raw], embs)
        progress(1.0, f"{len({t.speaker for t in turns})} speakers")
        return Diarization(turns=turns, embeddings=out, backend=self.name)


def max_speakers_for(regions: list[Region]) -> int:
    """The speaker-count bound for media with these speech regions: MAX_SPEAKERS, raised by one per
    SPEECH_PER_SPEAKER seconds of speech up to MOST_SPEAKERS. A TV episode has 10-15 voices, more than a fixed 8
    allows (pyannote's pipeline, which needs no bound, was held to 8 too). A minute of a meeting keeps 8: a wider
    range lets the eigengap pick spurious splits there (AMI pooled DER 34 -> 63 % at 20)."""
    speech = sum(max(0.0, r.end - r.start) for r in regions)
    return int(min(MOST_SPEAKERS, max(MAX_SPEAKERS, speech // SPEECH_PER_SPEAKER)))


def clip_regions(regions: list[Region], duration: float) -> list[Region]:
    """Regions inside [0, duration], non-empty, sorted by start."""
    return sorted((Region(max(0.0, r.start), min(duration, r.end)) for r in regions if r.end > r.start),
                  key=lambda r: r.start)


# --------------------------------------------------------------------------------------------------------------
# pyannote.audio backend

PYANNOTE_MODEL = "pyannote/speaker-diarization-community-1"


@register
class PyannoteDiarizer(DiarizeBackend):
    """pyannote.audio's pretrained pipeline (gated on Hugging Face: needs HF_TOKEN and accepted conditions)."""

    name = "pyannote"
    offline = False
    quality = 10
    description = "pyannote.audio speaker-diarization-community-1 (best; needs a Hugging Face token)"
    requires = ("pyannote.audio", "torchaudio", "torch")
    install_hint = 'pip install "voice-weaver[pyannote]"'

    def __init__(self, token: str | None = None, model: str | None = None, pipeline=None, **options) -> None:
        super().__init__(token=token, model=model, **options)
        self.token = token or os.environ.get("HF_TOKEN") or os.environ.get("HUGGINGFACE_TOKEN")
        self.model = model or os.environ.get("WEAVER_PYANNOTE_MODEL") or PYANNOTE_MODEL
        self._pipeline = pipeline

    @classmethod
    def token_message(cls, model: str = PYANNOTE_MODEL) -> str:
        return (f"set HF_TOKEN to a Hugging Face access token (https://hf.co/settings/tokens) and accept the model's "
                f"conditions at https://hf.co/{model}")

    @staticmethod
    def is_local(model: str) -> bool:
        """A pipeline folder (config.yaml + model subfolders) or config.yaml on disk rather than a hub id."""
        return Path(model).expanduser().exists()

    @classmethod
    def models(cls) -> list[ModelSpec]:
        local = os.environ.get("WEAVER_PYANNOTE_MODEL")
        if local and cls.is_local(local):
            return [ModelSpec(name=local, path=local, size_mb=0.0, fetch_command="", present=True)]
        path = hub_repo_dir(PYANNOTE_MODEL)
        return [ModelSpec(
            name=PYANNOTE_MODEL, path=str(path), size_mb=32.0,
            fetch_command=(f"HF_TOKEN=hf_... python -c \"from pyannote.audio import Pipeline; "
                           f"Pipeline.from_pretrained('{PYANNOTE_MODEL}', token='hf_...')\""),
            present=path.is_dir())]

    @classmethod
    def availability(cls) -> Availability:
        import importlib.util

        for mod in cls.requires:
            try:
                found = importlib.util.find_spec(mod) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                return Availability(False, f"python package '{mod}' is not installed", cls.install_hint)
        cached = cls.models()[0].present
        if not (os.environ.get("HF_TOKEN") or os.environ.get("HUGGINGFACE_TOKEN")) and not cached:
            return Availability(False, "no Hugging Face token for the gated pyannote model", cls.token_message())
        return Availability(True)

    def require(self) -> None:
        av = self.availability()
        if not av.ok and not ((self.token or self.is_local(self.model)) and "token" in av.reason):
            raise BackendUnavailableError(f"diarize backend 'pyannote' unavailable: {av.reason}; {av.fix}")

    def load(self):
        """Build the pretrained pipeline (downloads on first use with the token; cached afterwards)."""
        if self._pipeline is not None:
            return self._pipeline
        os.environ["PYANNOTE_METRICS_ENABLED"] = "false"  # no telemetry (pyannote.audio 4 defaults it on)
        try:
            with warnings.catch_warnings():  # torchcodec cannot load beside CPU torch; audio is passed in memory
                warnings.filterwarnings("ignore", message=r"(?s).*torchcodec")
                from pyannote.audio import Pipeline
        except (ImportError, OSError) as e:  # pyannote missing, or torchaudio broken beside this torch build
            raise BackendUnavailableError(
                f"pyannote.audio cannot be imported ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                f"install it with: {self.install_hint} (setup runs scripts/torchaudio_cpu.py for CPU torch)") from None
        local = self.is_local(self.model)
        if not local and not self.token and not hub_repo_dir(self.model).is_dir():
            raise BackendUnavailableError(self.token_message(self.model))
        try:
            if local:
                pipe = Pipeline.from_pretrained(str(Path(self.model).expanduser()))
            else:
                try:
                    pipe = Pipeline.from_pretrained(self.model, token=self.token)
                except TypeError:  # pyannote.audio 3.x spells it use_auth_token
                    pipe = Pipeline.from_pretrained(self.model, use_auth_token=self.token)
        except Exception as e:  # gated repo, bad token, no network, a broken local folder
            if local:
                raise BackendUnavailableError(
                    f"the pyannote pipeline at {self.model} cannot be loaded ({type(e).__name__}: "
                    f"{str(e).splitlines()[0][:200] if str(e) else ''}); it needs config.yaml and the model "
                    "subfolders it names") from None
            raise ModelMissingError(self.model, self.models()[0].fetch_command,
                                    f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}; "
                                    + self.token_message(self.model)) from None
        if pipe is None:  # 3.x returns None when access is refused
            raise BackendUnavailableError(self.token_message(self.model))
        self._pipeline = pipe
        return pipe

    def diarize(self, audio, rate, *, regions=None, num_speakers=None, min_speakers=1, max_speakers=MAX_SPEAKERS,
                progress=no_progress, cancel=None) -> Diarization:
        import torch

        from . import voiceprint as vp

        lo, hi = _check_counts(num_speakers, min_speakers, max_speakers)
        a = vp.prepare(audio, rate)
        pipe = self.load()
        # pyannote's hook: (step, artifact, total=, completed=) while a step runs, then once with no total when it
        # is done; completed may overshoot total. Each step owns a slice of the bar, which never moves back.
        spans = {"segmentation": (0.0, 0.4), "speaker_counting": (0.4, 0.5), "embeddings": (0.5, 0.9),
                 "discrete_diarization": (0.9, 0.99)}
        shown = [0.0]

        def hook(step_name, step_artifact, file=None, total=None, completed=None):
            if cancel is not None:
                cancel.check()
            lo_f, hi_f = spans.get(step_name, (shown[0], shown[0]))
            frac = hi_f if not total else lo_f + (hi_f - lo_f) * min(1.0, (completed or 0) / total)
            shown[0] = max(shown[0], frac)
            progress(shown[0], step_name.replace("_", " "))

        kwargs = {"num_speakers": num_speakers} if num_speakers else {"min_speakers": lo, "max_speakers": hi}
        file = {"waveform": torch.from_numpy(a).unsqueeze(0), "sample_rate": RATE}
        out = pipe(file, hook=hook, **kwargs)
        annotation = getattr(out, "speaker_diarization", out)
        raw_embs = getattr(out, "speaker_embeddings", None)
        if isinstance(out, tuple):  # 3.x with return_embeddings=True
            annotation, raw_embs = out
        duration = len(a) / RATE
        # pyannote's last sliding window is padded past the end of the audio: clip turns to the audio
        turns = [Turn(max(0.0, float(seg.start)), min(duration, float(seg.end)), str(lab))
                 for seg, _, lab in annotation.itertracks(yield_label=True)]
        turns = [t for t in turns if t.end - t.start > 1e-3]
        labels = sorted({t.speaker for t in turns})
        embs: dict[str, np.ndarray] = {}
        # pyannote's embeddings live in another space than voiceprints: publish Resemblyzer means instead, so
        # clusters stay comparable with enrolled voiceprints whichever diarizer ran.
        for lab in labels:
            pieces = [a[int(t.start * RATE) : int(t.end * RATE)] for t in turns if t.speaker == lab]
            speech = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
            if len(speech) >= vp.MIN_SECONDS * RATE:
                embs[lab] = vp.embed(speech, RATE)
        del raw_embs
        # pyannote may return overlapping turns; keep them (the attribution step copes) but sort and relabel
        turns, out_embs = relabel(turns, embs)
        progress(1.0, f"{len(labels)} speakers")
        return Diarization(turns=turns, embeddings=out_embs, backend=self.name)
