"""Cutting a line in time: the one way a line is cut in two (a user split, and the same split made again when an
analysis run recreates the lines)."""

from __future__ import annotations

from ..types import Line, Word


def split_line_at(line: Line, at: float) -> tuple[Line, Line]:
    """Cut a line at a time inside it: words go to the side holding their midpoint and each side's text is made of
    its words; without word times the text is cut in proportion to time. Both halves keep the line's cue,
    tags and confidence."""
    left = [w for w in line.words if (w.start + w.end) / 2 < at]
    right = [w for w in line.words if (w.start + w.end) / 2 >= at]
    if line.words:
        text_a, text_b = " ".join(w.text.strip() for w in left), " ".join(w.text.strip() for w in right)
    else:
        toks = line.text.split()
        k = round(len(toks) * (at - line.start) / (line.end - line.start))
        text_a, text_b = " ".join(toks[:k]), " ".join(toks[k:])

    def half(start: float, end: float, text: str, words: list[Word]) -> Line:
        return Line(start=start, end=end, text=text, words=[Word(w.start, w.end, w.text, w.probability) for w in words],
                    speaker_cue=line.speaker_cue, tags=list(line.tags), confidence=line.confidence, index=line.index,
                    turn=line.turn and start == line.start)

    return half(line.start, at, text_a, left), half(at, line.end, text_b, right)


def join_text(a: str, b: str) -> str:
    """Two line texts as one (a space between, blanks dropped)."""
    a, b = a.strip(), b.strip()
    return f"{a} {b}".strip() if a and b else a or b
