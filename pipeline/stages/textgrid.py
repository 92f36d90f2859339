"""A small Praat TextGrid reader/writer (long and short text formats) for forced-aligner output."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import BadInputError

# a quoted string ("" is an escaped quote), a long-format index like "intervals [3]:" (skipped),
# a number, or a <exists>/<absent> flag
_TOKEN = re.compile(r'"((?:[^"]|"")*)"|(\[\s*\d+\s*\])|(-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)|<(exists|absent)>')


@dataclass
class Interval:
    start: float
    end: float
    text: str


@dataclass
class Tier:
    name: str
    kind: str  # "IntervalTier" or "TextTier"
    start: float
    end: float
    intervals: list[Interval] = field(default_factory=list)  # TextTier points have start == end


@dataclass
class TextGrid:
    start: float
    end: float
    tiers: list[Tier]

    def tier(self, name: str) -> Tier | None:
        """The first tier with this name (case-insensitive), or None."""
        for t in self.tiers:
            if t.name.lower() == name.lower():
                return t
        return None


def _tokens(text: str) -> list[str | float]:
    out: list[str | float] = []
    for m in _TOKEN.finditer(text):
        if m.group(1) is not None:
            out.append(m.group(1).replace('""', '"'))
        elif m.group(2) is not None:
            continue
        elif m.group(3) is not None:
            out.append(float(m.group(3)))
        else:
            out.append("<" + m.group(4) + ">")
    return out


def parse_textgrid(text: str) -> TextGrid:
    """Parse a TextGrid in Praat's long or short text format."""
    toks = _tokens(text)
    pos = 0

    def take(kind):
        nonlocal pos
        if pos >= len(toks):
            raise BadInputError("TextGrid ends too early")
        v = toks[pos]
        pos += 1
        if kind is float and not isinstance(v, float):
            raise BadInputError(f"TextGrid: expected a number, found {v!r}")
        if kind is str and not isinstance(v, str):
            raise BadInputError(f"TextGrid: expected text, found {v!r}")
        return v

    if len(toks) < 2 or toks[0] != "ooTextFile" or toks[1] != "TextGrid":
        raise BadInputError("not a Praat TextGrid text file")
    pos = 2
    xmin, xmax = take(float), take(float)
    flag = take(str)
    if flag != "<exists>":
        return TextGrid(xmin, xmax, [])
    n_tiers = int(take(float))
    tiers: list[Tier] = []
    for _ in range(n_tiers):
        kind, name = take(str), take(str)
        t0, t1 = take(float), take(float)
        n = int(take(float))
        tier = Tier(name=name, kind=kind, start=t0, end=t1)
        for _ in range(n):
            if kind == "IntervalTier":
                a, b, label = take(float), take(float), take(str)
                tier.intervals.append(Interval(a, b, label))
            else:
                a, label = take(float), take(str)
                tier.intervals.append(Interval(a, a, label))
        tiers.append(tier)
    return TextGrid(xmin, xmax, tiers)


def read_textgrid(path: str | Path) -> TextGrid:
    """Read a TextGrid file (UTF-8, UTF-16 with BOM, or Latin-1)."""
    raw = Path(path).read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = raw.decode("utf-16")
    else:
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
    return parse_textgrid(text)


def write_textgrid(grid: TextGrid, path: str | Path) -> Path:
    """Write a TextGrid in the long text format."""
    def q(s: str) -> str:
        return '"' + s.replace('"', '""') + '"'

    out = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", f"xmin = {grid.start}", f"xmax = {grid.end}",
           "tiers? <exists>", f"size = {len(grid.tiers)}", "item []:"]
    for i, t in enumerate(grid.tiers, 1):
        out += [f"    item [{i}]:", f"        class = {q(t.kind)}", f"        name = {q(t.name)}",
                f"        xmin = {t.start}", f"        xmax = {t.end}"]
        if t.kind == "IntervalTier":
            out.append(f"        intervals: size = {len(t.intervals)}")
            for j, iv in enumerate(t.intervals, 1):
                out += [f"        intervals [{j}]:", f"            xmin = {iv.start}", f"            xmax = {iv.end}",
                        f"            text = {q(iv.text)}"]
        else:
            out.append(f"        points: size = {len(t.intervals)}")
            for j, iv in enumerate(t.intervals, 1):
                out += [f"        points [{j}]:", f"            number = {iv.start}", f"            mark = {q(iv.text)}"]
    p = Path(path)
    p.write_text("\n".join(out) + "\n", encoding="utf-8")
    return p
