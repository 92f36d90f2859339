"""Overlapped speech: how many people talk at each 10 ms of a recording, from a multi-label segmentation model.

The model is pyannote's PyanNet segmentation (SincNet + LSTM, 5 s chunks, up to 3 local speakers each, multi-label)
whose weights ship inside the whisperX wheel (``whisperx/assets/pytorch_model.bin``, 17 MB; whisperX uses it as its
VAD). It is run with pyannote.audio over sliding 5 s chunks; each chunk's binarised local-speaker activations are
summed per frame and averaged over the chunks covering the frame: the number of simultaneous speakers, which the
offline diarizer uses to give overlapped frames a second speaker. Optional: without pyannote.audio and the whisperX
wheel, :func:`available` is False and diarization stays single-speaker per frame.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from ..once import load_once

RATE = 16000
FRAME = 0.01
CHUNK = 5.0  # seconds the model was trained on
ONSET = 0.5  # local-speaker activation threshold


def model_path() -> Path | None:
    """The segmentation weights inside the installed whisperX wheel (found without importing whisperX)."""
    try:
        spec = importlib.util.find_spec("whisperx")
    except (ImportError, ValueError):
        return None
    if not spec or not spec.submodule_search_locations:
        return None
    for base in spec.submodule_search_locations:
        p = Path(base) / "assets" / "pytorch_model.bin"
        if p.is_file():
            return p
    return None


def available() -> bool:
    try:
        ok = importlib.util.find_spec("pyannote.audio") is not None
    except (ImportError, ValueError):
        ok = False
    return ok and model_path() is not None


@load_once
def get_model():
    """The PyanNet segmentation model on CPU (loaded once per process)."""
    import logging
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in ("lightning", "lightning.pytorch", "pytorch_lightning", "lightning_fabric"):
            logging.getLogger(name).setLevel(logging.ERROR)
        from pyannote.audio import Model

        model = Model.from_pretrained(str(model_path()))
    model.eval()
    return model


def speaker_counts(audio16k: np.ndarray, *, step: float = 0.5, batch: int = 32, cancel=None) -> np.ndarray:
    """Mean number of simultaneous speakers per 10 ms frame (float, 0..3), len = ceil(duration / 10 ms) + 1."""
    import torch

    model = get_model()
    a = np.asarray(audio16k, dtype=np.float32)
    n = len(a)
    nf = int(np.ceil(n / RATE / FRAME)) + 1
    acc = np.zeros(nf, np.float64)
    cnt = np.zeros(nf, np.float64)
    win = int(CHUNK * RATE)
    hop = int(step * RATE)
    starts = list(range(0, max(1, n - win + 1), hop))
    if n > win and starts[-1] + win < n:
        starts.append(n - win)
    chunks = []
    for s in starts:
        c = a[s : s + win]
        if len(c) < win:
            c = np.pad(c, (0, win - len(c)))
        chunks.append(c)
    with torch.inference_mode():
        for b in range(0, len(chunks), batch):
            if cancel is not None:
                cancel.check()
            x = torch.from_numpy(np.stack(chunks[b : b + batch]))[:, None, :]
            y = model(x).numpy()  # (batch, frames, 3) activations in [0, 1]
            k = y.shape[1]
            for i, s in enumerate(starts[b : b + batch]):
                c = (y[i] > ONSET).sum(axis=1).astype(np.float64)
                # model frame j covers [s + j*CHUNK/k, s + (j+1)*CHUNK/k): spread onto the 10 ms grid
                t0 = s / RATE
                f_lo = np.floor((t0 + np.arange(k) * CHUNK / k) / FRAME).astype(int)
                f_hi = np.floor((t0 + np.arange(1, k + 1) * CHUNK / k) / FRAME).astype(int)
                edge = np.hanning(k + 2)[1:-1]  # chunk edges are less reliable
                for j in range(k):
                    lo, hi = f_lo[j], min(f_hi[j], nf)
                    if hi > lo and lo * FRAME < n / RATE:
                        acc[lo:hi] += c[j] * edge[j]
                        cnt[lo:hi] += edge[j]
    return np.where(cnt > 0, acc / np.maximum(cnt, 1e-9), 0.0)
