"""Overlap-aware offline diarization in pyannote.audio's manner, on models that ship in PyPI wheels.

1. The PyanNet segmentation model (whisperX wheel, see :mod:`pipeline.stages.overlap`) slides over the audio in 5 s
   chunks and says, per ~17 ms frame, which of up to 3 *local* speakers talk (several at once in overlap).
2. Each (chunk, local speaker) gets a Resemblyzer embedding of the frames where it talks alone (all its frames when
   it never does for long enough).
3. pyannote.audio's agglomerative clustering groups those embeddings into global speakers; within a chunk two local
   speakers never share a cluster (constrained assignment).
4. pyannote.audio's reconstruction aggregates the clustered chunk activations with the frame-level speaker count:
   overlapped frames get two (or more) speakers, turns may overlap.

Measured on the ten 30 s AMI excerpts (collar 0, overlap scored; bench/bench_diarization_ami.py --segmentation):
pooled DER 26.7 % (miss 18.2, false alarm 3.4, confusion 5.1 points) against 31.0 % for the window-clustering
backend with overlap counts (34.3 % without), and 4.8–5.6 % against 15.5 % on pyannote's sample conversation. It costs
a segmentation pass (≈1x real time on 2 cores) on top. Most of the miss is overlapped speech whose second voice the
2022 segmentation model does not find (≈32 s of the 41 s missed); counting speakers at a lower threshold (0.3) or
with a bias (+0.2) trades it for as much false alarm and confusion (AMI 26.3–27.3 %) and doubles the sample's DER.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ..progress import no_progress

RATE = 16000
MEL_HOP = 0.01  # Resemblyzer's mel frames, seconds
WINDOW = 160  # mel frames per encoder window (1.6 s, its training length)


@dataclass
class LocalSpeakerParams:
    """Tuning, chosen by pooled DER over the AMI excerpts and pyannote's sample (see module docstring)."""

    step: float = 0.5  # seconds between 5 s segmentation chunks (pyannote's default: 10 % of the chunk)
    onset: float = 0.4  # local-speaker activation threshold
    threshold: float = 0.5  # AHC centroid-linkage cosine distance at which clusters stop merging
    min_cluster_size: int = 12  # smaller clusters are reassigned to the nearest large one (pyannote's rule)
    min_alone: float = 0.6  # seconds a local speaker must talk alone in a chunk for its overlap to be left out
    min_speech: float = 0.4  # seconds of speech below which a local speaker gets no embedding
    min_duration_on: float = 0.1  # shorter turns are dropped (no effect on AMI DER; no 20 ms turns)
    min_duration_off: float = 0.1  # shorter gaps inside one speaker's speech are filled


def segment(audio16k: np.ndarray, step: float, *, progress=no_progress, cancel=None):
    """Raw local-speaker activations: SlidingWindowFeature (chunks, frames, 3), and the model's frame grid."""
    import torch

    from . import overlap

    model = overlap.get_model()  # imports pyannote.audio quietly (its torchcodec warning does not apply here)
    from pyannote.audio import Inference
    inference = Inference(model, duration=overlap.CHUNK, step=step, skip_aggregation=True, batch_size=32)

    def hook(completed=0, total=1, **_):
        if cancel is not None:
            cancel.check()
        progress(min(1.0, completed / max(total, 1)), "finding who talks when")

    seg = inference({"waveform": torch.from_numpy(np.asarray(audio16k, np.float32))[None], "sample_rate": RATE},
                    hook=hook)
    return seg, model.receptive_field


