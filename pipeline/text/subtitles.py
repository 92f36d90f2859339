"""Subtitle files and embedded subtitle streams read into plain :class:`~pipeline.types.Line` lists.

Formats: whatever pysubs2 reads (SRT, ASS/SSA, WebVTT, MicroDVD, MPL2, TMP, SAMI, TTML); any text encoding
(BOM, UTF-8, else charset-normalizer). Cue text is cleaned of HTML tags, ASS override tags and drawings.

SDH conventions become metadata on each Line:

- a leading name cue (``JOHN:``, ``MRS. SMITH:``, ``JOHN (V.O.):``, VTT ``<v John>``, or the ASS Name/Actor
  field) goes to ``Line.speaker_cue`` (upper case, extension dropped) and leaves the text;
- sound tags (``[music]``, ``(door slams)``, ``♪ lyrics ♪``) go to ``Line.tags`` and leave the text;
- a cue with several speakers (dialogue dashes ``- Hi.\\n- Hello.``, or a second name cue on a new line) is split
  into one Line per speaker, sharing the cue's span in proportion to text length.

A cue (or dash part) that holds only sound tags is KEPT as a Line with ``text == ""`` and its ``tags``, so callers
can see music/effects spans; drop them with ``[ln for ln in doc.lines if ln.text]`` (or ``doc.dialogue``).
Lines come back sorted by start with ``index`` renumbered 0..n-1.
"""

from __future__ import annotations

import html
import math
import os
import re
import stat
import subprocess
from dataclasses import dataclass, field, replace
from pathlib import Path

from pipeline.errors import BadInputError
from pipeline.types import Line

__all__ = [
    "SubtitleDoc",
    "decode_text",
    "read_subtitle_file",
    "read_subtitle_text",
    "extract_embedded_subtitles",
    "write_srt",
    "split_sdh",
    "drop_bad_cues",
    "describe_dropped",
    "sync_slack",
    "SUBTITLE_MAX_BYTES",
    "SCRIPT_MAX_BYTES",
]

MICRODVD_DEFAULT_FPS = 23.976


@dataclass
class SubtitleDoc:
    """A parsed subtitle track."""

    lines: list[Line]
    format: str  # pysubs2 format id: srt, ass, ssa, vtt, microdvd, ...
    encoding: str  # the text encoding the bytes were decoded with
    source: str  # file path, "stream N of FILE", or "<text>"
    warnings: list[str] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)  # cues left out while parsing, by reason
    encoding_info: dict | None = None  # how the encoding was chosen: unsure?, candidates (text_encoding.Decoded.info)

    @property
    def encoding_unsure(self) -> bool:
        return bool(self.encoding_info and self.encoding_info.get("unsure"))

    @property
    def dialogue(self) -> list[Line]:
        """Lines with spoken text (tag-only cues left out)."""
        return [ln for ln in self.lines if ln.text]

    @property
    def speakers(self) -> list[str]:
        """SDH speaker cues in first-appearance order."""
        seen: dict[str, None] = {}
        for ln in self.lines:
            if ln.speaker_cue:
                seen.setdefault(ln.speaker_cue, None)
        return list(seen)


# ------------------------------------------------------------------------------------------------ text decoding

def decode_text(raw: bytes, name: str = "text", *, language: str | None = None) -> tuple[str, str]:
    """Decode text bytes of unknown encoding; return (text, encoding). See :func:`pipeline.text.encoding.detect`
    (BOM, BOM-less UTF-16, strict UTF-8, then the most plausible legacy encoding). BadInputError for binary data."""
    from pipeline.text.encoding import detect

    d = detect(raw, name, language=language)
    return d.text, d.encoding


# ------------------------------------------------------------------------------------------------- text cleaning

