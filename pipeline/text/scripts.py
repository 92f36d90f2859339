"""Screenplays read into a plain :class:`~pipeline.types.Script`: who says what, in order, scene by scene.

Inputs: plain-text screenplay layout (indented or flush-left), Fountain, PDF (pypdf text layer, layout mode so
indentation survives), Final Draft .fdx, and subtitle files (SDH speaker cues become characters; lines without a
cue are left out). Scene numbers count scene headings (0 before the first). Character extensions such as
(V.O.), (O.S.), (CONT'D) are moved off the name into ``ScriptLine.extension``; a dialogue block split by a page
break ("(MORE)" ... "NAME (CONT'D)") is joined back into one line.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import BadInputError
from pipeline.types import Script, ScriptLine

__all__ = ["parse_script", "parse_script_text"]

SUBTITLE_SUFFIXES = {".srt", ".vtt", ".ass", ".ssa", ".sub"}

_HEADING = re.compile(r"^(?:INT\.?\s*/\s*EXT|EXT\.?\s*/\s*INT|I\s*/\s*E|INT|EXT|EST)(?:[.\s]|$)")
_HEADING_DOT = re.compile(r"^(?:int|ext|est|int\.?\s*/\s*ext|ext\.?\s*/\s*int|i/e)\.\s", re.I)
_SCENE_NUM_L = re.compile(r"^\d+[A-Z]{0,2}[.)]?\s+(?=\S)")
_SCENE_NUM_R = re.compile(r"\s+\d+[A-Z]{0,2}\.?$")
_TRANSITIONS = {"FADE IN:", "FADE IN", "FADE OUT.", "FADE OUT", "FADE TO BLACK.", "FADE TO BLACK", "THE END",
                "THE END.", "CUT TO BLACK.", "CUT TO BLACK", "END.", "FADE OUT:", "BLACKOUT.", "SMASH TO BLACK."}
_NOT_NAMES = {"FADE IN", "FADE OUT", "THE END", "CONTINUED", "MORE", "BLACK", "SUPER", "TITLE", "TITLES", "INSERT",
              "BACK TO SCENE", "INTERCUT", "END CREDITS", "FLASHBACK", "END FLASHBACK", "MONTAGE", "END MONTAGE",
              "LATER", "CONTINUOUS", "MOMENTS LATER", "SERIES OF SHOTS", "OMITTED", "CREDITS", "BEGIN", "END",
              "DAY", "NIGHT", "PROLOGUE", "EPILOGUE", "ACT ONE", "ACT TWO", "ACT THREE", "COLD OPEN", "TEASER"}
_PAGE_ARTIFACT = re.compile(
    r"^(?:\d{1,3}\.?|\(?CONTINUED\)?:?|CONTINUED:?\s*\(\d+\)|\(CONT(?:INUED|'D|’D|D)\)\s*\d*\.?|[Pp]age \d+( of \d+)?)$"
)
_MORE = re.compile(r"^\(\s*MORE\s*\)$", re.I)
_TITLE_KEYS = re.compile(r"^(title|credit|author|authors|source|draft date|date|contact|copyright|notes|revision)\s*:", re.I)
_WRITTEN_BY = re.compile(r"^\s*(?:written\s+by|screenplay\s+by|story\s+by|teleplay\s+by|by)\b", re.I)
_EMPHASIS = re.compile(r"(\*{1,3}|_)(?=\S)(.+?)(?<=\S)\1")
_EXT_NORMAL = {
    "VO": "V.O.", "V.O": "V.O.", "V.O.": "V.O.", "V/O": "V.O.", "OS": "O.S.", "O.S": "O.S.", "O.S.": "O.S.",
    "OC": "O.C.", "O.C": "O.C.", "O.C.": "O.C.", "CONT'D": "CONT'D", "CONT’D": "CONT'D", "CONTD": "CONT'D",
    "CONT.": "CONT'D", "CONT": "CONT'D", "CONTINUING": "CONT'D", "CONT'": "CONT'D", "OFF": "O.S.",
}


@dataclass
class _Row:
    indent: int
    text: str  # stripped
    raw: str
    more: bool = False  # a "(MORE)" page-break marker followed this row
    spacer: bool = False  # whitespace-only line of 2+ spaces (Fountain: keeps dialogue going)

    @property
    def blank(self) -> bool:
        return not self.text


@dataclass
class _Cue:
    name: str
    extension: str | None
    dual: bool = False
    right: "_Cue | None" = None  # plain-text dual dialogue: the right-hand column's cue
    right_col: int = 0


# ---------------------------------------------------------------------------------------------------- helpers


def _clean_markup(s: str) -> str:
    s = s.replace("\\*", "\x01").replace("\\_", "\x02")
    for _ in range(3):
        s2 = _EMPHASIS.sub(r"\2", s)
        if s2 == s:
            break
        s = s2
    return re.sub(r"\s+", " ", s.replace("\x01", "*").replace("\x02", "_")).strip()


def _is_heading(t: str, fountain_marks: bool = True) -> bool:
    if fountain_marks and t.startswith(".") and len(t) > 1 and t[1] not in ". ":
        return True
    s = _SCENE_NUM_L.sub("", t)
    return bool(_HEADING.match(s) or _HEADING_DOT.match(s))


def _is_transition(t: str) -> bool:
    if t.startswith(">") and not t.rstrip().endswith("<"):
        return True
    u = t.strip()
    if u != u.upper() or not re.search(r"[A-Z]", u):
        return False
    return u.endswith(" TO:") or u in _TRANSITIONS or u.endswith(" IN:") or u.endswith(" OUT.")


def _norm_ext(e: str) -> str:
    k = re.sub(r"\s+", " ", e.strip()).upper()
    return _EXT_NORMAL.get(k.replace(" ", ""), _EXT_NORMAL.get(k, k))


def _parse_cue_text(t: str) -> _Cue | None:
    """A character cue ("JOHN", "MRS. SMITH (V.O.)", "@McCLANE", "MARY ^") or None."""
    s = t.strip()
    dual = False
    if s.endswith("^"):
        dual, s = True, s[:-1].rstrip()
    forced = s.startswith("@")
    if forced:
        s = s[1:].strip()
    m = re.match(r"^(.*?)((?:\s*\([^()]*\))*)\s*$", s)
    if not m:
        return None
    name = re.sub(r"\s+", " ", m.group(1)).strip()
    exts = [_norm_ext(x) for x in re.findall(r"\(([^()]*)\)", m.group(2)) if x.strip()]
    if not name or len(name) > 40 or len(name.split()) > 5 or not re.search(r"[^\W\d_]", name):
        return None
    if not forced:
        if name != name.upper() or name.endswith((".", ":", "!", "?", ",", ";", "-")) or " - " in name:
            return None
        if name in _NOT_NAMES or re.match(r"^\d+\.?$", name) or re.search(r"[\"!?;]", name):
            return None
        if _is_heading(name, False) or _is_transition(name):
            return None
    return _Cue(name=name, extension=", ".join(dict.fromkeys(exts)) or None, dual=dual)


def _rows(text: str) -> list[_Row]:
    out: list[_Row] = []
    page_top = True  # first row of a page (after a form feed): a bare number there is a page number
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if "\f" in raw:
            page_top, raw = True, raw.replace("\f", "")
        line = raw.expandtabs(8).rstrip()
        stripped = line.strip()
        r = _Row(indent=len(line) - len(line.lstrip(" ")), text=stripped, raw=line, spacer=not stripped and len(raw) >= 2)
        if not stripped:
            out.append(r)
            continue
        # page-break artifacts (page numbers, CONTINUED, (MORE)) are removed; (MORE) marks the row before it
        if _MORE.match(stripped):
            for prev in reversed(out):
                if not prev.blank:
                    prev.more = True
                    break
        elif _PAGE_ARTIFACT.match(stripped) and (not stripped[0].isdigit() or r.indent >= 20 or page_top):
            pass
        else:
            out.append(r)
        page_top = False
    return out


def _title_page(text: str) -> tuple[str | None, str]:
    """Strip a Fountain title page ("Title: ..." keys) or a plain title page ("... written by ..."); return title."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    i = 0
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i < len(lines) and _TITLE_KEYS.match(lines[i].strip()):
        title, key, j = None, None, i
        while j < len(lines) and lines[j].strip():
            ln = lines[j]
            m = re.match(r"^\s*([A-Za-z][A-Za-z ]*?)\s*:\s*(.*)$", ln)
            if m and not ln.startswith((" ", "\t")):
                key = m.group(1).lower()
                if key == "title" and m.group(2).strip():
                    title = m.group(2).strip()
            elif key == "title" and title is None:
                title = ln.strip()
            elif key == "title":
                title += " " + ln.strip()
            j += 1
        return (_clean_markup(title) if title else None), "\n".join(lines[j:])
    # plain: everything before FADE IN / the first heading, when it carries a "written by" line
    for j in range(i, min(len(lines), i + 80)):
        t = lines[j].strip().replace("\f", "")
        if _is_heading(t, False) or t.upper().startswith("FADE IN"):
            head = [x.strip() for x in lines[i:j] if x.strip().replace("\f", "")]
            if head and any(_WRITTEN_BY.match(x) for x in head):
                title = head[0].strip("\"'“” ")
                return (title or None), "\n".join(lines[j:])
            break
    return None, text


