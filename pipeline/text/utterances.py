"""Lines as utterances: one speaker's continuous speech, cut at the speech edges, with the words actually spoken.

Three steps on the attributed lines of an analysis (plain functions; the audio-reading side is in
pipeline.workflows.utterances):

- :func:`join_groups`: consecutive lines of one character (and one diarization cluster) that continue each other
  — a short gap and either the first line does not end a sentence, the second starts in lower case or with an
  ellipsis, or both match the same screenplay line — become one utterance (real subtitles split long lines over
  two cues for reading speed); two sentences a breath apart are one utterance too, unless the screenplay holds
  them as two lines. Dash-merged cues were already split at the speaker change on import.
- :func:`speech_edges`: an utterance's edges are its aligned words' edges, extended over the speech (VAD region)
  that runs on before/after them — a condensed subtitle leaves spoken words out and its cue starts late/ends
  early — but never into the neighbouring utterance, and never cut inside the words; where two speakers' speech
  runs into each other without a pause (:func:`touching_turns`) both utterances are marked overlapped, and where
  an overlapped-speech model finds the two voices at once (:func:`overlap_span`) the interrupted line runs on to
  the end of it and the interrupter starts at its beginning (an interruption cuts in over the line's last words);
  two speakers a short pause apart (``NEAR_GAP``) are checked by that model too (a subtitle cue that ends at the
  interrupter's start leaves the interrupted line's last words out), and are overlapped where it hears both.
  Two utterances given to one speaker that run over each other (:func:`one_voice_overlaps`) are overlapped too,
  and the one with less time of its own is an interruption by another voice, not that speaker's line.
- :func:`choose_text`: among the screenplay line(s), the subtitle text and the ASR words of the window, the text
  that matches the audio: each written candidate is scored against the window's ASR transcript
  (:func:`text_score`); the best wins when it scores at least ``MIN_TEXT_SCORE`` — a subtitle then gets the
  clearly heard ASR words its condensed cue left out at its edges (:func:`fill_edges`, source "subtitle+asr").
  Where nothing written matches, the line is marked "check text" and keeps the ASR text when ASR heard it clearly
  (mean word probability ≥ ``MIN_ASR_CONFIDENCE``) and no other voice runs into the window, else the best written
  text (small Whisper models hallucinate on music and odd voices; over two voices they hear the louder one). Without ASR the screenplay line wins where it holds the subtitle text (score None).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, replace

from pipeline.types import Line, Region, Word

CONTINUOUS_GAP = 0.35  # seconds: one speaker going on after a pause this short is one utterance
MAX_JOIN_GAP = 0.8  # seconds between two lines of one speaker that may still be one utterance
MAX_UTTERANCE = 20.0  # seconds: longer joined lines are not made
MAX_EXTEND = 2.5  # seconds an edge may move out over speech the text left out
NEIGHBOUR_GAP = 0.05  # seconds kept between an extended edge and the neighbouring line
MIN_TEXT_SCORE = 0.5  # a written candidate must match the window's ASR words at least this well (text_score)
MIN_ASR_CONFIDENCE = 0.7  # mean word probability for the ASR text to replace written text that does not match
MIN_EDGE_PROBABILITY = 0.6  # an ASR word added at a condensed subtitle's edge must be heard at least this clearly
MAX_EDGE_WORDS = 4
PAUSE = 0.2  # seconds of quiet that end an utterance's speech
SPEECH_FLOOR_DB = 15.0  # a frame this far under the line's speech level is not speech
LEVEL_PERCENTILE = 80  # the line's speech level: this percentile of its 10 ms frame levels (dB)
SILENT_DB = -60.0  # dBFS: a line this quiet has no speech level to follow
MIN_EXTEND = 0.15  # seconds: speech running on less than this past the words is the VAD's padding, not words
SCRIPT_PRIOR = 0.03  # ties between screenplay and subtitle go to the screenplay (shooting scripts hold the full line)
_END = re.compile(r"[.!?…♪\"”»]\s*$")
_NORM = re.compile(r"[^\w' ]+")

SOURCES = ("user", "script", "subtitle", "subtitle+asr", "asr")


@dataclass
class TextChoice:
    text: str
    source: str  # script | subtitle | subtitle+asr (ASR words added at its edges) | asr | user
    score: float | None  # 0..1 match against the window's ASR words (None: no ASR to score against)
    check: bool = False  # nothing written matched the audio well: the ASR text is kept, the user should check it


def words_of(text: str) -> list[str]:
    """Normalised words for comparing texts (lower case, punctuation out, digits kept)."""
    return _NORM.sub(" ", text.lower().replace("’", "'")).split()


def similarity(a: str, b: str) -> float:
    """Word-level similarity 0..1: 1 − edit distance / length of the longer word list."""
    from rapidfuzz.distance import Levenshtein

    wa, wb = words_of(a), words_of(b)
    if not wa and not wb:
        return 1.0
    if not wa or not wb:
        return 0.0
    return 1.0 - Levenshtein.distance(wa, wb) / max(len(wa), len(wb))


def _continues(a: Line, b: Line, same_script: bool, other_script: bool = False) -> bool:
    """Whether ``b`` goes on with ``a``'s utterance: one screenplay line, or ``a`` not ending a sentence, or ``b``
    going on in lower case or after "..."; a short pause also joins two sentences, unless the screenplay holds them
    as two lines."""
    first = b.text.lstrip(" -–—\"'")
    ends = bool(_END.search(a.text.strip()))
    return (same_script or not ends or first[:1].islower() or b.text.lstrip().startswith(("...", "…"))
            or (b.start - a.end <= CONTINUOUS_GAP and not other_script))


def join_groups(lines: list[Line], characters: list[str | None], speakers: list[str | None] | None = None, *,
                script_matches: list[int | None] | None = None, blocked: set[int] | None = None,
                max_gap: float = MAX_JOIN_GAP) -> list[list[int]]:
    """Indices of ``lines`` grouped into utterances (each group consecutive, in order of their first lines; most
    groups one line; the one exception a line resumed after an interruption, :func:`_resume_across`).

    Lines in ``blocked`` (overlapped speech, group cues) stay alone; a line that is another speaker's part of one cue
    (``Line.turn``: a dialogue dash) never joins the line before it, whoever the attribution says speaks both."""
    speakers = speakers or [None] * len(lines)
    blocked = blocked or set()
    groups: list[list[int]] = []
    for i, ln in enumerate(lines):
        if groups:
            g = groups[-1]
            j = g[-1]
            prev = lines[j]
            mj, mi = (script_matches[j], script_matches[i]) if script_matches else (None, None)
            same_script = mj is not None and mj == mi
            one = (characters[i] == characters[j] and (characters[i] or speakers[i])
                   and (speakers[i] is None or speakers[j] is None or speakers[i] == speakers[j]))
            if (one and i not in blocked and j not in blocked and not ln.turn
                    and (ln.speaker_cue or None) in (None, prev.speaker_cue)
                    and -0.5 <= ln.start - prev.end <= max_gap
                    and ln.end - lines[g[0]].start <= MAX_UTTERANCE
                    and _continues(prev, ln, same_script, mj is not None and mi is not None and mj != mi)):
                g.append(i)
                continue
        groups.append([i])
    return _resume_across(groups, lines, characters, script_matches, max_gap)


def _resume_across(groups: list[list[int]], lines: list[Line], characters: list[str | None],
                   script_matches: list[int | None] | None, max_gap: float) -> list[list[int]]:
    """A line cut by an interruption and resumed after it (its cue, the interrupter's, the rest of it — one
    screenplay line for the first and last) is one utterance around the interrupter's."""
    if not script_matches:
        return groups
    out: list[list[int]] = []
    for g in groups:
        if len(out) >= 2 and len(g) == 1 and len(out[-1]) == 1:
            first, cut, i = out[-2][-1], out[-1][0], g[0]
            j = script_matches[i]
            if (j is not None and script_matches[first] == j and script_matches[cut] != j
                    and characters[first] and characters[first] == characters[i] != characters[cut]
                    and lines[i].start - lines[first].end <= max_gap
                    and lines[i].end - lines[out[-2][0]].start <= MAX_UTTERANCE):
                out[-2].append(i)
                continue
        out.append(g)
    return out