_OVERRIDE = re.compile(r"\{([^}]*)\}")
_DRAW_ON = re.compile(r"\\p\s*([0-9]+)")
_HTML_TAG = re.compile(r"</?\s*[a-zA-Z][^<>]*>")
_VTT_VOICE = re.compile(r"<v(?:\.[\w.-]+)?\s+([^>]+)>", re.I)
_VTT_TIMESTAMP = re.compile(r"<\d{1,2}:\d{2}(?::\d{2})?\.\d{3}>")
_INLINE_SPACE = re.compile(r"[ \t\u200b\u200e\u200f]+")
_SPACES = re.compile(r"\s+")
_WORD = re.compile(r"\w")
_NAME_PUNCT = re.compile(r"[!?,;\"]")
_SINGLE_CAP = re.compile(r"[A-Z]")
_LEAD_PUNCT = re.compile(r"^[-\u2013\u2014:,]\s*")
# a cue holding none of these has no name cue, sound tag or dialogue dash: one plain line (see _cue_lines)
_SDH_CHARS = re.compile(r"[:\[\]()\u266a\u266b\-\u2010-\u2015]")


def _strip_ass(text: str) -> str:
    """Remove ASS override blocks and any drawing (\\p1 .. \\p0) they switch on; \\N/\\n to newlines."""
    out: list[str] = []
    drawing = False
    pos = 0
    for m in _OVERRIDE.finditer(text):
        if not drawing:
            out.append(text[pos : m.start()])
        for d in _DRAW_ON.finditer(m.group(1)):
            drawing = int(d.group(1)) > 0
        pos = m.end()
    if not drawing:
        out.append(text[pos:])
    s = "".join(out)
    return s.replace("\\N", "\n").replace("\\n", "\n").replace("\\h", " ")


def clean_cue_text(raw: str) -> tuple[str, str | None]:
    """Plain text of one cue (line breaks kept as \\n) and a VTT ``<v Name>`` voice if any."""
    voice = None
    m = _VTT_VOICE.search(raw)
    if m:
        voice = m.group(1).strip()
    s = _strip_ass(raw)
    s = _VTT_TIMESTAMP.sub("", s)
    s = _HTML_TAG.sub("", s)
    s = html.unescape(s).replace("\u00a0", " ")
    lines = [_INLINE_SPACE.sub(" ", ln).strip() for ln in s.replace("\r", "").split("\n")]
    return "\n".join(ln for ln in lines if ln), voice


# ----------------------------------------------------------------------------------------------------- SDH split

_DASH = re.compile(r"^[-\u2010\u2011\u2012\u2013\u2014\u2015]\s*")
_INLINE_DASH = re.compile(r"(?<=[.!?\u2026\"'\u201d\u266a\]\)])\s+[-\u2013\u2014]\s+(?=\S)")
_TAG = re.compile(r"\[[^\]]*\]?|\([^)]*\)?|\u266a[^\u266a]*\u266a?|\u266b[^\u266b]*\u266b?")
_NAME_CUE = re.compile(
    r"^(?P<name>[^\W\d_][^:\n\[\]()]{0,38}?)\s*(?:\((?P<ext>[^)\n]{1,24})\)\s*)?:(?=\s|$)\s*",
)
_LEADING_TAGS = re.compile(r"^(?:\s*(?:\[[^\]]*\]|\([^)]*\)))+\s*")


def _name_cue(text: str) -> tuple[str | None, str]:
    """Split a leading upper-case name cue ("JOHN:", "MRS. SMITH (V.O.):") off text."""
    m = _NAME_CUE.match(text)
    if not m:
        return None, text
    name = _SPACES.sub(" ", m.group("name")).strip()
    if not any(ch.isalpha() for ch in name) or name != name.upper() or len(name.split()) > 4:
        return None, text
    if _NAME_PUNCT.search(name) or _SINGLE_CAP.fullmatch(name):
        return None, text
    return name, text[m.end() :]


def _find_name_cue(text: str) -> tuple[str | None, str, str]:
    """Name cue at the start, possibly after leading sound tags; returns (name, rest, leading tags text)."""
    name, rest = _name_cue(text)
    if name:
        return name, rest, ""
    m = _LEADING_TAGS.match(text)
    if m:
        name, rest = _name_cue(text[m.end() :])
        if name:
            return name, rest, m.group(0)
    return None, text, ""


def _tag_label(t: str) -> str:
    t = t.strip()
    if t.startswith(("\u266a", "\u266b")):
        inner = t.strip("\u266a\u266b ").strip()
        return f"\u266a {inner} \u266a" if inner else "\u266a"
    return _SPACES.sub(" ", t.strip("[]() ")).strip()


