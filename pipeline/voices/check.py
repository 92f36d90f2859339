"""Voice check: does a trained or cloned voice speak words, sound clean, and sound like the character?

:func:`check_voice` synthesises a few held-out sentences with the voice and measures

- **similarity**: cosine between the Resemblyzer embedding of the synthesised speech and that of the
  character's reference clips (pipeline.stages.voiceprint, the encoder shipped in the Resemblyzer wheel);
- **wer**: word error rate of the bundled Whisper tiny.en (the project's asr stage) on the synthesised speech
  against the sentences (jiwer, after lower-casing and dropping punctuation);
- **dnsmos**: DNSMOS P.835 overall quality (1–5) of the synthesised speech (the ONNX models in ``speechmos``).

The same numbers for the built-in default voice on the same sentences and clips come with it (``default``).
A voice fails when it is noise or speaks no words (WER above :data:`WER_MAX` or DNSMOS below
:data:`DNSMOS_MIN`) or when it is no closer to the character than the default voice (similarity below the default
voice's, less :data:`SIMILARITY_TOLERANCE`); ``reasons`` says which in words.

Thresholds (measured 2026-12 on this 2-core machine, bench/bench_default_voice.py and tests/test_voices_check.py):
the Piper default voice scored WER 3–6 % and DNSMOS 3.23–3.35; espeak-ng WER 3–11 % and DNSMOS 2.77–2.90;
3 s of white noise WER 100 % (Whisper heard nothing) and DNSMOS 1.07. WER 0.5 and DNSMOS 2.0 sit between
those groups with a wide margin on each side, so a real but robotic voice (espeak-ng) passes them and noise
cannot. Repeated syntheses of one voice differ by ≈0.01 in similarity (Piper against its own clips: 0.97 twice,
the VITS sampling noise), hence the 0.02 tolerance when the voice is compared with the default voice; a
different clear voice scores far lower (espeak-ng against Piper clips: 0.54 vs 0.97).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..errors import BadInputError
from ..once import load_once
from ..progress import CancelToken, ProgressCallback, no_progress

WER_MAX = 0.5
DNSMOS_MIN = 2.0
SIMILARITY_TOLERANCE = 0.02
RATE = 16000

# held out: phrases that appear in no dataset or test fixture (varied vowels, consonant clusters, a question)
HELD_OUT_SENTENCES = (
    "The morning train was late again, so we walked along the river.",
    "Could you bring the blue folder from my desk before lunch?",
    "Nobody expected the old lighthouse to shine so brightly tonight.",
)

SynthesizeFn = Callable[[str], tuple[np.ndarray, int]]


@dataclass
class VoiceCheck:
    similarity: float | None  # None when no reference clips were given
    wer: float
    dnsmos: float
    ok: bool
    reasons: list[str] = field(default_factory=list)
    default: dict | None = None  # {"similarity", "wer", "dnsmos", "backend"} of the default voice, same sentences/clips
    sentences: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        """One line: the three numbers, then why it failed (if it did)."""
        sim = "n/a" if self.similarity is None else f"{self.similarity:.2f}"
        line = f"similarity {sim}, WER {self.wer:.0%}, DNSMOS {self.dnsmos:.2f}"
        if self.default:
            dsim = self.default.get("similarity")
            line += (f" (default voice: similarity {'n/a' if dsim is None else f'{dsim:.2f}'}, WER {self.default['wer']:.0%},"
                     f" DNSMOS {self.default['dnsmos']:.2f})")
        return line + ("" if self.ok else " — failed: " + "; ".join(self.reasons))


# ---------------------------------------------------------------------------------------------- measures
@load_once
def _dnsmos_model():
    """speechmos's DNSMOS scorer with its two ONNX sessions on one thread each (loaded once per process)."""
    import os

    import onnxruntime as ort

    try:
        import speechmos.dnsmos as sm
    except ImportError as e:
        from ..errors import BackendUnavailableError

        raise BackendUnavailableError(f"DNSMOS needs speechmos and librosa ({e.name} is missing): "
                                      'pip install speechmos==0.0.1.1 librosa (or "voice-weaver[offline]")') from None
    here = Path(sm.__file__).parent / "dnsmos_models"
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    scorer = sm.DNSMOS.__new__(sm.DNSMOS)  # its __init__ opens sessions on every core: open ours instead
    scorer.primary_model_path = os.fspath(here / "sig_bak_ovr.onnx")
    scorer.onnx_sess = ort.InferenceSession(scorer.primary_model_path, opts, providers=["CPUExecutionProvider"])
    scorer.p808_onnx_sess = ort.InferenceSession(os.fspath(here / "model_v8.onnx"), opts, providers=["CPUExecutionProvider"])
    return scorer


