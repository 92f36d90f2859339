"""Which text encoding a subtitle or script file is in, and how sure that guess is.

Order: a BOM (UTF-8/16/32), BOM-less UTF-16 (NUL in every other byte), strict UTF-8; else every legacy encoding
in :data:`LEGACY` (plus what charset-normalizer proposes) decodes a sample of the file — its lines holding
non-ASCII bytes — and each result gets a plausibility cost per non-ASCII character:

- letters of the common Western alphabets (French, Spanish, German, Italian, Portuguese, Nordic) cost nothing;
  rarer Latin letters (Central European, Baltic, Turkish…) cost a little, so a cp1252 "à" never turns into a
  Baltic "ą" when both decode; a word made mostly of accented letters ("Ïðèâåò": Russian read as cp1252) costs;
- a word mixing scripts (Latin + Cyrillic "cafй", Latin + Han) costs a lot, a word in one script (Cyrillic,
  Greek, kana + Han) nothing; Han characters outside the common sets (GB2312 level 1, Big5 frequent, JIS level 1)
  and half-width katakana cost; a lower-case letter followed by a capital inside a word costs;
- symbols (¹ ³ ¤ ¦ …) cost, more inside a word; controls, private-use and unassigned code points cost most.

The cheapest wins (a small prior breaks ties: cp1252 first). The guess is *unsure* when another candidate
decodes the sample to different text at a close cost, or when even the best costs much: the caller records
that and lets the user pick (:func:`decode_as`). A language hint ("pl", "ru", "ja"…) makes that language's
letters and encodings preferred.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from dataclasses import asdict, dataclass, field

from pipeline.errors import BadInputError

__all__ = ["Candidate", "Decoded", "detect", "decode_as", "normalise_encoding", "LEGACY"]

_BOMS = [
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
]

# legacy encodings tried on every non-UTF-8 file, with a prior cost (ties go to the lower one)
LEGACY: dict[str, float] = {
    "cp1252": 0.0, "cp1251": 0.02, "gb18030": 0.03, "shift_jis": 0.03, "cp932": 0.04, "cp1250": 0.05,
    "big5": 0.06, "cp1253": 0.08, "cp1254": 0.08, "koi8-r": 0.08, "euc-jp": 0.08, "cp1257": 0.1,
    "cp1255": 0.12, "cp1256": 0.12, "iso8859-15": 0.12, "cp866": 0.15,
}
_OTHER_PRIOR = 0.5  # an encoding only charset-normalizer proposed
UNSURE_MARGIN = 0.35  # a different text within this cost per character of the best: unsure
UNSURE_COST = 1.2  # the best costs more than this per non-ASCII character: unsure
_SAMPLE_BYTES = 64 * 1024
_FEW = 8  # UTF-8 text with fewer non-ASCII characters than this is checked against the legacy readings too
_JAPANESE = ("shift_jis", "cp932", "euc-jp", "euc_jp", "iso2022_jp", "shift_jisx0213", "euc_jisx0213")
_CHINESE = ("gb18030", "gbk", "gb2312", "big5", "big5hkscs", "cp950", "hz")
_KANA = re.compile(r"[\u3041-\u30fa\u30fc]")
_HAN = re.compile(r"[\u4e00-\u9fff]")

# language hint -> (encodings it is usually in, letters that are native to it)
LANGUAGES: dict[str, tuple[tuple[str, ...], str]] = {
    "pl": (("cp1250",), "ąćęłńóśźżĄĆĘŁŃÓŚŹŻ"),
    "cs": (("cp1250",), "áčďéěíňóřšťúůýžÁČĎÉĚÍŇÓŘŠŤÚŮÝŽ"),
    "sk": (("cp1250",), "áäčďéíĺľňóôŕšťúýžÁÄČĎÉÍĹĽŇÓÔŔŠŤÚÝŽ"),
    "hu": (("cp1250",), "áéíóöőúüűÁÉÍÓÖŐÚÜŰ"),
    "ro": (("cp1250",), "ăâîșțşţĂÂÎȘȚŞŢ"),
    "hr": (("cp1250",), "čćđšžČĆĐŠŽ"), "sl": (("cp1250",), "čšžČŠŽ"), "bs": (("cp1250",), "čćđšžČĆĐŠŽ"),
    "lt": (("cp1257",), "ąčęėįšųūžĄČĘĖĮŠŲŪŽ"),
    "lv": (("cp1257",), "āčēģīķļņšūžĀČĒĢĪĶĻŅŠŪŽ"),
    "et": (("cp1257",), "äöõüšžÄÖÕÜŠŽ"),
    "tr": (("cp1254",), "çğıöşüÇĞİÖŞÜ"),
    "is": (("cp1252",), "áðéíóúýþæöÁÐÉÍÓÚÝÞÆÖ"),
    "ru": (("cp1251", "koi8-r"), ""), "uk": (("cp1251",), ""), "bg": (("cp1251",), ""), "sr": (("cp1251",), ""),
    "el": (("cp1253",), ""), "he": (("cp1255",), ""), "ar": (("cp1256",), ""),
    "ja": (("shift_jis", "cp932", "euc-jp"), ""), "zh": (("gb18030", "big5"), ""), "ko": (("cp949",), ""),
}

_WEST = set("àâäçéèêëîïôöùûüÿœáíóúñìòãõåæøßÀÂÄÇÉÈÊËÎÏÔÖÙÛÜŸŒÁÍÓÚÑÌÒÃÕÅÆØ")
_WEST_RARE = set("ðþýÐÞÝ")
_PUNCT = set("’‘“”„‚–—…«»‹›¿¡€°·•\u00a0\u2009\u202f")
_CJK_PUNCT = set("、。「」『』・ー〜～！？（），：；．《》〈〉【】　…―‐")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_TOKEN = re.compile(r"\S+")
_WORD = re.compile(r"[^\W\d_]+")


@dataclass
class Candidate:
    encoding: str
    cost: float  # plausibility cost per non-ASCII character, prior included (lower is better)
    sample: str = ""  # a few decoded lines where the candidates differ


@dataclass
class Decoded:
    text: str
    encoding: str
    unsure: bool = False
    candidates: list[Candidate] = field(default_factory=list)  # best first, each decoding to different text
    method: str = "detected"  # bom | utf-16 | utf-8 | detected | user

    def info(self) -> dict:
        """JSON-ready record for subtitle_tracks.encoding_info."""
        return {"encoding": self.encoding, "unsure": self.unsure, "method": self.method,
                "candidates": [asdict(c) for c in self.candidates]}


def normalise_encoding(name: str) -> str:
    """Python's name for a user-given encoding ("CP-1252", "latin1", "Shift-JIS"); BadInputError if unknown."""
    text = str(name or "").strip()
    for variant in (text, text.replace("-", ""), text.replace("-", "").replace("_", "")) if text else ():
        try:
            info = codecs.lookup(variant)
        except LookupError:
            continue
        if getattr(info, "_is_text_encoding", True):  # not base64, rot13 and friends
            return info.name
    raise BadInputError(f"unknown text encoding '{name}' (e.g. cp1252, cp1251, shift_jis, gb18030, utf-16)")


