"""Voiceprints: a unit-norm speaker embedding per voice, and matching against named, enrolled voices.

The encoder is Resemblyzer's GE2E LSTM (its weights ship inside the ``Resemblyzer`` wheel), the same one the
offline diarizer uses, so a diarization cluster's mean embedding can be matched against enrolled voiceprints.
"""

from __future__ import annotations


import numpy as np

from ..errors import BadInputError
from ..once import load_once
from ..vectors import unit
from .base import StageBackend, register

RATE = 16000
WINDOW_FRAMES = 160  # 1.6 s partial utterances (the encoder's training length), 10 ms mel frames
MIN_SECONDS = 0.5

# Calibrated on real speech: AMI excerpts trn00..trn09 (+ pyannote's sample.wav) with their reference RTTM turns,
# only the parts of turns where nobody else talks; pairs from different turns of the same speaker id (also across
# meetings) vs pairs of different speakers. Measured 2026-11 (tests/test_stage_voiceprint.py re-measures):
#   pieces 2.5-6 s (21 pieces, 8 speakers): same n=10  mean 0.857 sd 0.046 min 0.765 | different n=182 mean 0.632
#     sd 0.069 p95 0.749 max 0.799  -> calibrate() = 0.763, EER 1.4 % (all same accepted, 97 % different rejected)
#   pieces 1.5-3 s (49 pieces, 11 speakers): same n=78 mean 0.760 sd 0.076 p5 0.610 | different n=1007 mean 0.585
#     p95 0.704 -> calibrate() = 0.704, EER 14 %
# Cross-recording matching (tests/ami_voiceprints.py: each excerpt in turn enrols its speakers from all their clean
# speech, >= 2 s; clean 1.5-6 s pieces of the other nine excerpts are matched, 210 trials, 16 of enrolled speakers;
# measured 2026-12): at 0.76 precision 0.48 (recall 0.94), 0.78 -> 0.70 (0.88), 0.80 -> 0.91 (0.63). A wrong name
# costs more than no name (an unknown speaker is named by hand once), so the threshold is the lowest with
# precision >= 0.90 at recall >= 0.50 there, 0.80; pairs of 2.5-6 s pieces still separate at it (all different
# pairs but a few reject). Short (< 2 s) probes of a known voice often score below it: unmatched, not misnamed.
# Resemblyzer scores are all positive (ReLU before the norm), so thresholds sit high.
DEFAULT_THRESHOLD = 0.80

@load_once
def get_encoder():
    """The shared Resemblyzer VoiceEncoder on CPU (loaded once per process, ~17 MB, < 1 s)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # webrtcvad's pkg_resources deprecation notice
        from resemblyzer import VoiceEncoder

    encoder = VoiceEncoder(device="cpu", verbose=False)
    encoder.eval()
    return encoder


def prepare(audio: np.ndarray, rate: int) -> np.ndarray:
    """Float32 mono 16 kHz audio, resampled through pipeline.media when needed."""
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim == 2:
        a = a.mean(axis=1)
    if a.ndim != 1:
        raise BadInputError(f"expected mono audio, got an array shaped {a.shape}")
    if rate != RATE:
        from ..media import resample

        a = resample(a, rate, RATE).astype(np.float32, copy=False)
    return a


def normalize_volume(audio: np.ndarray, target_dbfs: float = -30.0) -> np.ndarray:
    """Scale to the loudness the encoder was trained at (its mel features are not log-compressed)."""
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if len(audio) else 0.0
    gain = loudness_gain(rms, target_dbfs)
    if gain is None:
        return audio
    return (audio * gain).astype(np.float32)


def loudness_gain(rms: float, target_dbfs: float = -30.0) -> float | None:
    """The factor :func:`normalize_volume` applies to audio of this RMS (None: silence, left as it is); lets long
    media be normalised stretch by stretch with the whole file's RMS."""
    if rms < 1e-6:
        return None
    return 10 ** (target_dbfs / 20) / rms


def mel_frames(audio16k: np.ndarray, block_seconds: float = 60.0) -> np.ndarray:
    """Encoder input features: (frames, 40) mel power spectrogram, 10 ms hop.

    Long audio is computed in blocks (with a few frames of context each side) so a two-hour film never needs
    its whole STFT in memory; the frames equal those of a single pass.
    """
    from resemblyzer.audio import wav_to_mel_spectrogram

    hop = 160
    block = int(block_seconds * RATE) // hop * hop
    if len(audio16k) <= 2 * block:
        return wav_to_mel_spectrogram(audio16k)
    margin = 3 * hop  # > n_fft / 2 (200 samples): the centred STFT frames near a cut see real audio
    total = len(audio16k) // hop + 1  # frames of a single centred pass
    parts = []
    for s in range(0, len(audio16k), block):
        e = min(len(audio16k), s + block)
        lo = max(0, s - margin)
        mel = wav_to_mel_spectrogram(audio16k[lo : min(len(audio16k), e + margin)])
        first = (s - lo) // hop
        count = (e - s) // hop if e < len(audio16k) else total - s // hop
        parts.append(mel[first : first + count])
    return np.concatenate(parts)


