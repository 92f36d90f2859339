"""Plain dataclasses that stages return and the store persists. Times are seconds from the media start."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class Region:
    """A span of time, e.g. a VAD speech region."""

    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass
class Word:
    start: float
    end: float
    text: str
    probability: float = 1.0


@dataclass
class Line:
    """One line of dialogue: a subtitle cue, an ASR segment or a script line placed in time."""

    start: float
    end: float
    text: str
    words: list[Word] = field(default_factory=list)
    speaker_cue: str | None = None  # SDH name cue ("JOHN:") or a screenplay character
    tags: list[str] = field(default_factory=list)  # SDH sound tags like "music", "door slams"
    confidence: float = 1.0
    index: int = 0
    turn: bool = False  # another speaker's part of one cue (a dialogue dash or name cue after the first part)

    def to_dict(self) -> dict:
        return asdict(self)


NO_CUE = -1  # Line.index of a line transcribed where no subtitle cue covers the speech (no subtitle line of its own)


@dataclass
class Transcript:
    language: str | None
    lines: list[Line]
    backend: str = ""
    language_probability: float | None = None


@dataclass
class Turn:
    """A diarization turn: speaker label over a time span."""

    start: float
    end: float
    speaker: str


@dataclass
class Diarization:
    turns: list[Turn]
    embeddings: dict[str, list[float]] = field(default_factory=dict)  # speaker label -> mean embedding
    backend: str = ""

    def speakers(self) -> list[str]:
        return sorted({t.speaker for t in self.turns})

    def to_rttm(self, uri: str = "media") -> str:
        """Render turns as RTTM lines."""
        return "".join(
            f"SPEAKER {uri} 1 {t.start:.3f} {t.end - t.start:.3f} <NA> <NA> {t.speaker} <NA> <NA>\n" for t in self.turns
        )


@dataclass
class ScriptLine:
    index: int
    character: str
    text: str
    scene: int = 0
    parenthetical: str | None = None
    extension: str | None = None  # V.O., O.S., CONT'D ...


@dataclass
class Script:
    title: str | None
    lines: list[ScriptLine]
    format: str = "screenplay"

    @property
    def characters(self) -> list[str]:
        seen: dict[str, None] = {}
        for ln in self.lines:
            seen.setdefault(ln.character, None)
        return list(seen)


@dataclass
class Attribution:
    """Who says a line, which signal decided it, and how sure we are."""

    line_index: int
    character: str | None
    confidence: float
    source: str  # "script", "sdh", "voice", "voiceprint", "user", "none"


def line_from_dict(d: dict) -> Line:
    """Rebuild a Line (with its Words) from its to_dict() form, e.g. a cached stage result."""
    d = dict(d)
    d["words"] = [w if isinstance(w, Word) else Word(**w) for w in d.get("words") or []]
    return Line(**d)
