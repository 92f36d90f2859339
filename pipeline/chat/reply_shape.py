"""Shaping a streamed reply so it stays speakable: stop strings, a length cap at a sentence end, no repeats.

Pure logic, no I/O: :class:`ReplyShaper` is fed the model's text deltas and says which sentences the reply keeps
and when it should stop; :func:`shape_reply` runs it over a whole stream. Rules, checked as sentences finish:

- a stop string ends the reply just before it (the model's own stop may miss one split across tokens);
- once the kept text reaches ``max_chars`` the reply ends at that sentence's end;
- a sentence whose normalised text equals, or is at least ``similarity`` (0..1, rapidfuzz ratio) like, an earlier
  sentence of the same reply ends the reply before it (small models loop on one sentence);
- a reply cut by the token cap (``truncated``) drops its unfinished last fragment when a whole sentence precedes it.

``text`` is always a prefix of the raw stream (original spacing kept), so the stored reply and the spoken
sentences agree with what was shown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable

from ..text.sentences import SentenceSplitter

DEFAULT_SIMILARITY = 0.9
SENTENCE_END = (".", "!", "?", "…", '"', "'", "”", "’", ")", "»")
_NORM_RE = re.compile(r"[^\w]+")


def normalise(sentence: str) -> str:
    """Lowercase words only: the form compared when looking for repeated sentences."""
    return _NORM_RE.sub(" ", sentence.lower()).strip()


def _ends_sentence(text: str) -> bool:
    t = text.rstrip()
    return bool(t) and t.endswith(SENTENCE_END) and bool(re.search(r"[.!?…][\"'”’)»]*$", t))


@dataclass
class ShapedReply:
    """A shaped reply: its text (a prefix of the raw stream), its sentences and why it stopped early (or None)."""

    text: str
    sentences: list[str] = field(default_factory=list)
    stopped: str | None = None  # "stop" | "length" | "repeat" | "truncated"


class ReplyShaper:
    """Feed deltas with :meth:`feed` (returns the sentences kept so far); stop reading once ``done`` is True."""

    def __init__(self, *, max_chars: int | None = None, stop: Iterable[str] | str | None = None,
                 similarity: float = DEFAULT_SIMILARITY, max_sentence_chars: int = 240):
        self.max_chars = int(max_chars) if max_chars else None
        self.stop = [s for s in ([stop] if isinstance(stop, str) else list(stop or [])) if s]
        self.similarity = float(similarity)
        self._splitter = SentenceSplitter(max_chars=max_sentence_chars)
        self._raw = ""
        self._cursor = 0  # end (in _raw) of the last sentence handed out by the splitter
        self._kept_end = 0  # end (in _raw) of the last kept sentence
        self._seen: list[str] = []
        self.sentences: list[str] = []
        self.stopped: str | None = None

    @property
    def done(self) -> bool:
        return self.stopped is not None

    @property
    def text(self) -> str:
        """The reply as kept so far: the raw text, cut where the reply stopped."""
        return (self._raw[: self._kept_end] if self.done else self._raw).rstrip()

    @property
    def shown(self) -> str:
        """The part of the reply safe to show now: the kept text, plus the unfinished sentence unless it looks like
        the start of an earlier one (it may become a repeat)."""
        if self.done:
            return self.text
        if self.max_chars is not None and len(self._raw.strip()) >= self.max_chars:
            return self.settled  # the cap ends the reply at a sentence end still to come: hold the fragment back
        pending = normalise(self._raw[self._cursor:])
        if pending and any(self._similar(pending, n[: len(pending)]) or n.startswith(pending) for n in self._seen):
            return self._raw[: self._cursor]
        return self._raw

    @property
    def settled(self) -> str:
        """The whole sentences kept so far: always a prefix of the final reply, however it ends."""
        return self.text if self.done else self._raw[: self._cursor]

    @property
    def pending(self) -> str:
        """The unfinished sentence received so far (empty once the reply stopped)."""
        return "" if self.done else self._raw[self._cursor:].lstrip()

    def feed(self, delta: str) -> list[str]:
        """Add a delta; return the sentences it completed that the reply keeps (none once done)."""
        if self.done or not delta:
            return []
        start = max(0, len(self._raw) - max((len(s) for s in self.stop), default=0))
        self._raw += delta
        cut = self._stop_at(start)
        if cut is not None:
            self._raw = self._raw[:cut]
            self._splitter = SentenceSplitter(max_chars=self._splitter.max_chars)  # re-split what precedes the stop
            out = self._take(self._splitter.feed(self._raw[self._cursor:]))
            out += self._take(self._splitter.flush())
            if not self.done:
                self.stopped = "stop"
            return out
        return self._take(self._splitter.feed(delta))

    def finish(self, truncated: bool = False) -> list[str]:
        """End of the stream: the remaining sentences kept (an unfinished fragment is dropped when ``truncated``)."""
        if self.done:
            return []
        rest = self._splitter.flush()
        if truncated and rest and not _ends_sentence(rest[-1]) and (self.sentences or len(rest) > 1):
            rest = rest[:-1]
            out = self._take(rest)
            if not self.done:
                self.stopped = "truncated"
            return out
        return self._take(rest)

    # -- internals --------------------------------------------------------------------------------
    def _stop_at(self, start: int) -> int | None:
        hits = [i for i in (self._raw.find(s, start) for s in self.stop) if i >= 0]
        return min(hits) if hits else None

    def _take(self, sentences: list[str]) -> list[str]:
        out: list[str] = []
        for s in sentences:
            if self.done:
                break
            at = self._raw.find(s, self._cursor)
            end = at + len(s) if at >= 0 else len(self._raw)
            norm = normalise(s)
            if norm and any(n == norm or self._similar(n, norm) for n in self._seen):
                self.stopped = "repeat"
                break
            self._cursor = end
            self._kept_end = end
            if norm:
                self._seen.append(norm)
            self.sentences.append(s)
            out.append(s)
            if self.max_chars is not None and len(self._raw[:end].strip()) >= self.max_chars:
                self.stopped = "length"
                break
        return out

    def _similar(self, a: str, b: str) -> bool:
        from rapidfuzz import fuzz

        return fuzz.ratio(a, b) >= self.similarity * 100

    def result(self) -> ShapedReply:
        return ShapedReply(text=self.text, sentences=list(self.sentences), stopped=self.stopped)


def shape_reply(deltas: Iterable[str], *, max_chars: int | None = None, stop: Iterable[str] | str | None = None,
                similarity: float = DEFAULT_SIMILARITY, truncated: bool = False) -> ShapedReply:
    """Shape a whole stream of deltas (reading stops as soon as the reply should end)."""
    shaper = ReplyShaper(max_chars=max_chars, stop=stop, similarity=similarity)
    for d in deltas:
        shaper.feed(d)
        if shaper.done:
            break
    shaper.finish(truncated=truncated)
    return shaper.result()