def _next_nonblank(rows: list[_Row], i: int) -> int | None:
    j = i + 1
    while j < len(rows) and rows[j].blank:
        j += 1
    return j if j < len(rows) else None


def _dual_cue(row: _Row) -> _Cue | None:
    """Two cues side by side ("JOHN          MARY") in plain-text dual dialogue."""
    m = re.match(r"^(\S.*?\S|\S)(\s{3,})(\S.*)$", row.text)
    if not m:
        return None
    a, b = _parse_cue_text(m.group(1)), _parse_cue_text(m.group(3))
    if not a or not b:
        return None
    a.right = b
    a.right_col = row.indent + m.start(3)
    return a


def _layout_mode(rows: list[_Row]) -> bool:
    """True when cues are indented deeper than the dialogue under them (classic text/PDF layout)."""
    deep = flush = 0
    for i, r in enumerate(rows):
        if r.blank or _is_heading(r.text) or not (_parse_cue_text(r.text) or _dual_cue(r)):
            continue
        j = _next_nonblank(rows, i)
        if j is None:
            continue
        if r.indent >= 6 and rows[j].indent <= r.indent - 3:
            deep += 1
        elif r.indent < 6 and j == i + 1 and (i == 0 or rows[i - 1].blank):
            flush += 1
    return deep >= 2 and deep > flush