def _extract_tags(text: str) -> tuple[str, list[str]]:
    tags = [_tag_label(m.group(0)) for m in _TAG.finditer(text)]
    rest = _TAG.sub(" ", text)
    rest = rest.replace("\u266a", " ").replace("\u266b", " ")
    rest = _SPACES.sub(" ", rest).strip()
    rest = _LEAD_PUNCT.sub("", rest) if not _WORD.search(rest[:1] or "x") else rest
    if not _WORD.search(rest):
        rest = ""
    return rest, [t for t in tags if t]


def split_sdh(text: str) -> list[tuple[str | None, str, list[str], str]]:
    """Split one cleaned cue text into parts: (speaker_cue, text, tags, raw part text)."""
    rows = [r for r in text.split("\n") if r.strip()]
    groups: list[list[str]] = []
    for i, row in enumerate(rows):
        dashed = bool(_DASH.match(row))
        if dashed:
            # "- Hi. - Hello." on one line
            pieces = _INLINE_DASH.split(_DASH.sub("", row, count=1))
            for p in pieces:
                groups.append([p])
            continue
        if groups and i > 0 and _find_name_cue(row)[0]:
            groups.append([row])
            continue
        if not groups:
            groups.append([row])
        else:
            groups[-1].append(row)
    parts = []
    for g in groups:
        raw = " ".join(g).strip()
        name, rest, lead = _find_name_cue(raw)
        body, tags = _extract_tags(rest)
        if lead:
            tags = [_tag_label(m.group(0)) for m in _TAG.finditer(lead)] + tags
        parts.append((name, body, tags, raw))
    return parts


def _cue_lines(start: float, end: float, raw_text: str, actor: str | None = None) -> list[Line]:
    text, voice = clean_cue_text(raw_text)
    if not text:
        return []
    default_speaker = (voice or actor or "").strip().upper() or None
    if not _SDH_CHARS.search(text):  # fast path, same result as split_sdh for a cue without SDH marks
        body = _SPACES.sub(" ", text.replace("\n", " ")).strip()
        if body and _WORD.match(body):
            return [Line(start=round(start, 3), end=round(end, 3), text=body, speaker_cue=default_speaker, tags=[])]
    parts = split_sdh(text)
    parts = [p for p in parts if p[1] or p[2]]
    if not parts:
        return []
    weights = [max(1, len(body) if body else len(raw)) for _, body, _, raw in parts]
    total = float(sum(weights))
    out, t = [], start
    for (name, body, tags, _), w in zip(parts, weights):
        t1 = end if len(out) == len(parts) - 1 else t + (end - start) * w / total
        speaker = name or (default_speaker if len(parts) == 1 else None)
        out.append(Line(start=round(t, 3), end=round(t1, 3), text=body, speaker_cue=speaker, tags=tags,
                        turn=bool(out)))
        t = t1
    return out


def _finish(lines: list[Line]) -> list[Line]:
    seen: set = set()
    uniq = []
    for ln in sorted(lines, key=lambda x: (x.start, x.end)):
        key = (ln.start, ln.end, ln.text, ln.speaker_cue, tuple(ln.tags))
        if key in seen:  # ASS files often layer the same event twice (shadow/outline copies)
            continue
        seen.add(key)
        uniq.append(ln)
    for i, ln in enumerate(uniq):
        ln.index = i
    return uniq


# ------------------------------------------------------------------------------------------------- bad cues

_BAD_TIME = "with a negative or non-numeric time"
_END_BEFORE_START = "ending before they start"
_PAST_END = "starting after the end of the media"


def sync_slack(duration: float | None) -> float:
    """How far past the media's end a cue may start and still be brought inside by a subtitle sync (an offset of
    up to a minute plus a frame-rate change of up to 10 %, e.g. 25 ↔ 23.976 fps is 4.3 %)."""
    return 0.1 * duration + 60.0 if duration else 0.0


