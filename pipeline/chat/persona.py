"""A character persona for chat: the system prompt, example lines and the model/voice settings.

:func:`draft_persona` writes a first system prompt from the character's own lines: it cleans the subtitle
text (SDH tags, name cues, dashes), drops duplicates, spreads the sample across the whole film (one pick per
stretch of the dialogue), prefers long and distinctive lines and caps the total length. Everything in
:class:`Persona` is a plain field the user can edit afterwards.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import asdict, dataclass, field

from ..errors import BadInputError

MAX_LINE_CHARS = 200  # one example line in the prompt
MAX_EXAMPLES_CHARS = 2400  # all example lines together (≈600 tokens)
DEFAULT_TEMPERATURE = 0.7
# generation controls that suit speech (a persona's ``options`` override them): a short reply, sampled a little
# conservatively, with a repetition penalty small models need; ``max_chars`` ends the reply at a sentence end
GENERATION_DEFAULTS = {"max_tokens": 120, "top_p": 0.9, "repeat_penalty": 1.15, "max_chars": 300}
# editable controls: key -> (type, low, high); stop is a list of strings
GENERATION_CONTROLS = {"max_tokens": (int, 1, 8192), "temperature": (float, 0.0, 2.0), "top_p": (float, 0.0, 1.0),
                       "repeat_penalty": (float, 0.5, 2.0), "max_chars": (int, 0, 100_000), "stop": (list, None, None)}
CONTROL_ALIASES = {"repetition_penalty": "repeat_penalty", "num_predict": "max_tokens", "max_length": "max_chars"}


def generation_control(key: str, value) -> tuple[str, object]:
    """(canonical key, typed and range-checked value) for one generation control; BadInputError otherwise.

    Strings are accepted (the CLI's ``--set KEY=VALUE``): numbers are parsed, ``stop`` splits on ``|``."""
    key = CONTROL_ALIASES.get(key, key)
    if key not in GENERATION_CONTROLS:
        raise BadInputError(f"unknown generation control '{key}' (known: {', '.join(GENERATION_CONTROLS)})")
    kind, lo, hi = GENERATION_CONTROLS[key]
    if kind is list:
        if isinstance(value, str):
            value = [s for s in value.split("|") if s]
        if not isinstance(value, (list, tuple)) or not all(isinstance(s, str) and s for s in value):
            raise BadInputError("stop must be a list of non-empty strings (on the command line: a|b|c)")
        return key, list(value)
    try:
        typed = kind(float(value)) if kind is int else kind(value)
        if kind is int and float(value) != typed:
            raise ValueError
    except (TypeError, ValueError):
        raise BadInputError(f"{key} must be {'a whole number' if kind is int else 'a number'} (got {value!r})") from None
    if not lo <= typed <= hi:
        raise BadInputError(f"{key} must be between {lo} and {hi} (got {typed})")
    return key, typed


@dataclass
class Persona:
    """Who the model plays and how: editable plain fields (stored by pipeline.library.chat)."""

    name: str
    system_prompt: str
    example_lines: list[str] = field(default_factory=list)
    model: str | None = None
    provider: str | None = None
    temperature: float = DEFAULT_TEMPERATURE
    options: dict = field(default_factory=dict)  # top_p, num_predict/max_tokens, seed, stop, ...
    voice: str | None = None  # a voice name from pipeline.voices.synth (None: text only)
    greeting: str = ""  # first message of a new conversation (a card's first_mes)
    source_title: str | None = None
    character_id: int | None = None
    id: int | None = None
    extra: dict = field(default_factory=dict)  # card fields we do not use, kept for a lossless re-export

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Persona":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        if not str(known.get("name") or "").strip():
            raise BadInputError("a persona needs a name")
        known.setdefault("system_prompt", "")
        return cls(**known)

    def generation_options(self) -> dict:
        """Generation controls: the speech defaults, then the persona's options, with its temperature.
        (``max_chars`` is for reply shaping, not for the provider.)"""
        opts = dict(GENERATION_DEFAULTS)
        for k, v in (self.options or {}).items():
            opts[CONTROL_ALIASES.get(k, k)] = v
        opts.setdefault("temperature", self.temperature)
        return opts


# -- cleaning the character's lines -------------------------------------------------------------------
_TAG_RE = re.compile(r"\[[^\]]*\]|\([^)]*\)|\{[^}]*\}|<[^>]*>|[♪♫#]+")
_CUE_RE = re.compile(r"^\s*[A-Z][A-Z0-9 .'\-]{1,30}:\s+")
_DASH_RE = re.compile(r"^\s*[-–—]\s*")
_WS_RE = re.compile(r"\s+")
_WORD_RE = re.compile(r"[a-z0-9']+")
_STOP = frozenset(
    "the a an and or but so to of in on at for with is are was were be been am i you he she it we they me him "
    "her us them my your his its our their this that these those what who how why when where there here not "
    "no yes do did does don't i'm it's you're that's can can't will won't just oh okay ok well all have has had "
    "get got go going know like".split()
)


def clean_line(text: str) -> str:
    """A subtitle line as plain speech: no SDH tags, name cues, leading dashes, markup or extra spaces."""
    parts = []
    for part in str(text).replace("\\N", "\n").splitlines():
        part = _TAG_RE.sub(" ", part)
        part = _DASH_RE.sub("", part)
        part = _CUE_RE.sub("", part)
        part = _WS_RE.sub(" ", part).strip()
        if part:
            parts.append(part)
    return " ".join(parts)


def _key(text: str) -> str:
    return " ".join(_WORD_RE.findall(text.lower()))


_END_RE = re.compile(r"[.!?…][\"'”’)»]*$")
_SENTENCE_END_RE = re.compile(r"[.!?…][\"'”’)»]*(?=\s)")


def is_whole_line(text: str) -> bool:
    """A complete spoken line: starts like a sentence (capital, digit or quote) and ends at a sentence end."""
    t = text.strip()
    first = next((c for c in t if c.isalnum()), "")
    return bool(t) and (first.isupper() or first.isdigit()) and bool(_END_RE.search(t)) and not t.endswith("...")


def join_fragments(lines: list[str]) -> list[str]:
    """Subtitle cues that continue the previous one (it has no sentence end, this one starts in lower case) are
    joined into one line, so examples are whole lines."""
    out: list[str] = []
    for text in lines:
        t = text.strip()
        if not t:
            continue
        first = next((c for c in t if c.isalpha()), "")
        prev_open = bool(out) and (not _END_RE.search(out[-1]) or out[-1].endswith(("...", "…")))
        if prev_open and first.islower() and len(out[-1]) + len(t) < 2 * MAX_LINE_CHARS:
            out[-1] = f"{out[-1].rstrip('.… ')} {t.lstrip('.… ')}"
        else:
            out.append(t)
    return out


def _cap(text: str, limit: int) -> str | None:
    """The line verbatim when it fits; else its whole first sentences that fit; None when not even one does."""
    if len(text) <= limit:
        return text
    ends = [m.end() for m in _SENTENCE_END_RE.finditer(text) if m.end() <= limit]
    return text[: ends[-1]].strip() if ends else None


def select_lines(lines: list[str], sample: int = 30, seed: int = 0) -> list[str]:
    """A representative sample: deduplicated, spread across the film, most distinctive first, length-capped."""
    import random

    rng = random.Random(seed)
    cleaned: list[tuple[int, str]] = []
    seen: set[str] = set()
    texts = join_fragments([clean_line(raw) for raw in lines])
    whole = [t for t in texts if is_whole_line(t)]
    if len(whole) >= min(3, sample):  # fragments only when the character has almost no whole line
        texts = whole
    for i, text in enumerate(texts):
        key = _key(text)
        if not key or key in seen:
            continue
        seen.add(key)
        cleaned.append((i, text))
    if not cleaned or sample <= 0:
        return []

    # distinctiveness: length (capped) + how rare the line's content words are in this character's speech
    docs = [set(_WORD_RE.findall(t.lower())) - _STOP for _, t in cleaned]
    df = Counter(w for d in docs for w in d)
    n = len(docs)

    def score(k: int) -> float:
        words = len(cleaned[k][1].split())
        rare = sum(math.log((1 + n) / (1 + df[w])) for w in docs[k]) / max(1, len(docs[k]))
        short_penalty = 4.0 if words < 3 else 0.0
        return min(words, 24) + 3.0 * rare - short_penalty + rng.random() * 0.01

    scores = [score(k) for k in range(n)]
    picks: list[int] = []
    buckets = min(sample, n)
    for b in range(buckets):  # one pick per stretch of the film, in order
        lo, hi = b * n // buckets, (b + 1) * n // buckets
        if hi > lo:
            picks.append(max(range(lo, hi), key=lambda k: scores[k]))
    picks.sort(key=lambda k: -scores[k])

    out: list[str] = []
    total = 0
    for k in picks:
        text = _cap(cleaned[k][1], MAX_LINE_CHARS)
        if text is None or total + len(text) > MAX_EXAMPLES_CHARS:
            continue
        out.append(text)
        total += len(text) + 4
    return out


def build_system_prompt(name: str, example_lines: list[str], title: str | None = None, description: str = "") -> str:
    """The default system prompt: who to play, how to speak (short spoken replies), and the example lines."""
    src = f" from {title}" if title else ""
    parts = [
        f"You are {name}{src}. Stay in character: answer as {name} would, in the first person, with "
        f"{name}'s own vocabulary, rhythm and attitude.",
        "Your replies are spoken aloud: keep them short and conversational (one to four sentences), "
        "plain spoken dialogue with no stage directions, lists, emojis or narration.",
        f"Never say you are an AI or a language model; if asked something {name} could not know, "
        "react the way they would.",
    ]
    if description.strip():
        parts.append(description.strip())
    if example_lines:
        where = f" in {title}" if title else ""
        parts.append(f"Lines {name} actually said{where}, to match the voice:\n" + "\n".join(f'- "{t}"' for t in example_lines))
    return "\n\n".join(parts)


_EXAMPLES_BLOCK_RE = re.compile(r"\n*Lines [^\n]* actually said[^\n]*, to match the voice:\n(?:- \"[^\n]*\"\n?)*$")


def with_examples(prompt: str, name: str, example_lines: list[str], title: str | None = None) -> str:
    """The system prompt with its example-lines block (as build_system_prompt writes it) replaced by new lines;
    a prompt without such a block gets the block appended."""
    base = _EXAMPLES_BLOCK_RE.sub("", prompt or "").rstrip()
    if not example_lines:
        return base
    where = f" in {title}" if title else ""
    block = f"Lines {name} actually said{where}, to match the voice:\n" + "\n".join(f'- "{t}"' for t in example_lines)
    return f"{base}\n\n{block}" if base else block


def draft_persona(character: str, lines: list[str], title: str | None = None, *, sample: int = 30, seed: int = 0,
                  provider: str | None = None, model: str | None = None, voice: str | None = None) -> Persona:
    """Draft a persona for ``character`` from the lines they speak (in film order) in ``title``."""
    name = _WS_RE.sub(" ", str(character or "")).strip()
    if not name:
        raise BadInputError("the character needs a name to draft a persona")
    examples = select_lines(list(lines or []), sample=sample, seed=seed)
    return Persona(name=name, system_prompt=build_system_prompt(name, examples, title), example_lines=examples,
                   provider=provider, model=model, voice=voice, source_title=title)