# ------------------------------------------------------------------------------------------------------ parser


@dataclass
class _Stats:
    headings: int = 0
    parentheticals: int = 0
    extensions: int = 0


def _split_columns(row: _Row, right_col: int) -> tuple[str, str]:
    """Split a dual-dialogue row at the gap nearest the right column."""
    raw = row.raw
    best = None
    for m in re.finditer(r"\S(\s{2,})(?=\S)", raw):
        end = m.end()
        if abs(end - right_col) <= 12 and (best is None or abs(end - right_col) < abs(best - right_col)):
            best = end
    if best is not None:
        return raw[:best].strip(), raw[best:].strip()
    return (row.text, "") if row.indent < right_col - 4 else ("", row.text)


def _block_to_line(texts: list[str]) -> tuple[str, list[str]]:
    """Dialogue rows -> (dialogue text, parentheticals)."""
    words: list[str] = []
    parens: list[str] = []
    open_paren: list[str] | None = None
    for t in texts:
        t = t.strip()
        if not t:
            continue
        if open_paren is not None:
            open_paren.append(t)
            if t.endswith(")"):
                parens.append(" ".join(open_paren))
                open_paren = None
            continue
        if t.startswith("(") and t.count("(") >= t.count(")"):
            if t.endswith(")"):
                parens.append(t)
            else:
                open_paren = [t]
            continue
        if t.startswith("~"):
            t = t[1:].strip()
        words.append(t)
    if open_paren:
        words.extend(open_paren)
    parens = [re.sub(r"\s+", " ", p.strip()[1:-1] if p.strip().endswith(")") else p.strip()[1:]).strip() for p in parens]
    return _clean_markup(" ".join(words)), [p for p in parens if p]