def drop_bad_cues(lines: list[Line], duration: float | None = None, *, slack: float = 0.0) -> tuple[list[Line], dict[str, int]]:
    """Lines whose times can be cut from the media, and how many were left out by reason.

    Left out: NaN/infinite/negative times, ``end <= start`` and (given the media's ``duration``) a start at or
    after ``duration + slack``; a line running past that limit is cut there. Kept lines are renumbered. Before a
    subtitle sync pass ``slack`` (see :func:`sync_slack`) keeps the cues a sync can still move into the media;
    after it (or with no sync to come) the limit is the media's end.
    """
    kept: list[Line] = []
    dropped: dict[str, int] = {}

    def drop(reason: str) -> None:
        dropped[reason] = dropped.get(reason, 0) + 1

    limit = duration + max(0.0, slack) if duration is not None and math.isfinite(duration) and duration > 0 else None
    for ln in lines:
        try:
            start, end = float(ln.start), float(ln.end)
        except (TypeError, ValueError):
            drop(_BAD_TIME)
            continue
        if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end < 0:
            drop(_BAD_TIME)
        elif end <= start:
            drop(_END_BEFORE_START)
        elif limit is not None and start >= limit:
            drop(_PAST_END)
        else:
            if limit is not None and end > limit:
                ln = replace(ln, end=limit, words=[w for w in ln.words if w.start < limit])
            kept.append(ln if ln.index == len(kept) else replace(ln, index=len(kept)))
    return kept, dropped


def describe_dropped(dropped: dict[str, int], duration: float | None = None) -> str | None:
    """One warning line such as 'dropped 3 bad subtitle cues: 2 ending before they start, 1 starting after the
    end of the media (66.2 s)', or None when nothing was dropped."""
    total = sum(dropped.values())
    if not total:
        return None
    parts = []
    for reason, n in sorted(dropped.items(), key=lambda kv: -kv[1]):
        part = f"{n} {reason}"
        if reason == _PAST_END and duration:
            part += f" ({duration:.1f} s)"
        parts.append(part)
    return f"dropped {total} bad subtitle cue{'s' if total != 1 else ''}: {', '.join(parts)}"


# ------------------------------------------------------------------------------------------------------ parsing

_TS = r"(?:\d{1,3}:)?\d{1,2}:\d{1,2}[.,]\d{1,3}"
_TIMING_LINE = re.compile(rf"^\s*{_TS}\s*-{{1,2}}>\s*{_TS}")
_TS_RE = re.compile(_TS)
_DIGITS = re.compile(r"\d+")
_VTT_BLOCK = re.compile(r"(NOTE|STYLE|REGION)\b")


def _tidy_blocks(text: str, vtt: bool) -> str:
    """Keep only cues (a timing line with a --> arrow and its text) of SRT/VTT, as SRT-like text for pysubs2.

    Drops cue numbers/identifiers (also in files without blank lines between cues), NOTE/STYLE/REGION blocks and
    text before the first cue; returns "" (or a bare VTT header) when there is no timing line at all.
    """
    rows = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    cues: list[tuple[list[str], list[tuple[int, str]]]] = []
    skip = False
    for idx, row in enumerate(rows):
        if "->" in row and _TIMING_LINE.match(row):  # the substring test spares the regex on text rows
            if cues and cues[-1][1] and cues[-1][1][-1][0] == idx - 1:
                prev = cues[-1][1][-1][1].strip()
                if _DIGITS.fullmatch(prev) or idx < 2 or not rows[idx - 2].strip():
                    cues[-1][1].pop()  # the next cue's number / identifier
            cues.append((_TS_RE.findall(row)[:2], []))
            skip = False
        elif not row.strip():
            skip = False
        elif (idx == 0 or not rows[idx - 1].strip()) and _VTT_BLOCK.match(row.strip()):
            skip = True
        elif not skip and cues:
            cues[-1][1].append((idx, row))
    out = []
    for stamps, body in cues:
        lines = [r for _, r in body]
        while lines and not lines[-1].strip():
            lines.pop()
        out.append(f"{stamps[0]} --> {stamps[1]}\n" + "\n".join(r for r in lines if r.strip()))
    return ("WEBVTT\n\n" if vtt else "") + "\n\n".join(out) + ("\n" if out else "")


def _guess_format(text: str, hint: str | None) -> str | None:
    if hint:
        h = hint.lower().lstrip(".")
        return {"subrip": "srt", "webvtt": "vtt", "sub": "microdvd", "ssa": "ssa", "ass": "ass"}.get(h, h)
    head = text.lstrip("\ufeff \n\r\t")[:4000]
    if head.startswith("WEBVTT"):
        return "vtt"
    if "[Script Info]" in head or re.search(r"^\[V4\+? Styles\]", head, re.M) or re.search(r"^Dialogue:", head, re.M):
        return None  # pysubs2 tells ASS from SSA
    if re.search(rf"^\s*{_TS}\s*-{{1,2}}>", head, re.M):
        return "srt"
    return None


