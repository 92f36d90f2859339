"""The utterances stage of the analysis (between attribute and save): split cues of one speaker joined, edges
moved out to the speech, and each utterance's text chosen against the audio (pipeline.text.utterances); two
utterances of different speakers whose speech runs into each other are marked overlapped.

Its result has the attribute stage's shape (lines, attributions, line_speakers, overlaps) for the joined lines,
plus ``line_index`` (per utterance, the position of its first line in the subtitle lines, for its line id) and
``text_choice`` (per utterance {source, score, check}). ASR for scoring: the ASR stage's words where it ran, else
the ASR backend on each utterance's window; where no ASR model is there the choice falls back to the written
texts (a warning says so).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Callable

import numpy as np

from pipeline import media as media_io
from pipeline.jobs import StageContext
from pipeline.types import NO_CUE, Line, Word, line_from_dict

ASR_PAD = 0.15  # seconds of audio around an utterance given to ASR
WORD_SLACK = 0.05  # seconds: an ASR word whose midpoint is this far outside the utterance still counts


def _window_asr(ctx: StageContext, io: "AudioAccess", spans: list[tuple[float, float]]) -> tuple[list, str | None]:
    """ASR words of each span (None each when no ASR model can be loaded), plus a warning."""
    from pipeline.errors import WeaverError
    from pipeline.stages.asr import model_language
    from pipeline.text.utterances import words_in

    try:
        asr, model = io.asr()
        duration = io.duration
        out: list = []
        for i, (a, b) in enumerate(spans):
            if ctx.cancel is not None:
                ctx.cancel.check()
            t0 = max(0.0, a - ASR_PAD)
            audio = io.read(t0, min(duration, b + ASR_PAD))
            tr = asr.transcribe(audio, media_io.ANALYSIS_RATE, language=model_language(model))
            words = [replace(w, start=w.start + t0, end=w.end + t0) for ln in tr.lines for w in ln.words]
            out.append(words_in(words, a - WORD_SLACK, b + WORD_SLACK))
            ctx.progress((i + 1) / max(1, len(spans)), "checking line texts against the audio")
        return out, None
    except (WeaverError, ImportError, OSError) as e:
        return [None] * len(spans), f"line texts not checked against the audio ({str(e).splitlines()[0][:160]})"


def _edges(io: "AudioAccess", lines: list[Line]) -> list[Line]:
    """Each line's edges moved out over the speech its words leave out (pipeline.text.utterances.energy_edges),
    never into its neighbours: the audio around each line is read on its own."""
    from pipeline.text.utterances import MAX_EXTEND, NEIGHBOUR_GAP, energy_edges

    duration = io.duration
    out: list[Line] = []
    for k, ln in enumerate(lines):
        start, end = ln.start, ln.end
        if ln.words:
            start, end = min(start, ln.words[0].start), max(end, ln.words[-1].end)
        lo = lines[k - 1].end + NEIGHBOUR_GAP if k else 0.0
        hi = lines[k + 1].start - NEIGHBOUR_GAP if k + 1 < len(lines) else duration
        t0 = max(0.0, start - MAX_EXTEND - 0.1)
        audio = io.read(t0, min(duration, end + MAX_EXTEND + 0.1))
        s, e = energy_edges(audio, media_io.ANALYSIS_RATE, t0, start, end, lo, hi)
        out.append(replace(ln, start=s, end=e))
    return out


HEARD_SOURCES = ("voice", "voiceprint", "none")  # attributions that come from the speaker clustering, not a name
OVERLAP_WINDOW = 5.0  # seconds of audio around a junction given to the overlapped-speech model (its chunk)


def _overlap_edges(io: "AudioAccess", lines: list[Line], pairs: list[int]) -> tuple[list[Line], set[int]]:
    """Lines with each pair (``k``, ``k + 1``) that holds speech over speech at its junction
    (pipeline.text.utterances.overlap_span) moved to it: the first runs on to its end, the second starts at its
    beginning (not before the middle of the first); plus the indices of the lines found overlapped.
    Unchanged where the overlapped-speech model is not installed."""
    from pipeline.stages import overlap
    from pipeline.text.utterances import overlap_span

    overlapped: set[int] = set()
    if not pairs or not overlap.available():
        return lines, overlapped
    out = list(lines)
    for k in pairs:
        a, b = out[k], out[k + 1]
        junction = (a.end + b.start) / 2
        t0 = max(0.0, junction - OVERLAP_WINDOW / 2)
        audio = io.read(t0, min(io.duration, t0 + OVERLAP_WINDOW))
        span = overlap_span(overlap.speaker_counts(audio, step=0.25), t0, overlap.FRAME, junction)
        if span is None:
            continue
        # an interruption cuts into the other line's second half (and may end inside it)
        end = round(max(a.end, min(span[1], b.end)), 3)
        start = round(min(b.start, max(span[0], (a.start + a.end) / 2)), 3)
        out[k], out[k + 1] = replace(a, end=end), replace(b, start=start)
        overlapped |= {k, k + 1}
    return out, overlapped


@dataclass
class AudioAccess:
    """What the stage needs of the item, given by the analysis chain (pipeline.workflows.analysis)."""

    read: Callable[[float, float], np.ndarray]  # [start, end) seconds of the 16 kHz mono analysis audio
    duration: float
    asr: Callable[[], tuple]  # -> (ASR backend, model name); may raise ModelMissingError
    script: Callable[[], object]  # -> the item's Script or None


def utterances(ctx: StageContext, opts, io: AudioAccess) -> dict:
    from pipeline.text import utterances as ut
    from pipeline.text.attribution import align_script
    from pipeline.types import Attribution

    att = ctx.results["attribute"]
    lines = [line_from_dict(d) for d in att["lines"]]
    attributions = [Attribution(**a) for a in att["attributions"]]
    speakers = att.get("line_speakers")
    overlaps = set(att.get("overlaps") or [])
    origin = att["origin"]
    if not lines or not getattr(opts, "verbatim", True):
        return {**att, "line_index": [ln.index for ln in lines], "text_choice": None}
    script = io.script() if att.get("script_used") else None
    matches: list[int | None] | None = None
    script_lines: list[str] = []
    if script is not None and script.lines:
        al = align_script(lines, script)
        matches = [j if (j is not None and q > 0) else None for j, q in zip(al.matches, al.quality)]
        script_lines = [sl.text for sl in script.lines]
    written = (ctx.results.get("align") or {}).get("subtitle_texts")
    if not written or len(written) != len(lines):  # no screenplay text was put in: the lines hold the subtitles
        written = [ln.text for ln in lines]
    groups = ut.join_groups(lines, [a.character for a in attributions], speakers, script_matches=matches,
                            blocked=overlaps)
    joined = [ut.join_lines([lines[i] for i in g]) for g in groups]
    edged = _edges(io, joined)
    who = [attributions[g[0]].character or (speakers[g[0]] if speakers else None) for g in groups]
    touching = ut.touching_turns(edged, who)
    one_voice = ut.one_voice_overlaps(edged, who)
    touching |= {k for pair in one_voice for k in pair}
    interrupters = {b for _, b in one_voice}
    # a pair a short pause apart may be an interruption whose first words the second line's edge left out: the
    # overlapped-speech model decides, and where it hears two voices the pair is overlapped too
    edged, overlapped = _overlap_edges(io, edged, ut.touching_pairs(edged, who, gap=ut.NEAR_GAP))
    touching |= overlapped
    asr_stage = ctx.results.get("asr") or {}
    warnings: list[str] = []
    if origin == "asr":
        asr_texts = [ln.words or [Word(ln.start, ln.end, ln.text, ln.confidence)] for ln in edged]
    elif not asr_stage.get("skipped", True) and asr_stage.get("lines"):
        words = [w for d in asr_stage["lines"] for w in line_from_dict(d).words]
        asr_texts = [ut.words_in(words, ln.start - WORD_SLACK, ln.end + WORD_SLACK) for ln in edged]
    else:
        asr_texts, warning = _window_asr(ctx, io, [(ln.start, ln.end) for ln in edged])
        warnings += [warning] if warning else []
    out_lines, choices = [], []
    owners: dict[int, set[int]] = {}
    for k, g in enumerate(groups):
        for i in g:
            if matches and matches[i] is not None:
                owners.setdefault(matches[i], set()).add(k)
    shared = {j for j, ks in owners.items() if len(ks) > 1}
    for k, (g, ln, asr_text) in enumerate(zip(groups, edged, asr_texts)):
        scr = ut.script_text([matches[i] for i in g], script_lines, shared) if matches else None
        subtitle = " ".join(written[i].strip() for i in g if written[i].strip() and lines[i].index != NO_CUE)
        ch = ut.choose_text(subtitle if origin == "subtitle" else None, scr, asr_text, origin=origin,
                            overlapped=k in touching)
        if ch.source == "asr" and origin == "asr":
            ch.text = ln.text  # the ASR line's own text (its words joined may differ in spacing)
        if ch.text != ln.text:  # the words were aligned to the other text: the line keeps its edges, not them
            ln = replace(ln, text=ch.text, words=[] if origin == "subtitle" else ln.words)
        out_lines.append(ln)
        choices.append({"source": ch.source, "score": ch.score, "check": ch.check})
    new_index = {i: k for k, g in enumerate(groups) for i in g}
    merged_atts = []
    line_speakers = [speakers[g[0]] for g in groups] if speakers else speakers
    unnamed = 0
    for k, g in enumerate(groups):
        a = replace(attributions[g[0]], line_index=k, confidence=min(attributions[i].confidence for i in g))
        if k in interrupters and a.source in HEARD_SOURCES:  # another voice's interruption: not this speaker's line
            a, unnamed = replace(a, character=None, confidence=0.0, source="none"), unnamed + 1
            if line_speakers:
                line_speakers[k] = None
        merged_atts.append(asdict(a))
    n_joined = sum(len(g) - 1 for g in groups)
    n_check = sum(c["check"] for c in choices)
    ctx.progress(1.0, f"{n_joined} split line{'s' if n_joined != 1 else ''} joined, {n_check} to check"
                 + (f", {unnamed} interruption{'s' if unnamed != 1 else ''} by another voice left unnamed"
                    if unnamed else ""))
    return {**att, "lines": [ln.to_dict() for ln in out_lines], "attributions": merged_atts,
            "line_speakers": line_speakers, "interruptions_unnamed": unnamed,
            "overlaps": sorted({new_index[i] for i in overlaps if i in new_index} | touching),
            "line_index": [lines[g[0]].index for g in groups], "text_choice": choices,
            "joined": n_joined, "warnings": list(att.get("warnings") or []) + warnings}