MAX_SCRIPT_EXTRA = 3  # words a screenplay line may hold beyond its cues' (or 60 % more): condensing leaves out a few


def fuller_from_script(lines: list[Line], matches: list[int | None], script_lines: list[str], *,
                       max_gap: float = MAX_JOIN_GAP) -> tuple[list[Line], list[str]]:
    """Lines to align, with the screenplay's fuller text where it holds the subtitle's: consecutive cues matched to
    one screenplay line (a split line) become one line, and a condensed cue gets the screenplay line's words, so
    the aligner places every spoken word instead of stretching a shortened text over the whole utterance (and the
    neighbours' edges follow). Returns the lines and, per returned line, its subtitle text (joined)."""
    from rapidfuzz.distance import LCSseq

    out: list[Line] = []
    written: list[str] = []
    cues_of = Counter(j for j in matches if j is not None)
    i = 0
    while i < len(lines):
        j = matches[i]
        k = i + 1
        while (j is not None and k < len(lines) and matches[k] == j and lines[k].speaker_cue == lines[i].speaker_cue
               and -0.5 <= lines[k].start - lines[k - 1].end <= max_gap):
            k += 1
        group = lines[i:k]
        sub = " ".join(ln.text.strip() for ln in group if ln.text.strip())
        if j is not None and cues_of[j] == k - i:  # (a line cut by an interruption keeps its cues' texts)
            mine, theirs = words_of(sub), words_of(script_lines[j])
            held = LCSseq.similarity(mine, theirs) / max(1, len(mine))
            extra = len(theirs) - len(mine)
            if (mine and held >= 0.8 and (k - i > 1 or 0 < extra) and extra <= max(MAX_SCRIPT_EXTRA, 0.6 * len(mine))
                    and not (k - i == 1 and _rest_nearby(lines, i, mine, theirs, max_gap))):
                out.append(replace(join_lines(group), text=script_lines[j].strip(), words=[]))
                written.append(sub)
                i = k
                continue
        out.append(lines[i])
        written.append(lines[i].text)
        i += 1
    return out, written