def _parse(text: str, fmt: str | None, name: str) -> tuple[list[Line], str, dict[str, int]]:
    import pysubs2

    if not text.strip():
        raise BadInputError(f"no subtitle lines in {name} (the file is empty)")
    text = text.lstrip("\ufeff")
    if fmt in ("srt", "vtt"):
        tidy = _tidy_blocks(text, fmt == "vtt")
        if not tidy.strip() or tidy.strip() == "WEBVTT":
            if fmt == "vtt" and not re.search(r"-->", text):
                raise BadInputError(f"no subtitle lines in {name}")
            raise BadInputError(f"malformed subtitles: no parseable cue in {name}")
        text = tidy
    kwargs: dict = {}
    if fmt in ("srt", "vtt"):
        kwargs["keep_html_tags"] = True
    try:
        try:
            subs = pysubs2.SSAFile.from_string(text, format_=fmt, **kwargs)
        except pysubs2.exceptions.FormatAutodetectionError:
            if fmt is not None or "[Script Info]" not in text:
                raise
            subs = pysubs2.SSAFile.from_string(text, format_="ass")  # header-only ASS: pysubs2 can't tell
        except pysubs2.exceptions.UnknownFPSError:
            subs = pysubs2.SSAFile.from_string(text, format_=fmt, fps=MICRODVD_DEFAULT_FPS, **kwargs)
    except pysubs2.exceptions.FormatAutodetectionError:
        raise BadInputError(f"malformed subtitles: no parseable cue in {name} (not SRT/ASS/SSA/VTT/MicroDVD)") from None
    except (pysubs2.exceptions.Pysubs2Error, ValueError, IndexError, KeyError, TypeError) as e:
        raise BadInputError(f"malformed subtitles in {name}: {e}") from None
    got_fmt = subs.format or fmt or "unknown"
    if got_fmt == "microdvd" and subs.fps is None:
        subs.fps = MICRODVD_DEFAULT_FPS
    lines: list[Line] = []
    dropped: dict[str, int] = {}
    for ev in subs.events:
        if ev.is_comment:
            continue
        if ev.end < ev.start:
            dropped[_END_BEFORE_START] = dropped.get(_END_BEFORE_START, 0) + 1
            continue
        lines.extend(_cue_lines(ev.start / 1000.0, ev.end / 1000.0, ev.text, ev.name or None))
    if not subs.events:
        raise BadInputError(f"no subtitle lines in {name}")
    lines = _finish(lines)
    if not lines:
        raise BadInputError(f"no subtitle lines in {name} (every cue is empty)")
    return lines, got_fmt, dropped


def read_subtitle_text(text: str, format_hint: str | None = None, *, source: str = "<text>", encoding: str = "utf-8") -> SubtitleDoc:
    """Parse subtitle text (e.g. an embedded stream dumped by ffmpeg); format_hint like "srt", "ass", "vtt"."""
    lines, fmt, dropped = _parse(text, _guess_format(text, format_hint), source)
    return SubtitleDoc(lines=lines, format=fmt, encoding=encoding, source=source, dropped=dropped)


_MB = 1024 * 1024
SUBTITLE_MAX_BYTES = 20 * _MB  # a feature film's SRT is ~100 KB; 20 MB is far past any real one
SCRIPT_MAX_BYTES = 50 * _MB  # screenplay PDFs with scanned title pages reach a few MB


def _file_kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _too_large(p: Path, size: int, what: str, max_bytes: int) -> BadInputError:
    return BadInputError(f"{what} file too large: {p.name} is {size / _MB:.1f} MB (limit {max_bytes / _MB:g} MB)")