def embed_windows(mel: np.ndarray, starts: list[int] | np.ndarray, length: int, *, batch: int = 32,
                  cancel=None, progress=None) -> np.ndarray:
    """Embeddings (n, 256) of mel windows [s, s+length) (zero-padded past the end), each unit-norm."""
    import torch

    enc = get_encoder()
    n = len(starts)
    out = np.zeros((n, 256), dtype=np.float32)
    if n == 0:
        return out
    if len(mel) < max(starts) + length:
        mel = np.pad(mel, ((0, max(starts) + length - len(mel)), (0, 0)))
    with torch.inference_mode():
        for b in range(0, n, batch):
            if cancel is not None:
                cancel.check()
            chunk = np.stack([mel[s : s + length] for s in starts[b : b + batch]])
            out[b : b + batch] = enc(torch.from_numpy(chunk)).numpy()
            if progress is not None:
                progress(min(1.0, (b + batch) / n), "embedding voices")
    return out


def embed(audio: np.ndarray, rate: int) -> np.ndarray:
    """Unit-norm 256-d speaker embedding of a stretch of one person's speech (>= 0.5 s; 3 s+ is better)."""
    a = prepare(audio, rate)
    if len(a) < MIN_SECONDS * RATE:
        raise BadInputError(f"need at least {MIN_SECONDS} s of speech for a voiceprint (got {len(a) / RATE:.2f} s)")
    mel = mel_frames(normalize_volume(a))
    n = len(mel)
    if n <= WINDOW_FRAMES:
        starts = [0]
        length = n
    else:  # 1.6 s windows, half overlapping, the last one flush with the end
        starts = list(range(0, n - WINDOW_FRAMES + 1, WINDOW_FRAMES // 2))
        if starts[-1] != n - WINDOW_FRAMES:
            starts.append(n - WINDOW_FRAMES)
        length = WINDOW_FRAMES
    parts = embed_windows(mel, starts, length)
    return unit(parts.mean(axis=0))


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return 0.0
    return float(a @ b / (na * nb))


def consistent_centroid(embeddings: list[np.ndarray]) -> tuple[np.ndarray, list[float]]:
    """(centroid, each embedding's cosine to it) of one speaker's clips: the centroid of the more consistent half,
    so a few clips of another voice (mis-attributed lines) cannot pull it towards themselves."""
    first = unit(np.mean(embeddings, axis=0))
    order = sorted(range(len(embeddings)), key=lambda j: -cosine(embeddings[j], first))
    centroid = unit(np.mean([embeddings[j] for j in order[: max(1, (len(order) + 1) // 2)]], axis=0))
    return centroid, [cosine(e, centroid) for e in embeddings]


def match(embedding: np.ndarray, known: dict[str, np.ndarray], threshold: float = DEFAULT_THRESHOLD) -> tuple[str | None, float]:
    """Best-scoring known voice by cosine similarity: (name, score), or (None, score) below the threshold."""
    best_name, best = None, -1.0
    for name, ref in known.items():
        if ref is None or len(ref) != len(embedding):
            continue
        s = cosine(embedding, ref)
        if s > best:
            best_name, best = name, s
    if best_name is None:
        return None, 0.0
    return (best_name if best >= threshold else None), best


def calibrate(same_scores, diff_scores) -> float:
    """Threshold that maximises accuracy on same-/different-speaker scores (balanced classes), ties broken by
    the smallest gap between miss and false-accept rates (the equal-error point)."""
    same = np.sort(np.asarray(same_scores, dtype=np.float64))
    diff = np.sort(np.asarray(diff_scores, dtype=np.float64))
    if len(same) == 0 or len(diff) == 0:
        raise BadInputError("calibration needs both same-speaker and different-speaker scores")
    cands = np.unique(np.concatenate([same, diff]))
    mids = np.concatenate([[cands[0] - 1e-6], (cands[:-1] + cands[1:]) / 2, [cands[-1] + 1e-6]])
    best_key, best_t = None, float(mids[0])
    for t in mids:
        miss = np.searchsorted(same, t, side="left") / len(same)  # same-speaker scores below t
        fa = 1.0 - np.searchsorted(diff, t, side="left") / len(diff)  # different-speaker scores >= t
        key = ((miss + fa) / 2, abs(miss - fa))
        if best_key is None or key < best_key:
            best_key, best_t = key, float(t)
    return best_t


def equal_error_rate(same_scores, diff_scores) -> float:
    """EER of the scores (where miss rate equals false-accept rate), for reports."""
    same = np.sort(np.asarray(same_scores, dtype=np.float64))
    diff = np.sort(np.asarray(diff_scores, dtype=np.float64))
    best = (2.0, 1.0)
    for t in np.unique(np.concatenate([same, diff])):
        miss = np.searchsorted(same, t, side="left") / len(same)
        fa = 1.0 - np.searchsorted(diff, t, side="left") / len(diff)
        best = min(best, (abs(miss - fa), (miss + fa) / 2))
    return float(best[1])


@register
class ResemblyzerVoiceprint(StageBackend):
    """Stage-registry face of this module (so `weaver models` lists it): embed() and match() as methods."""

    stage = "voiceprint"
    name = "resemblyzer"
    offline = True
    quality = 5
    description = "Resemblyzer GE2E speaker encoder (weights ship in the Resemblyzer wheel)"
    requires = ("resemblyzer", "torch")
    install_hint = 'pip install "voice-weaver[offline]"'

    def embed(self, audio: np.ndarray, rate: int) -> np.ndarray:
        return embed(audio, rate)

    def match(self, embedding, known, threshold: float | None = None):
        return match(embedding, known, DEFAULT_THRESHOLD if threshold is None else threshold)