def _rest_nearby(lines: list[Line], i: int, mine: list[str], theirs: list[str], max_gap: float, *, reach: int = 3) -> bool:
    """Whether the screenplay words (``theirs``) that line ``i``'s (``mine``) lack are another cue's text up to
    ``reach`` cues away and ``max_gap`` seconds from it: the line was split around an interruption's cue (the cues
    of another screenplay line between its halves), not condensed, and keeps its own text."""
    from difflib import SequenceMatcher

    from rapidfuzz.distance import LCSseq

    kept = {b + n for _, b, size in SequenceMatcher(None, mine, theirs, autojunk=False).get_matching_blocks()
            for n in range(size)}
    rest = [w for n, w in enumerate(theirs) if n not in kept]
    ln = lines[i]
    for m in [*range(max(0, i - reach), i), *range(i + 1, min(len(lines), i + 1 + reach))]:
        other = words_of(lines[m].text)
        apart = lines[m].start - ln.end if m > i else ln.start - lines[m].end
        if (len(other) >= 2 and apart <= max_gap and LCSseq.similarity(other, rest) >= 0.8 * len(other)
                and len(other) >= 0.5 * len(rest)):
            return True
    return False


def join_lines(lines: list[Line]) -> Line:
    """One line from consecutive lines of one utterance (text and words in order, tags merged)."""
    if len(lines) == 1:
        return lines[0]
    first = lines[0]
    tags = list(dict.fromkeys(t for ln in lines for t in ln.tags))
    return Line(start=min(ln.start for ln in lines), end=max(ln.end for ln in lines),
                text=" ".join(ln.text.strip() for ln in lines if ln.text.strip()),
                words=[w for ln in lines for w in ln.words], speaker_cue=first.speaker_cue, tags=tags,
                confidence=min(ln.confidence for ln in lines), index=first.index, turn=first.turn)