def dnsmos(audio: np.ndarray, rate: int) -> float:
    """DNSMOS overall score (1–5) of mono speech; BadInputError for empty audio."""
    a = _to16k(audio, rate)
    if len(a) < RATE // 10:
        raise BadInputError("need at least 0.1 s of audio for DNSMOS")
    a = np.clip(np.nan_to_num(a), -1.0, 1.0).astype(np.float32)
    return float(_dnsmos_model()(a, RATE, False)["ovrl_mos"])


@load_once
def _asr_backend():
    """The bundled Whisper tiny.en backend, greedy at temperature 0 only (on noise the fallback temperatures would
    just re-decode hallucinations)."""
    from ..stages.base import get_backend

    return get_backend("asr", "faster-whisper", cpu_threads=2, temperature=0.0, max_new_tokens=96)


def transcribe(audio: np.ndarray, rate: int) -> str:
    """What the bundled Whisper tiny.en hears (greedy, no timestamps)."""
    t = _asr_backend().transcribe(_to16k(audio, rate), RATE, language="en", word_timestamps=False)
    return " ".join(line.text for line in t.lines)


_CONTRACTIONS = [(re.compile(p), r) for p, r in (
    (r"\bcan't\b", "can not"), (r"\bwon't\b", "will not"), (r"\blet's\b", "let us"), (r"n't\b", " not"),
    (r"'re\b", " are"), (r"'m\b", " am"), (r"'ll\b", " will"), (r"'ve\b", " have"), (r"'d\b", " would"),
    (r"\b(it|that|there|here|what|where|who|how|he|she)'s\b", r"\1 is"))]


def normalize_words(text: str) -> str:
    """Lower-case words without punctuation, contractions written out, for WER ("Don't!" → "do not"; "where's"
    and "where is" are the same words spoken)."""
    t = text.lower().replace("\u2019", "'")
    for pattern, full in _CONTRACTIONS:
        t = pattern.sub(full, t)
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", t).split())


def _joined_compounds(ref: str, hyp: str) -> str:
    """``hyp`` with two adjacent words joined where ``ref`` holds them as one ("light house" → "lighthouse"): a
    compound written apart is the same word spoken."""
    vocabulary = set(ref.split())
    words, out, i = hyp.split(), [], 0
    while i < len(words):
        if i + 1 < len(words) and words[i] + words[i + 1] in vocabulary and words[i] not in vocabulary:
            out.append(words[i] + words[i + 1])
            i += 2
        else:
            out.append(words[i])
            i += 1
    return " ".join(out)


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus WER (total edits / total reference words); an empty hypothesis counts as all words deleted."""
    import jiwer

    refs = [normalize_words(r) for r in references]
    hyps = [normalize_words(h) for h in hypotheses]
    hyps, refs = [_joined_compounds(r, h) for r, h in zip(refs, hyps)], [_joined_compounds(h, r) for r, h in zip(refs, hyps)]
    if not any(refs):
        raise BadInputError("WER needs reference sentences with words")
    pairs = [(r, h) for r, h in zip(refs, hyps) if r]
    if all(h for _, h in pairs):
        return float(jiwer.wer([r for r, _ in pairs], [h for _, h in pairs]))
    errors = words = 0
    for r, h in pairs:  # jiwer refuses empty hypotheses: count those sentences by hand
        n = len(r.split())
        words += n
        errors += n if not h else round(jiwer.wer(r, h) * n)
    return errors / words


def _to16k(audio: np.ndarray, rate: int) -> np.ndarray:
    from ..stages.voiceprint import prepare

    return prepare(np.asarray(audio, dtype=np.float32), rate)


def _load_clip(clip) -> np.ndarray:
    if isinstance(clip, (str, Path)):
        from ..media import load_audio

        return np.asarray(load_audio(clip, sample_rate=RATE, channels="mono"), dtype=np.float32).reshape(-1)
    audio, rate = clip
    return _to16k(audio, rate)


def reference_embedding(clips: Sequence) -> np.ndarray | None:
    """Unit mean Resemblyzer embedding of the reference clips ((audio, rate) pairs or file paths), None if none."""
    from ..stages.voiceprint import MIN_SECONDS, embed, unit

    embs = []
    for c in clips:
        a = _load_clip(c)
        if len(a) >= MIN_SECONDS * RATE:
            embs.append(embed(a, RATE))
    return unit(np.mean(embs, axis=0)) if embs else None


@dataclass
class _Measured:
    embedding: np.ndarray | None
    wer: float
    dnsmos: float
    transcripts: list[str]


def _measure(synthesize_fn: SynthesizeFn, sentences: Sequence[str], progress: ProgressCallback, cancel: CancelToken | None,
             share: tuple[float, float] = (0.0, 1.0)) -> _Measured:
    from ..stages.voiceprint import MIN_SECONDS, embed, unit

    lo, hi = share
    hyps, scores, embs = [], [], []
    for i, sentence in enumerate(sentences):
        if cancel is not None:
            cancel.check()
        progress(lo + (hi - lo) * i / len(sentences), f"voice check: sentence {i + 1}/{len(sentences)}")
        audio, rate = synthesize_fn(sentence)
        a = _to16k(audio, rate)
        if len(a) < RATE // 10 or not np.isfinite(a).all():
            hyps.append("")
            scores.append(1.0)  # silence / broken audio: the floor of the scale
            continue
        hyps.append(transcribe(a, RATE))
        scores.append(dnsmos(a, RATE))
        if len(a) >= MIN_SECONDS * RATE:
            embs.append(embed(a, RATE))
    return _Measured(embedding=unit(np.mean(embs, axis=0)) if embs else None, wer=word_error_rate(sentences, hyps),
                     dnsmos=float(np.mean(scores)), transcripts=hyps)


_default_cache: dict[tuple, _Measured] = {}


def default_voice_measures(sentences: Sequence[str] = HELD_OUT_SENTENCES) -> tuple[_Measured, str]:
    """The default voice's measures on these sentences (computed once per process and default-voice backend)."""
    from . import default_voice

    backend = default_voice.describe()
    key = (backend, tuple(sentences))
    if key not in _default_cache:
        _default_cache[key] = _measure(lambda t: default_voice.speak(t, rate=None), sentences, no_progress, None)
    return _default_cache[key], backend