def _controls_ratio(text: str) -> float:
    if not text:
        return 0.0
    bad = sum(1 for ch in text if (ord(ch) < 32 and ch not in "\t\n\r\f\v") or 0x7F <= ord(ch) < 0xA0)
    return bad / len(text)


def _script(ch: str) -> str:
    o = ord(ch)
    if o < 0x80:
        return "ascii"
    if 0x0400 <= o < 0x0530:
        return "cyrillic"
    if 0x0370 <= o < 0x0400:
        return "greek"
    if 0x3040 <= o < 0x3100 or 0x31F0 <= o < 0x3200:
        return "kana"
    if 0xFF66 <= o < 0xFFA0:
        return "halfkana"
    if 0x4E00 <= o < 0xA000 or 0x3400 <= o < 0x4DC0 or 0xF900 <= o < 0xFB00 or 0x20000 <= o < 0x2FA20:
        return "han"
    if 0xAC00 <= o < 0xD7B0 or 0x1100 <= o < 0x1200 or 0x3130 <= o < 0x3190:
        return "hangul"
    if 0x0590 <= o < 0x0600:
        return "hebrew"
    if 0x0600 <= o < 0x0700:
        return "arabic"
    if o < 0x0250 or 0x1E00 <= o < 0x1F00:
        return "latin"
    return "other"