def speech_edges(line: Line, regions: list[Region], prev_end: float | None, next_start: float | None, *,
                 max_extend: float = MAX_EXTEND) -> tuple[float, float]:
    """(start, end) of an utterance: its words' edges, moved out to the edges of the speech region they lie in
    (not past ``max_extend`` seconds, nor into the neighbouring lines); never inside the line's words."""
    start, end = line.start, line.end
    if line.words:
        start, end = min(start, line.words[0].start), max(end, line.words[-1].end)
    lo = (prev_end + NEIGHBOUR_GAP) if prev_end is not None else 0.0
    hi = (next_start - NEIGHBOUR_GAP) if next_start is not None else float("inf")
    for r in regions:
        if r.start <= start <= r.end + 0.02 and r.start < start - MIN_EXTEND:
            start = max(r.start, start - max_extend, min(lo, start))
        if r.start - 0.02 <= end <= r.end and r.end > end + MIN_EXTEND:
            end = min(r.end, end + max_extend, max(hi, end))
    return round(start, 3), round(end, 3)


TOUCH_GAP = 2 * NEIGHBOUR_GAP + 0.01  # seconds: edges this close after moving out to the speech are one stretch


NEAR_GAP = 0.25  # seconds: two speakers' utterances this close may still overlap (a missed interruption's words)


def touching_pairs(lines: list[Line], who: list[str | None], *, gap: float = TOUCH_GAP) -> list[int]:
    """``k`` for each pair of utterances (``k``, ``k + 1``; in time order, edges already moved out to the speech)
    of two named speakers no more than ``gap`` seconds apart: by default (``TOUCH_GAP``) speech that runs into
    each other without a pause; with ``NEAR_GAP`` also an interruption a short pause apart."""
    return [k for k in range(len(lines) - 1)
            if who[k] and who[k + 1] and who[k] != who[k + 1] and lines[k + 1].start - lines[k].end <= gap]


def touching_turns(lines: list[Line], who: list[str | None]) -> set[int]:
    """Indices of utterances whose speech runs into a neighbour's of another speaker (:func:`touching_pairs`): an
    interruption or speech over speech, where the cut between them lies inside somebody's words; both sides are
    overlapped speech, not clean single-voice clips."""
    return {i for k in touching_pairs(lines, who) for i in (k, k + 1)}


SELF_OVERLAP = 0.25  # seconds: one voice's two utterances never run over each other by more than this


def one_voice_overlaps(lines: list[Line], who: list[str | None], *,
                       most: float = SELF_OVERLAP) -> list[tuple[int, int]]:
    """(kept, interrupter) for each pair of consecutive utterances given to one speaker whose spans run over each
    other by more than ``most`` seconds: one voice cannot say two lines at once, so the two are speech over speech
    and the one with less time of its own (``interrupter``) is somebody else's interruption that the speaker
    clustering gave to the louder voice around it."""
    out = []
    for k in range(len(lines) - 1):
        a, b = lines[k], lines[k + 1]
        over = a.end - b.start
        if who[k] and who[k] == who[k + 1] and over > most:
            own_a, own_b = (a.end - a.start) - over, (b.end - b.start) - over
            out.append((k, k + 1) if own_a >= own_b else (k + 1, k))
    return out


OVERLAP_COUNT = 1.5  # mean local-speaker count (pipeline.stages.overlap) from which a frame holds two voices
OVERLAP_NEAR = 0.3  # seconds: a run of two-voice frames this close to a junction belongs to it
MAX_OVERLAP = 1.5  # seconds of speech over speech one interruption may hold


def overlap_span(counts, t0: float, frame: float, junction: float, *, near: float = OVERLAP_NEAR,
                 most: float = MAX_OVERLAP) -> tuple[float, float] | None:
    """(start, end) of the speech over speech at the junction of two touching utterances: the run of frames
    where ``counts`` (speakers talking per frame, from ``t0`` seconds) reaches ``OVERLAP_COUNT`` nearest to
    ``junction``, within ``near`` seconds of it and at most ``most`` seconds long; None when there is none."""
    import numpy as np

    two = np.asarray(counts, dtype=np.float64) >= OVERLAP_COUNT
    edges = np.flatnonzero(np.diff(np.concatenate([[0], two.astype(np.int8), [0]])))
    best = None
    for a, b in zip(edges[::2], edges[1::2]):
        s, e = t0 + a * frame, t0 + b * frame
        gap = max(s - junction, junction - e, 0.0)
        if gap <= near and frame < e - s <= most and (best is None or gap < best[0]):
            best = (gap, s, e)
    return (round(best[1], 3), round(best[2], 3)) if best else None


