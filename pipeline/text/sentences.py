"""The one sentence splitter: incremental for streamed model output (each finished sentence can be spoken at
once), and over whole texts for text-to-speech chunks.

:class:`SentenceSplitter` takes text deltas as they arrive and returns sentences as soon as their end is
certain: a terminator (``.``, ``!``, ``?``, ``…``, ``...``) with its closing quotes/brackets, then whitespace,
then a next character that does not continue the sentence (a lowercase letter continues it). It keeps
abbreviations (``Mr.``, ``Dr.``, ``e.g.``), initials (``J. R.``), decimals (``3.14``), list markers (``1.``) and
mid-sentence ellipses (``well... maybe``) inside their sentence. Newlines end a sentence. A run-on longer than
``max_chars`` is cut at its last comma/space so speech can start anyway.

:func:`split_sentences` splits a whole text; :func:`pack_sentences` yields text-to-speech chunks of at most
``max_chars`` (whole sentences packed together, a longer sentence cut by the same run-on rule), lazily.
"""

from __future__ import annotations

import re
from typing import Iterator

from ..errors import BadInputError

# never a sentence end when followed by more text
ABBREVIATIONS = frozenset(
    "mr mrs ms mx dr prof st jr sr lt col gen capt cpt sgt maj cmdr adm gov sen rep rev hon fr sr "
    "mt ft ave blvd dept inc ltd co corp vs cf e.g i.e a.m p.m approx est misc".split()
)
# abbreviations only when a number follows ("No. 5", "p. 12")
NUMBER_ABBREVIATIONS = frozenset("no nos vol p pp fig art ch sec op".split())

_CLOSERS = "\"'”’»)]"
_BOUNDARY_RE = re.compile(r"\n|(?:\.{2,}|…|[.!?]+)[" + re.escape(_CLOSERS) + r"]*")
_WORD_BEFORE_RE = re.compile(r"([A-Za-z][A-Za-z.]*)$")
_NUMBER_BEFORE_RE = re.compile(r"(?:^|\n)\s*\d{1,3}$")


class SentenceSplitter:
    """Feed text deltas, get complete sentences back; call :meth:`flush` at the end for the remainder."""

    def __init__(self, max_chars: int = 240):
        self.max_chars = max_chars
        self._buf = ""

    @property
    def pending(self) -> str:
        """Text received but not yet returned as a sentence."""
        return self._buf

    def feed(self, delta: str) -> list[str]:
        """Add a delta; return the sentences it completed (possibly none)."""
        if not delta:
            return []
        self._buf += delta
        return self._drain(final=False)

    def flush(self) -> list[str]:
        """Return every remaining sentence, including an unterminated last one, and reset."""
        out = self._drain(final=True)
        rest = self._buf.strip()
        self._buf = ""
        if rest:
            out.append(rest)
        return out

    # -- internals ------------------------------------------------------------------------------------
    def _drain(self, final: bool) -> list[str]:
        out: list[str] = []
        while True:
            cut = _find_boundary(self._buf, final)
            if cut is None and not final and len(self._buf) > self.max_chars:
                cut = _soft_cut(self._buf, self.max_chars)
            if cut is None:
                return out
            sentence = self._buf[:cut].strip()
            self._buf = self._buf[cut:].lstrip()
            if sentence:
                out.append(sentence)