_FAMILY = {"ascii": "latin", "latin": "latin", "kana": "cjk", "han": "cjk", "halfkana": "cjk"}


def _han_common(ch: str) -> bool:
    for enc, lo, hi in (("gb2312", 0xB0A1, 0xD7FE), ("big5", 0xA440, 0xC67E), ("shift_jis", 0x889F, 0x9872)):
        try:
            b = ch.encode(enc)
        except UnicodeEncodeError:
            continue
        if len(b) == 2 and lo <= int.from_bytes(b, "big") <= hi:
            return True
    return False


class _Scorer:
    def __init__(self, native: str = ""):
        self.native = set(native)
        self.han: dict[str, bool] = {}

    def letter_cost(self, ch: str, script: str) -> float:
        if script == "latin":
            if ch in _WEST or ch in self.native:
                return 0.0
            return 0.5 if ch in _WEST_RARE else 1.0
        if script == "greek":
            return 1.5 if ch in "ΐΰ" else 0.0
        if script in ("cyrillic", "kana", "hebrew", "arabic"):
            return 0.0
        if script == "hangul":  # the 2,350 syllables of KS X 1001 are the common ones
            try:
                b = ch.encode("euc_kr")
            except UnicodeEncodeError:
                return 1.5
            return 0.0 if len(b) == 2 and 0xB0 <= b[0] <= 0xC8 else 1.5
        if script == "han":
            if ch not in self.han:
                self.han[ch] = _han_common(ch)
            return 0.0 if self.han[ch] else 1.5
        if script == "halfkana":
            return 2.0
        return 2.0

    def cost(self, text: str) -> tuple[float, int]:
        """(total cost, number of non-ASCII characters) of a decoded sample."""
        total, count = 0.0, 0
        n = len(text)
        for m in _NON_ASCII.finditer(text):
            i = m.start()
            ch = text[i]
            count += 1
            cat = unicodedata.category(ch)
            if cat[0] == "L":
                continue  # letters are scored per token below
            if cat[0] == "M":  # a combining mark belongs after a letter of its own script
                prev = text[i - 1] if i else " "
                total += 0.0 if prev.isalpha() and _script(prev) == _script(ch) else 3.0
            elif ch in _PUNCT or ch in _CJK_PUNCT or 0xFF01 <= ord(ch) <= 0xFF5E:
                inside = 0 < i < n - 1 and text[i - 1].isalpha() and text[i + 1].isalpha()
                total += 3.0 if inside and ch in _PUNCT and ch not in "’‘·" else 0.05
            elif cat in ("Cc", "Co", "Cn", "Cs") or ch == "\ufffd":
                total += 10.0
            else:
                inside = 0 < i < n - 1 and text[i - 1].isalpha() and text[i + 1].isalpha()
                total += 4.0 if inside else 2.0
        cased = upper = 0
        for m in _TOKEN.finditer(text):
            token = m.group(0)
            if token.isascii():
                continue
            letters = [c for c in token if c.isalpha()]
            if not letters:
                continue
            scripts = [_script(c) for c in letters]
            families = {_FAMILY.get(s, s) for s in scripts}
            foreign = [(c, s) for c, s in zip(letters, scripts) if s != "ascii"]
            cost = sum(self.letter_cost(c, s) for c, s in foreign)
            if len(families) > 1:
                cost += 3.0 * len(foreign)  # one token in two scripts: "cafй", "Za©СЁФ"
            elif families == {"latin"}:
                odd = [c for c, _ in foreign if (c in _WEST or c in _WEST_RARE) and c not in self.native]
                plain = len(letters) - len(foreign)
                if (plain == 0 and len(odd) >= 2) or (len(odd) >= 3 and len(odd) > plain):
                    cost += 1.5 * len(odd)  # Latin words are mostly plain letters ("Ïðèâåò" is Russian)
            if families == {"greek"}:
                for w in _WORD.findall(token):
                    cost += 3.0 * w[:-1].count("ς")  # final sigma inside a word
                    cost += 1.5 * max(0, sum(1 for c in w if c in "άέήίόύώΐΰ") - 1)  # one accent per word
            if families & {"latin", "cyrillic", "greek"}:
                cost += sum(1.0 for a, b in zip(letters, letters[1:]) if a.islower() and b.isupper())
                for c, _ in foreign:
                    if c.isupper():
                        upper += 1
                    if c.isupper() or c.islower():
                        cased += 1
            total += cost
        if cased >= 8 and upper > 0.6 * cased:
            total += 0.4 * upper  # mostly capitals: a case-swapped reading (cp1251 read as KOI8-R)
        return total, count