def text_score(candidate: str, asr: str) -> float:
    """How well a written text matches the ASR words of its window, 0..1: character-level similarity of the
    normalised texts (a misheard word still shares most letters; Whisper tiny on hard audio mishears many)."""
    from rapidfuzz import fuzz

    a, b = " ".join(words_of(candidate)), " ".join(words_of(asr))
    if not a or not b:
        return 0.0
    return fuzz.ratio(a, b) / 100.0


def fill_edges(text: str, asr_words: list[Word], *, min_probability: float = MIN_EDGE_PROBABILITY,
               most: int = MAX_EDGE_WORDS) -> str:
    """``text`` with the confidently heard ASR words before its first and after its last word added (a condensed
    subtitle leaves out words the speaker said; the ASR of the window heard them). Unchanged when the text's ends
    are not found in the ASR words or the extra words are not clearly heard."""
    from difflib import SequenceMatcher

    mine, heard = words_of(text), [words_of(w.text) for w in asr_words]
    flat = [(k, t) for k, ws in enumerate(heard) for t in ws]
    if not mine or not flat:
        return text
    blocks = [b for b in SequenceMatcher(None, mine, [t for _, t in flat], autojunk=False).get_matching_blocks() if b.size]
    if not blocks:
        return text
    out = text.strip()
    first, last = blocks[0], blocks[-1]
    if first.a == 0 and first.b > 0:
        lead = asr_words[:flat[first.b][0]]
        if 0 < len(lead) <= most and all(w.probability >= min_probability for w in lead):
            head = asr_words[flat[first.b][0]].text.strip()
            body = out[:1].lower() + out[1:] if head[:1].islower() else out
            out = " ".join(w.text.strip() for w in lead) + " " + body
    if last.a + last.size == len(mine) and last.b + last.size < len(flat):
        tail = asr_words[flat[last.b + last.size - 1][0] + 1:]
        if 0 < len(tail) <= most and all(w.probability >= min_probability for w in tail):
            out = out.rstrip(".,;: ") + " " + " ".join(w.text.strip() for w in tail)
    return out


def energy_edges(audio, rate: int, t0: float, start: float, end: float, lo: float, hi: float, *,
                 max_extend: float = MAX_EXTEND, pause: float = PAUSE, floor_db: float = SPEECH_FLOOR_DB) -> tuple[float, float]:
    """(start, end) moved out over the speech that runs on from the words without a pause.

    ``audio`` starts at ``t0`` seconds. Speech is a 10 ms frame within ``floor_db`` of the line's speech level
    (the ``LEVEL_PERCENTILE`` of its frames) (music and ambience under dialogue sit well below it); from each edge the speech is followed outwards
    until a pause of ``pause`` seconds, the neighbour bound (``lo``/``hi``) or ``max_extend``. An edge moves only
    when the speech runs on at least ``MIN_EXTEND`` (else the aligned word edge is the better one)."""
    import numpy as np

    hop = max(1, int(rate * 0.01))
    n = len(audio) // hop
    if n < 3 or end <= start:
        return start, end
    frames = np.asarray(audio[: n * hop], dtype=np.float64).reshape(n, hop)
    db = 10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-12)
    t = t0 + (np.arange(n) + 0.5) * 0.01
    inside = (t >= start) & (t <= end)
    if inside.sum() < 3:
        return start, end
    level = float(np.percentile(db[inside], LEVEL_PERCENTILE))  # robust to loose edges (pauses inside the span)
    if level < SILENT_DB:  # the words lie in silence: nothing to follow
        return start, end
    speech = db >= level - floor_db
    need = max(1, int(round(pause / 0.01)))

    def walk(edge: float, step: int, bound: float) -> float:
        i = int(np.clip(np.searchsorted(t, edge), 0, n - 1))
        last, quiet = i, 0
        limit = edge - max_extend if step < 0 else edge + max_extend
        while 0 <= i + step < n:
            i += step
            if (t[i] < max(bound, limit)) if step < 0 else (t[i] > min(bound, limit)):
                break
            if speech[i]:
                last, quiet = i, 0
            else:
                quiet += 1
                if quiet >= need:
                    break
        moved = t[last] - 0.005 if step < 0 else t[last] + 0.005
        return float(moved) if abs(moved - edge) >= MIN_EXTEND else edge

    return round(min(start, walk(start, -1, lo)), 3), round(max(end, walk(end, 1, hi)), 3)