def _parse_rows(rows: list[_Row], fountain_marks: bool = True, fountain: bool = False) -> tuple[list[ScriptLine], _Stats]:
    layout = _layout_mode(rows)
    if layout:
        rows = [r for r in rows if not r.blank]  # PDF text layers scatter blank lines; indentation is the signal
    stats = _Stats()
    out: list[ScriptLine] = []
    scene = 0
    pending_more: str | None = None  # character whose block ended in (MORE)

    def emit(cue: _Cue, texts: list[str], more: bool) -> None:
        nonlocal pending_more
        text, parens = _block_to_line(texts)
        if not text:
            pending_more = None
            return
        stats.parentheticals += len(parens)
        ext = cue.extension
        if pending_more == cue.name and out and out[-1].character == cue.name and ext and "CONT'D" in ext:
            prev = out[-1]
            prev.text = f"{prev.text} {text}".strip()
            if parens:
                prev.parenthetical = "; ".join(filter(None, [prev.parenthetical, *parens]))
        else:
            if ext:
                stats.extensions += 1
            out.append(ScriptLine(index=len(out), character=cue.name, text=text, scene=scene,
                                  parenthetical="; ".join(parens) or None, extension=ext))
        pending_more = cue.name if more else None

    i, n = 0, len(rows)
    while i < n:
        r = rows[i]
        t = r.text
        if r.blank:
            i += 1
            continue
        if fountain_marks and (t.startswith("!") or t.startswith(("#", "=")) or (t.startswith(">") and t.endswith("<"))):
            i += 1
            continue
        if _is_heading(t, fountain_marks):
            scene += 1
            stats.headings += 1
            i += 1
            continue
        if _is_transition(t):
            i += 1
            continue
        cue = _dual_cue(r) or _parse_cue_text(t)
        j = _next_nonblank(rows, i) if layout else (i + 1 if i + 1 < n and not rows[i + 1].blank else None)
        ok = cue is not None and j is not None
        if ok and layout:
            ok = rows[j].indent <= r.indent - 3
        elif ok:
            ok = (i == 0 or rows[i - 1].blank) and not _is_heading(rows[j].text, fountain_marks)
        if not ok:
            i += 1
            continue
        # collect the dialogue block
        block: list[_Row] = []
        base: int | None = None
        in_paren = False
        k = j
        while k < n:
            b = rows[k]
            if b.blank:
                if fountain and not layout and b.spacer and k + 1 < n and not rows[k + 1].blank:
                    k += 1  # Fountain: a two-space line keeps the dialogue going
                    continue
                break
            if _is_heading(b.text, fountain_marks) or _is_transition(b.text):
                break
            if layout:
                is_paren = b.text.startswith("(") or in_paren
                in_paren = is_paren and not b.text.endswith(")")
                if base is not None and b.indent < base - 2:
                    break  # dedent: action
                if base is None and not is_paren and b.indent < r.indent - 3:
                    base = b.indent
                nxt = k + 1
                if (block and b.indent >= (base if base is not None else b.indent) + 3 and not is_paren
                        and (_parse_cue_text(b.text) or _dual_cue(b)) and nxt < n and rows[nxt].indent <= b.indent - 3):
                    break  # the next cue
                if b.indent >= r.indent + 8 and not is_paren and cue.right is None:
                    break  # far right: a page number or a transition we did not recognise
            block.append(b)
            if b.more:
                k += 1
                break
            k += 1
        more = bool(block and block[-1].more)
        if cue.right is not None:
            left, right = [], []
            rc = _right_dialogue_col(block, cue.right_col)
            for b in block:
                a, c = _split_columns(b, rc)
                left.append(a)
                right.append(c)
            emit(cue, left, False)
            emit(cue.right, right, False)
        else:
            emit(cue, [b.text for b in block], more)
        i = k
    for idx, ln in enumerate(out):
        ln.index = idx
    return out, stats