def read_user_file(path: str | os.PathLike, what: str, max_bytes: int | None = None) -> tuple[Path, bytes]:
    """(path, bytes) of a text file the user named; BadInputError when it is missing, not a regular file
    (folder, FIFO, device such as /dev/zero: these would block or read forever) or over ``max_bytes``
    (default: SUBTITLE_MAX_BYTES, or SCRIPT_MAX_BYTES when ``what == "script"``)."""
    p = Path(path)
    if max_bytes is None:
        max_bytes = SCRIPT_MAX_BYTES if what == "script" else SUBTITLE_MAX_BYTES
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise BadInputError(f"no such {what} file: {p}") from None
    except OSError as e:
        raise BadInputError(f"cannot read {p}: {e.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise BadInputError(f"is a directory, not a {what} file: {p}")
    if not stat.S_ISREG(st.st_mode):
        raise BadInputError(f"not a regular file ({_file_kind(st.st_mode)}), cannot read it as a {what} file: {p}")
    if st.st_size > max_bytes:
        raise _too_large(p, st.st_size, what, max_bytes)
    try:
        # O_NONBLOCK: should the path turn into a FIFO after the stat, opening it must not wait for a writer
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise BadInputError(f"cannot read {p}: {e.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise BadInputError(f"not a regular file, cannot read it as a {what} file: {p}")
            raw = f.read(max_bytes + 1)  # never more than the cap, even if the file grows meanwhile
        except OSError as e:
            raise BadInputError(f"cannot read {p}: {e.strerror}") from None
    if len(raw) > max_bytes:
        raise _too_large(p, len(raw), what, max_bytes)
    return p, raw


def read_subtitle_file(path: str | os.PathLike, *, encoding: str | None = None, language: str | None = None) -> SubtitleDoc:
    """Read a subtitle file in any encoding; BadInputError (one line, naming the file) when unusable.

    ``encoding`` forces one (the user's pick); otherwise it is detected (``language``, e.g. "pl", helps) and
    ``doc.encoding_info`` says whether the guess is unsure and which other encodings read differently."""
    from pipeline.text.encoding import decode_as, detect

    p, raw = read_user_file(path, "subtitle")
    if not raw.strip():
        raise BadInputError(f"no subtitle lines in {p.name} (the file is empty)")
    decoded = decode_as(raw, encoding, p.name) if encoding else detect(raw, p.name, language=language)
    text, enc = decoded.text, decoded.encoding
    ext_hint = {".srt": "srt", ".vtt": "vtt", ".ass": None, ".ssa": None, ".sub": None}.get(p.suffix.lower())
    fmt = _guess_format(text, None)
    if fmt is None and ext_hint and not re.search(r"\[Script Info\]|^Dialogue:", text, re.M):
        fmt = ext_hint
    lines, got, dropped = _parse(text, fmt, p.name)
    return SubtitleDoc(lines=lines, format=got, encoding=enc, source=str(p), dropped=dropped, encoding_info=decoded.info())


# ------------------------------------------------------------------------------------------------ embedded streams


def _ass_event_fields(ass_line: str) -> tuple[str | None, str]:
    """(Name, Text) of an ASS packet line "ReadOrder,Layer,Style,Name,MarginL,MarginR,MarginV,Effect,Text"."""
    parts = ass_line.split(",", 8)
    if len(parts) == 9:
        return parts[3].strip() or None, parts[8]
    if ass_line.startswith("Dialogue:"):
        parts = ass_line.split(",", 9)
        if len(parts) == 10:
            return parts[4].strip() or None, parts[9]
    return None, ass_line


def _decode_stream_pyav(media_path: Path, stream_index: int) -> tuple[list[Line], str] | None:
    """Decode text subtitle packets with PyAV; None when PyAV gives nothing usable (caller falls back)."""
    import av

    lines: list[Line] = []
    with av.open(str(media_path)) as c:
        subs = list(c.streams.subtitles)
        st = subs[stream_index]
        codec = st.codec_context.name if st.codec_context else "unknown"
        starts: list[tuple[float, float | None, str | None, str]] = []
        packets = 0
        for packet in c.demux(st):
            if packet.pts is None or not packet.size:
                continue
            packets += 1
            t0 = float(packet.pts * packet.time_base)
            dur = float(packet.duration * packet.time_base) if packet.duration else None
            try:
                decoded = packet.decode()
            except av.error.FFmpegError:
                continue
            for rect in decoded:
                rects = rect.rects if hasattr(rect, "rects") else [rect]
                for r in rects:
                    ass = getattr(r, "ass", b"") or b""
                    txt = getattr(r, "text", b"") or b""
                    if ass:
                        actor, body = _ass_event_fields(ass.decode("utf-8", "replace"))
                    elif txt:
                        actor, body = None, txt.decode("utf-8", "replace")
                    else:
                        continue
                    starts.append((t0, dur, actor, body))
        if packets and not starts:
            return None
        for i, (t0, dur, actor, body) in enumerate(starts):
            if dur is None:
                nxt = next((s[0] for s in starts[i + 1 :] if s[0] > t0), t0 + 3.0)
                dur = min(5.0, max(0.5, nxt - t0))
            lines.extend(_cue_lines(t0, t0 + dur, body, actor))
    return lines, codec


def _decode_stream_ffmpeg(media_path: Path, stream_index: int) -> str:
    r = subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(media_path), "-map", f"0:s:{stream_index}", "-c:s", "ass", "-f", "ass", "-"],
        capture_output=True,
    )
    if r.returncode != 0:
        err = r.stderr.decode("utf-8", "replace").strip().splitlines()
        raise BadInputError(f"ffmpeg could not read subtitle stream {stream_index} of {media_path.name}: {err[-1] if err else r.returncode}")
    return r.stdout.decode("utf-8", "replace")