def check_voice(
    synthesize_fn: SynthesizeFn,
    reference_clips: Sequence = (),
    sentences: Sequence[str] = HELD_OUT_SENTENCES,
    *,
    compare_default: bool = True,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> VoiceCheck:
    """Synthesise ``sentences`` with ``synthesize_fn(text) -> (audio, rate)`` and judge the voice (see module doc).

    ``reference_clips``: the character's real held-out clips, as (audio, rate) pairs or audio file paths.
    ``compare_default``: also measure the default voice (cached per process) and require the voice to be at
    least as close to the clips as the default voice is.
    """
    sentences = [s for s in sentences if s and s.strip()]
    if not sentences:
        raise BadInputError("the voice check needs at least one sentence")
    ref = reference_embedding(reference_clips) if reference_clips else None
    m = _measure(synthesize_fn, sentences, progress, cancel, (0.0, 0.7 if compare_default else 1.0))
    sim = None
    if ref is not None:
        from ..stages.voiceprint import cosine

        sim = round(cosine(m.embedding, ref), 4) if m.embedding is not None else 0.0
    reasons = []
    if m.wer > WER_MAX:
        heard = "; ".join(f'"{h}"' for h in m.transcripts if h) or "nothing"
        reasons.append(f"speech recognition understood almost none of the words (WER {m.wer:.0%} > {WER_MAX:.0%}; heard {heard[:120]})")
    if m.dnsmos < DNSMOS_MIN:
        reasons.append(f"it sounds like noise, not speech (DNSMOS {m.dnsmos:.2f} < {DNSMOS_MIN:.1f})")
    default = None
    if compare_default:
        progress(0.7, "voice check: the default voice, for comparison")
        if cancel is not None:
            cancel.check()
        d, backend = default_voice_measures(sentences)
        dsim = None
        if ref is not None:
            from ..stages.voiceprint import cosine

            dsim = round(cosine(d.embedding, ref), 4) if d.embedding is not None else 0.0
        default = {"similarity": dsim, "wer": round(d.wer, 4), "dnsmos": round(d.dnsmos, 3), "backend": backend}
        if sim is not None and dsim is not None and sim < dsim - SIMILARITY_TOLERANCE:
            reasons.append(f"it sounds less like the character than the default voice does (similarity {sim:.2f} < {dsim:.2f})")
    if ref is None and reference_clips:
        reasons.append("the reference clips are too short (< 0.5 s each) to compare voices")
    progress(1.0, "voice check done")
    return VoiceCheck(similarity=sim, wer=round(m.wer, 4), dnsmos=round(m.dnsmos, 3), ok=not reasons, reasons=reasons,
                      default=default, sentences=len(sentences))