def _right_dialogue_col(block: list[_Row], cue_col: int) -> int:
    """Where the right-hand column of dual dialogue starts (from the first row that has two chunks)."""
    for b in block:
        m = list(re.finditer(r"\S(\s{3,})(?=\S)", b.raw))
        if m:
            return m[-1].end()
    return cue_col


# ----------------------------------------------------------------------------------------------------- formats


def _check(lines: list[ScriptLine], stats: _Stats, name: str) -> None:
    per: dict[str, int] = {}
    for ln in lines:
        per[ln.character] = per.get(ln.character, 0) + 1
    structured = stats.headings > 0 or stats.parentheticals > 0 or stats.extensions > 0 or (per and max(per.values()) >= 2)
    if len(lines) < 2 or not structured:
        raise BadInputError(f"could not find screenplay structure (character cues + dialogue) in {name}")


def _parse_screenplay(text: str, name: str, fmt: str) -> Script:
    title, body = _title_page(text)
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)  # Fountain boneyard
    body = re.sub(r"\[\[.*?\]\]", "", body, flags=re.S)  # Fountain notes
    lines, stats = _parse_rows(_rows(body), fountain_marks=True, fountain=fmt == "fountain")
    _check(lines, stats, name)
    return Script(title=title, lines=lines, format=fmt)


def _parse_fdx(text: str, name: str) -> Script:
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(text.encode("utf-8") if text.lstrip().startswith("<?xml") else text)
    except ET.ParseError as e:
        raise BadInputError(f"{name} is not readable Final Draft XML ({e})") from None
    lines: list[ScriptLine] = []
    stats = _Stats()
    scene = 0
    cue: _Cue | None = None
    texts: list[str] = []

    def flush():
        nonlocal cue, texts
        if cue and texts:
            text, parens = _block_to_line(texts)
            if text:
                stats.parentheticals += len(parens)
                stats.extensions += bool(cue.extension)
                lines.append(ScriptLine(len(lines), cue.name, text, scene, "; ".join(parens) or None, cue.extension))
        cue, texts = None, []

    for el in root.iter():
        if not el.tag.endswith("Paragraph") or el.find("./Paragraph") is not None:
            continue
        kind = (el.get("Type") or "").lower()
        body = "".join(t.text or "" for t in el.iter() if t.tag.endswith("Text")).strip()
        if kind == "scene heading":
            flush()
            scene += 1
            stats.headings += 1
        elif kind == "character":
            flush()
            cue = _parse_cue_text("@" + body) if body else None
        elif kind in ("dialogue", "parenthetical", "lyrics") and cue:
            texts.append(body)
        else:
            flush()
    flush()
    _check(lines, stats, name)
    return Script(title=None, lines=lines, format="fdx")


def _parse_subtitles_as_script(doc, name: str) -> Script:
    lines = [ScriptLine(index=i, character=ln.speaker_cue, text=ln.text, scene=0)
             for i, ln in enumerate([x for x in doc.lines if x.speaker_cue and x.text])]
    if len(lines) < 1:
        raise BadInputError(f"could not find screenplay structure (character cues + dialogue) in {name}: "
                            "the subtitles carry no speaker name cues (SDH 'NAME:')")
    return Script(title=None, lines=lines, format="subtitles")


def _looks_like_subtitles(text: str) -> bool:
    head = text.lstrip("\ufeff \n\r\t")[:20000]
    if head.startswith("WEBVTT") or "[Script Info]" in head[:2000]:
        return True
    return len(re.findall(r"^\s*(?:\d{1,3}:)?\d{1,2}:\d{2}[.,]\d{1,3}\s*-{1,2}>", head, re.M)) >= 2