def _find_boundary(buf: str, final: bool) -> int | None:
    """Index just after the first certain sentence end in buf, or None (none yet / undecided)."""
    for m in _BOUNDARY_RE.finditer(buf):
        end = m.end()
        if m.group() == "\n":
            return end
        if end >= len(buf):
            return end if final else None  # cannot know what follows yet
        if not buf[end].isspace():
            continue  # 3.14, e.g.x, example.com, "?!" handled by the regex
        j = end
        while j < len(buf) and buf[j].isspace():
            if buf[j] == "\n":
                return end
            j += 1
        if j >= len(buf):
            if final:
                return end
            return None  # wait for the next visible character
        nxt = buf[j]
        term = m.group().rstrip(_CLOSERS)
        if nxt.islower():
            continue  # "well... maybe", "e.g. this", '"Stop!" he said'
        if term == ".":
            before = buf[: m.start()]
            wm = _WORD_BEFORE_RE.search(before)
            word = wm.group(1).lower().rstrip(".") if wm else ""
            if word in ABBREVIATIONS:
                continue
            if nxt.isdigit() and word in NUMBER_ABBREVIATIONS:
                continue
            if wm and len(wm.group(1)) == 1 and wm.group(1).isupper() and wm.group(1) != "I":
                continue  # an initial: "J. R. R. Tolkien"
            if _NUMBER_BEFORE_RE.search(before) and (m.start() < 4 or "\n" in before[-6:]):
                continue  # a list marker "1. "
        return end
    return None


def _soft_cut(buf: str, limit: int) -> int:
    """Where to cut a run-on sentence: after the last comma/semicolon/dash, else the last space, before limit."""
    window = buf[:limit]
    for sep in (", ", "; ", ": ", " — ", " - "):
        k = window.rfind(sep)
        if k > limit // 3:
            return k + len(sep.rstrip())
    k = window.rfind(" ")
    return k if k > 0 else limit


_CLAUSE_END_RE = re.compile(r"[,;:]\s+|\s+[—–-]\s+")


def leading_clause(text: str, min_words: int = 4) -> str | None:
    """The first clause of an unfinished sentence once it is certain ("Well, my old friend, I know" → "Well, my
    old friend,"): text up to the first comma/semicolon/colon/dash that follows at least ``min_words`` words and has
    more text after it; None when there is no such break yet. Speaking it early starts a spoken reply sooner."""
    for m in _CLAUSE_END_RE.finditer(text):
        head = text[: m.start()].strip()
        if len(head.split()) >= min_words and m.end() < len(text):
            return text[: m.end()].rstrip()
    return None


def split_sentences(text: str, max_chars: int = 240) -> list[str]:
    """Split a whole text into sentences (same rules as the streaming splitter)."""
    s = SentenceSplitter(max_chars=max_chars)
    return s.feed(text) + s.flush()


def iter_sentences(text: str, max_chars: int = 240, step: int = 4096) -> Iterator[str]:
    """The sentences of a whole text, lazily: the text is fed to a :class:`SentenceSplitter` ``step`` characters
    at a time, so a long text is never turned into one list (a run-on is cut near ``max_chars`` as it streams)."""
    splitter = SentenceSplitter(max_chars=max_chars)
    for i in range(0, len(text), step):
        yield from splitter.feed(text[i: i + step])
    yield from splitter.flush()


def cut_long(sentence: str, max_chars: int) -> Iterator[str]:
    """Pieces of at most ``max_chars`` of one sentence, cut by the run-on rule (last comma/semicolon/colon/dash
    in the window, else the last space, else a hard cut inside one enormous word)."""
    while len(sentence) > max_chars:
        cut = _soft_cut(sentence, max_chars)
        piece = sentence[:cut].strip()
        if piece:
            yield piece
        sentence = sentence[cut:].lstrip()
    if sentence:
        yield sentence


def pack_sentences(text: str, max_chars: int = 240) -> Iterator[str]:
    """Chunks of at most ``max_chars`` (whitespace collapsed): whole sentences packed together, longer ones cut.

    Lazy: a 100 000-character text is never copied into a list of sentences. Raises BadInputError for
    ``max_chars`` under 20."""
    if max_chars < 20:
        raise BadInputError("max_chars must be at least 20")
    buf = ""
    for sentence in iter_sentences(text, max_chars):
        for piece in cut_long(" ".join(sentence.split()), max_chars):
            if buf and len(buf) + 1 + len(piece) > max_chars:
                yield buf
                buf = piece
            else:
                buf = f"{buf} {piece}" if buf else piece
    if buf:
        yield buf