def _sample(raw: bytes) -> bytes:
    """The file's lines holding non-ASCII bytes, up to ~64 KB (b"\\n" is never part of a multi-byte character in
    the encodings tried, so each line decodes on its own)."""
    out, size = [], 0
    for line in raw.split(b"\n"):
        if not line.isascii():
            out.append(line)
            size += len(line) + 1
            if size > _SAMPLE_BYTES:
                break
    return b"\n".join(out)


def _proposed(sample: bytes) -> list[str]:
    """Encodings charset-normalizer proposes for the sample (normalised names)."""
    try:
        import charset_normalizer
    except ImportError:  # pragma: no cover - a dependency of the project
        return []
    names = []
    for m in charset_normalizer.from_bytes(sample):
        for enc in [m.encoding, *(m.could_be_from_charset or [])]:
            if enc.startswith(("utf_16", "utf_32", "utf_7")):
                continue
            try:
                names.append(codecs.lookup(enc).name)
            except LookupError:
                continue
    return names


def _diff_sample(texts: list[str], limit: int = 3) -> list[int]:
    """Indices of up to ``limit`` sample lines where the first two texts differ (else the first lines)."""
    rows = [t.split("\n") for t in texts]
    if len(rows) > 1 and len(rows[0]) == len(rows[1]):
        picked = [i for i, (a, b) in enumerate(zip(rows[0], rows[1])) if a != b][:limit]
        if picked:
            return picked
    return list(range(min(limit, len(rows[0]))))


def _candidates(rest: list[tuple[float, str, str]], limit: int = 8) -> list[Candidate]:
    """The chosen reading first, then the other readings of the usual subtitle encodings (cheapest first), then
    those only charset-normalizer proposed; each with the sample lines where the first two differ."""
    shown = _diff_sample([r[2] for r in rest[:2]])
    usual = [r for r in rest[1:] if r[1] in LEGACY or r[1] == "utf-8"]
    ordered = rest[:1] + usual + [r for r in rest[1:] if r not in usual]
    out = []
    for cost, enc, text in ordered[:limit]:
        rows = text.split("\n")
        out.append(Candidate(enc, round(cost, 3), "\n".join(rows[j] for j in shown if j < len(rows))[:300]))
    return out


def _lang(language: str | None) -> str:
    return (language or "").strip().lower().replace("_", "-").split("-")[0]


def _check_text(text: str, name: str) -> None:
    if _controls_ratio(text[:20000]) > 0.05:
        raise BadInputError(f"{name} is not a text file (binary data)")


def _score(sample: bytes, names: list[str], preferred: tuple[str, ...], native: str,
           priors: dict[str, float] | None = None) -> list[tuple[float, str, str]]:
    """(cost per non-ASCII character + prior, encoding, decoded sample) of each encoding that decodes the sample,
    cheapest first."""
    scorer = _Scorer(native)
    scored = []
    for enc in names:
        try:
            text = sample.decode(enc)
        except (UnicodeDecodeError, LookupError):
            continue
        total, count = scorer.cost(text)
        kana, han = len(_KANA.findall(text)), len(_HAN.findall(text))
        if enc in _JAPANESE and han >= 6 and not kana:
            total += 0.5 * han  # Japanese sentences hold kana; Han alone is Chinese
        elif enc in _CHINESE:
            total += 1.0 * kana
        prior = (priors or LEGACY).get(enc, _OTHER_PRIOR) - (0.3 if enc in preferred else 0.0)
        scored.append((total / max(1, count) + prior, enc, text))
    scored.sort(key=lambda s: s[0])
    return scored