def parse_script_text(text: str, format_hint: str | None = None, *, source: str = "text") -> Script:
    """Parse screenplay text; format_hint: "fountain", "screenplay", "fdx", or a subtitle format ("srt", ...)."""
    hint = (format_hint or "").lower().lstrip(".")
    if hint in ("srt", "vtt", "webvtt", "ass", "ssa", "sub", "subtitles", "microdvd") or (not hint and _looks_like_subtitles(text)):
        from pipeline.text.subtitles import read_subtitle_text

        doc = read_subtitle_text(text, None if hint in ("subtitles", "") else hint, source=source)
        return _parse_subtitles_as_script(doc, source)
    if hint == "fdx" or (not hint and text.lstrip().startswith("<?xml") and "FinalDraft" in text[:500]):
        return _parse_fdx(text, source)
    if hint in ("fountain", "spmd"):
        fmt = "fountain"
    elif hint:
        fmt = "screenplay" if hint not in ("pdf",) else "pdf"
    else:
        first = text.lstrip("\ufeff \n\r\t").split("\n", 1)[0]
        fountainy = _TITLE_KEYS.match(first) or re.search(r"^(?:@\S|\.[A-Z]{2}|~\S)|\[\[|^/\*|\^\s*$", text, re.M)
        fmt = "fountain" if fountainy else "screenplay"
    return _parse_screenplay(text, source, fmt)


def _pdf_text(p: Path, raw: bytes | None = None) -> str:
    import io
    import logging

    import pypdf

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        # the bytes already read (size-capped, regular file) rather than opening the path a second time
        reader = pypdf.PdfReader(io.BytesIO(raw) if raw is not None else str(p))
        if reader.is_encrypted:
            try:
                reader.decrypt("")
            except Exception:  # noqa: BLE001
                raise BadInputError(f"{p.name} is an encrypted PDF; remove the password first") from None
        pages = []
        for page in reader.pages:
            try:
                pages.append(page.extract_text(extraction_mode="layout") or "")
            except Exception:  # noqa: BLE001 - odd layout operators: fall back to plain extraction
                pages.append(page.extract_text() or "")
    except BadInputError:
        raise
    except Exception as e:  # noqa: BLE001 - pypdf raises many kinds on damaged files
        raise BadInputError(f"{p.name} is not a readable PDF ({type(e).__name__}: {e})") from None
    text = "\n\f".join(pages)
    if not re.search(r"\w", text):
        raise BadInputError(f"PDF has no text layer (scanned?); run OCR first, e.g. ocrmypdf {p.name} out.pdf")
    return text


def parse_script(path: str | os.PathLike) -> Script:
    """Parse a screenplay (.txt/.fountain/.pdf/.fdx) or subtitle file; BadInputError with a one-line reason.

    Only regular files up to SCRIPT_MAX_BYTES (50 MB; subtitle files: SUBTITLE_MAX_BYTES) are read."""
    from pipeline.text.subtitles import SCRIPT_MAX_BYTES, read_user_file

    p, raw = read_user_file(path, "script", SCRIPT_MAX_BYTES)
    if not raw.strip():
        raise BadInputError(f"empty file: {p.name}")
    suffix = p.suffix.lower()
    if suffix == ".pdf" or raw.startswith(b"%PDF"):
        return _parse_screenplay(_pdf_text(p, raw), p.name, "pdf")
    if suffix in SUBTITLE_SUFFIXES:
        from pipeline.text.subtitles import read_subtitle_file

        return _parse_subtitles_as_script(read_subtitle_file(p), p.name)
    from pipeline.text.subtitles import decode_text

    text, _ = decode_text(raw, p.name)
    hint = {".fountain": "fountain", ".spmd": "fountain", ".fdx": "fdx"}.get(suffix)
    return parse_script_text(text, hint, source=p.name)