def choose_text(subtitle: str | None, script: str | None, asr_words: list[Word] | None, *, origin: str = "subtitle",
                min_score: float = MIN_TEXT_SCORE, min_asr: float = MIN_ASR_CONFIDENCE,
                overlapped: bool = False) -> TextChoice:
    """The text of one utterance (module docstring). ``origin`` "asr": the line is ASR's (a capture).
    ``overlapped``: another voice runs into the window, so its ASR words never replace the written text."""
    written = [(s, t.strip()) for s, t in (("script", script), ("subtitle", subtitle if origin != "asr" else None))
               if t and t.strip()]
    asr = " ".join(w.text.strip() for w in asr_words or []).strip()
    if not asr:
        if origin == "asr":
            return TextChoice(subtitle or "", "asr", None)
        if script and subtitle and similarity(subtitle, script) >= 0.5 and len(words_of(script)) >= len(words_of(subtitle)):
            return TextChoice(script.strip(), "script", None)
        return TextChoice((subtitle or script or "").strip(), "subtitle" if subtitle else "script", None)
    confidence = sum(w.probability for w in asr_words) / len(asr_words)
    if not written:
        return TextChoice(asr, "asr", round(confidence, 3) if origin == "asr" else None)
    scored = sorted(((text_score(t, asr) + (SCRIPT_PRIOR if s == "script" else 0.0), s, t) for s, t in written),
                    key=lambda x: -x[0])
    best, source, text = scored[0]
    raw = round(min(1.0, best - (SCRIPT_PRIOR if source == "script" else 0.0)), 3)
    if raw >= min_score:
        if source == "subtitle":
            filled = fill_edges(text, asr_words)
            if filled != text:
                return TextChoice(filled, "subtitle+asr", round(text_score(filled, asr), 3))
        return TextChoice(text, source, raw)
    if origin == "asr" or (confidence >= min_asr and not overlapped and not repeats_itself(asr)):
        return TextChoice(asr, "asr", raw, check=origin != "asr")
    return TextChoice(text, source, raw, check=True)  # ASR heard nothing clearly either: keep the written text


LOOP_REPEATS = 4  # the same word (or pair of words) this many times running: Whisper caught in a loop


def repeats_itself(text: str, times: int = LOOP_REPEATS) -> bool:
    """Whether ``text`` holds a word or a pair of words said ``times`` times running ("no, no, no, no"): a
    transcript caught in a loop (Whisper on a hard window), never a candidate over the written text."""
    w = words_of(text)
    for n in (1, 2):
        for i in range(len(w) - n * times + 1):
            if all(w[i + k * n: i + (k + 1) * n] == w[i: i + n] for k in range(1, times)):
                return True
    return False


def script_text(indices: list[int | None], script_lines: list[str], shared: set[int] | frozenset = frozenset()
                ) -> str | None:
    """The screenplay text of an utterance: its lines' matched screenplay lines, each once, in order; None where
    one of them is ``shared`` with another utterance (a line cut in two by an interruption: each part keeps its
    subtitle text rather than both holding the whole line)."""
    seen = [j for j in dict.fromkeys(i for i in indices if i is not None)]
    if shared.intersection(seen):
        return None
    return " ".join(script_lines[j].strip() for j in seen) if seen else None


def words_in(words: list[Word], start: float, end: float) -> list[Word]:
    """The ASR words whose midpoint lies in [start, end)."""
    return [w for w in words if start <= (w.start + w.end) / 2 < end and w.text.strip()]