def detect(raw: bytes, name: str = "text", *, language: str | None = None) -> Decoded:
    """Decode bytes of unknown encoding; says which encoding, whether the guess is unsure, and the candidates.

    Raises BadInputError (one line, naming ``name``) for binary data or bytes no encoding tried can decode."""
    for bom, enc in _BOMS:
        if raw.startswith(bom):
            try:
                text = raw.decode(enc)
            except UnicodeDecodeError:
                break
            return Decoded(text, enc, method="bom")
    head = raw[:4000]
    if len(head) >= 4 and head.count(b"\x00") >= len(head) // 4:
        even, odd = head[0::2].count(0), head[1::2].count(0)
        enc = "utf-16-le" if odd > even * 3 else "utf-16-be" if even > odd * 3 else None
        if enc:
            try:
                text = raw.decode(enc)
            except UnicodeDecodeError:
                pass
            else:
                _check_text(text, name)
                return Decoded(text, enc, method="utf-16")
        raise BadInputError(f"{name} is not a text file (binary data)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        _check_text(text, name)
        lang = _lang(language)
        preferred, native = LANGUAGES.get(lang, ((), ""))
        few = sum(1 for _ in zip(range(_FEW), _NON_ASCII.finditer(text)))
        if 0 < few < _FEW:  # a handful of non-ASCII bytes can be valid UTF-8 by chance ("谢谢" in GB18030)
            sample = _sample(raw)
            own = _score(sample, ["utf-8"], (), native, {"utf-8": 0.0})
            others = [s for s in _score(sample, list(LEGACY) + list(preferred), preferred, native)
                      if s[2] != own[0][2] and s[0] < UNSURE_COST]
            if others and others[0][0] - own[0][0] < UNSURE_MARGIN:
                rest = own + others
                return Decoded(text, "utf-8", unsure=True, method="utf-8", candidates=_candidates(rest))
        return Decoded(text, "utf-8", method="utf-8")

    lang = _lang(language)
    preferred, native = LANGUAGES.get(lang, ((), ""))
    sample = _sample(raw)
    names = list(LEGACY) + [e for e in preferred if e not in LEGACY]
    names = list(dict.fromkeys(names + _proposed(sample)))
    scored = _score(sample, names, preferred, native)
    # candidates decoding to the same text are one choice (the first, by cost then prior, stands for it)
    distinct: list[tuple[float, str, str]] = []
    for s in scored:
        if all(s[2] != d[2] for d in distinct):
            distinct.append(s)
    for i, (cost, enc, _) in enumerate(distinct):
        try:
            text = raw.decode(enc)
        except UnicodeDecodeError:
            continue
        _check_text(text, name)
        rest = distinct[i:]
        unsure = cost > UNSURE_COST or (len(rest) > 1 and rest[1][0] - cost < UNSURE_MARGIN)
        return Decoded(text, enc, unsure=unsure, candidates=_candidates(rest))
    raise BadInputError(f"{name} is not a text file (cannot detect its encoding)")


def decode_as(raw: bytes, encoding: str, name: str = "text") -> Decoded:
    """Decode with the encoding the user picked (a BOM of that family is dropped); BadInputError when the bytes
    are not valid in it."""
    enc = normalise_encoding(encoding)
    if enc == "utf-8" and raw.startswith(b"\xef\xbb\xbf"):
        enc = "utf-8-sig"
    try:
        text = raw.decode(enc)
    except UnicodeDecodeError as e:
        raise BadInputError(f"{name} is not valid {enc} text (byte 0x{raw[e.start]:02x} at offset {e.start})") from None
    text = text.lstrip("\ufeff")
    _check_text(text, name)
    return Decoded(text, enc, method="user")