def local_embeddings(audio16k: np.ndarray, binary, p: LocalSpeakerParams, *, progress=no_progress,
                     cancel=None) -> np.ndarray:
    """(chunks, local speakers, 256) unit Resemblyzer embeddings of each local speaker's speech; NaN rows for local
    speakers with too little of it."""
    from . import voiceprint as vp

    mel = vp.mel_frames(vp.normalize_volume(np.asarray(audio16k, np.float32)))
    data = np.nan_to_num(binary.data)
    chunks, frames, speakers = data.shape
    frame = binary.sliding_window.duration / frames  # seconds per segmentation frame
    # mel frames [lo, hi) under each segmentation frame of a chunk, relative to the chunk start
    rel_lo = np.floor(np.arange(frames) * frame / MEL_HOP).astype(int)
    rel_hi = np.maximum(rel_lo + 1, np.floor(np.arange(1, frames + 1) * frame / MEL_HOP).astype(int))
    out = np.full((chunks, speakers, 256), np.nan, np.float32)
    windows, owners = [], []
    for c in range(chunks):
        first = int(round(binary.sliding_window[c].start / MEL_HOP))
        alone = data[c] * (data[c].sum(axis=1, keepdims=True) < 2)
        for s in range(speakers):
            mask = alone[:, s] if alone[:, s].sum() * frame >= p.min_alone else data[c, :, s]
            if mask.sum() * frame < p.min_speech:
                continue
            idx = np.concatenate([np.arange(rel_lo[i], rel_hi[i]) for i in np.flatnonzero(mask)]) + first
            x = mel[idx[idx < len(mel)]]
            if len(x) < WINDOW // 4:
                continue
            if len(x) < WINDOW:  # short speech: repeat it to the encoder's window
                x = np.resize(x, (WINDOW, x.shape[1]))
            starts = list(range(0, len(x) - WINDOW + 1, WINDOW // 2))
            if starts[-1] != len(x) - WINDOW:
                starts.append(len(x) - WINDOW)
            for st in starts:
                windows.append(x[st : st + WINDOW])
                owners.append((c, s))
    if not windows:
        return out
    emb = vp.embed_windows(np.concatenate(windows), np.arange(len(windows)) * WINDOW, WINDOW, cancel=cancel,
                           progress=progress)
    sums: dict[tuple[int, int], np.ndarray] = {}
    for key, e in zip(owners, emb):
        sums[key] = sums.get(key, 0) + e
    for (c, s), v in sums.items():
        out[c, s] = v / max(float(np.linalg.norm(v)), 1e-9)
    return out


def _fill_missing_centroids(centroids: np.ndarray, emb: np.ndarray, hard: np.ndarray) -> np.ndarray:
    """Centroids with any NaN are replaced by the mean of that cluster's finite local embeddings."""
    finite = np.isfinite(emb).all(axis=2)
    for g in range(len(centroids)):
        if not np.isfinite(centroids[g]).all():
            members = emb[(hard == g) & finite]
            centroids[g] = (members if len(members) else emb[finite]).mean(axis=0)
    return centroids


def diarize(audio16k: np.ndarray, p: LocalSpeakerParams, *, lo: int = 1, hi: int = 8, fixed: int | None = None,
            progress=no_progress, cancel=None):
    """([(start, end, label)], {label: unit embedding}) for 16 kHz mono float audio; turns may overlap."""
    from . import overlap

    overlap.get_model()  # imports pyannote.audio quietly
    from pyannote.audio.pipelines.clustering import AgglomerativeClustering
    from pyannote.audio.pipelines.utils.diarization import SpeakerDiarizationMixin
    from pyannote.audio.utils.signal import binarize
    from pyannote.core import SlidingWindowFeature

    seg, frames = segment(audio16k, p.step, progress=lambda f, m="": progress(0.5 * f, m), cancel=cancel)
    binary = binarize(seg, onset=p.onset, initial_state=False)
    count = SpeakerDiarizationMixin.speaker_count(binary, frames, warm_up=(0.0, 0.0))
    if not np.nanmax(count.data, initial=0) > 0:
        return [], {}
    emb = local_embeddings(audio16k, binary, p, progress=lambda f, m="": progress(0.5 + 0.45 * f, m), cancel=cancel)
    if cancel is not None:
        cancel.check()
    if not np.isfinite(emb).all(axis=2).any():
        return [], {}
    progress(0.95, "grouping voices")
    clustering = AgglomerativeClustering(metric="cosine", constrained_assignment=True)
    clustering.instantiate({"threshold": p.threshold, "method": "centroid", "min_cluster_size": p.min_cluster_size})
    with warnings.catch_warnings():  # a file with too few clean embeddings gives pyannote an empty mean
        warnings.simplefilter("ignore", RuntimeWarning)
        hard, _, centroids = clustering(embeddings=emb, segmentations=binary, num_clusters=fixed, min_clusters=lo,
                                        max_clusters=hi)
    centroids = _fill_missing_centroids(np.array(centroids, dtype=np.float64), emb, hard)
    count.data = np.minimum(count.data, hi).astype(np.int8)
    hard[np.sum(binary.data, axis=1) == 0] = -2  # local speakers silent in their chunk
    k = int(hard.max()) + 1
    clustered = np.full(seg.data.shape[:2] + (k,), np.nan)
    for c, (cluster, (_, activations)) in enumerate(zip(hard, seg)):
        for g in np.unique(cluster):
            if g >= 0:
                clustered[c, :, g] = activations[:, cluster == g].max(axis=1)
    discrete = SpeakerDiarizationMixin.to_diarization(SlidingWindowFeature(clustered, seg.sliding_window), count)
    annotation = SpeakerDiarizationMixin.to_annotation(discrete, min_duration_on=p.min_duration_on,
                                                         min_duration_off=p.min_duration_off)
    duration = len(audio16k) / RATE
    turns = [(max(0.0, float(s.start)), min(duration, float(s.end)), str(label))
             for s, _, label in annotation.itertracks(yield_label=True)]
    turns = [t for t in turns if t[1] - t[0] > 1e-3]
    used = {label for *_, label in turns}
    embeddings = {str(g): np.asarray(centroids[g], np.float32) / max(float(np.linalg.norm(centroids[g])), 1e-9)
                  for g in range(len(centroids)) if str(g) in used}
    return turns, embeddings