def extract_embedded_subtitles(media_path: str | os.PathLike, stream_index: int) -> SubtitleDoc:
    """Read the text subtitle stream ``stream_index`` (0-based among the container's subtitle streams).

    Decodes packets with PyAV (ASS/SRT/WebVTT/mov_text events carry text + pts/duration); falls back to
    ``ffmpeg -map 0:s:N -f ass -`` when PyAV yields nothing. Image subtitles (PGS, VobSub) raise BadInputError.
    """
    from pipeline.media import TEXT_SUBTITLE_CODECS, probe

    p = Path(media_path)
    info = probe(p)
    if not 0 <= stream_index < len(info.subtitles):
        raise BadInputError(f"subtitle stream {stream_index} does not exist in {p.name} (it has {len(info.subtitles)})")
    meta = info.subtitles[stream_index]
    if meta.codec not in TEXT_SUBTITLE_CODECS:
        raise BadInputError(f"subtitle stream {stream_index} of {p.name} is image-based ({meta.codec}); it needs OCR, not supported")
    source = f"stream {stream_index} of {p}"
    got = None
    try:
        got = _decode_stream_pyav(p, stream_index)
    except Exception:  # noqa: BLE001 - any PyAV trouble: let ffmpeg try
        got = None
    if got is not None:
        lines, codec = got
        lines = _finish(lines)
        if not lines:
            raise BadInputError(f"no subtitle lines in {source}")
        return SubtitleDoc(lines=lines, format=codec, encoding="utf-8", source=source)
    text = _decode_stream_ffmpeg(p, stream_index)
    doc = read_subtitle_text(text, "ass", source=source)
    doc.warnings.append("decoded through ffmpeg (PyAV gave no events)")
    return doc


# ---------------------------------------------------------------------------------------------------------- write


def _srt_time(t: float) -> str:
    ms = int(round(max(0.0, t) * 1000))
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def write_srt(lines: list[Line], path: str | os.PathLike, *, cues: bool = True) -> Path:
    """Write Lines as UTF-8 SubRip (atomically). cues=True writes "NAME: " speaker cues and "[tag]" sound tags
    back, so read_subtitle_file(write_srt(doc.lines)) gives the same lines; cues=False writes text only."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    blocks = []
    for ln in sorted(lines, key=lambda x: (x.start, x.end)):
        text = ln.text
        if cues:
            tags = " ".join(t if t.startswith("\u266a") else f"[{t}]" for t in ln.tags)
            text = " ".join(x for x in (tags, text) if x)
            if ln.speaker_cue:
                text = f"{ln.speaker_cue}: {text}"
        if not text.strip():
            continue
        blocks.append(f"{len(blocks) + 1}\n{_srt_time(ln.start)} --> {_srt_time(max(ln.end, ln.start))}\n{text.strip()}\n")
    from ..files import write_atomic

    return write_atomic(p, "\n".join(blocks))
