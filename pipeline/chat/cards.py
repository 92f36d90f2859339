"""Character Card V2 import/export (JSON, and PNG with the card in a ``chara`` tEXt chunk).

A V2 card is ``{"spec": "chara_card_v2", "spec_version": "2.0", "data": {...}}`` with the fields name,
description, personality, scenario, first_mes, mes_example, creator_notes, system_prompt,
post_history_instructions, alternate_greetings, character_book, tags, creator, character_version and
extensions. A PNG card carries that JSON base64-encoded in a tEXt chunk named ``chara``.
Our settings (voice, provider, model, temperature) go in ``data.extensions.voice_weaver``; every field we do
not use is kept in ``Persona.extra`` so a card survives import → export unchanged.
Anything malformed raises :class:`BadInputError` with one line.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
import re
import zlib
from pathlib import Path

from ..errors import BadInputError
from .persona import DEFAULT_TEMPERATURE, Persona, build_system_prompt

SPEC = "chara_card_v2"
SPEC_VERSION = "2.0"
EXTENSION_KEY = "voice_weaver"
MAX_CARD_BYTES = 32 * 1024 * 1024
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_STRING_FIELDS = ("name", "description", "personality", "scenario", "first_mes", "mes_example", "creator_notes",
                  "system_prompt", "post_history_instructions", "creator", "character_version")
_USED = {"name", "system_prompt", "first_mes", "mes_example", "extensions"}


# -- persona <-> card dict ------------------------------------------------------------------------------
def card_from_persona(persona: Persona) -> dict:
    """A Character Card V2 dict for a persona (fields kept from an imported card come back as they were)."""
    extra = dict(persona.extra or {})
    extensions = dict(extra.pop("extensions", {}) or {})
    extensions[EXTENSION_KEY] = {
        "voice": persona.voice,
        "provider": persona.provider,
        "model": persona.model,
        "temperature": persona.temperature,
        "options": dict(persona.options or {}),
        "source_title": persona.source_title,
    }
    examples = "".join(f"<START>\n{{{{char}}}}: {line}\n" for line in persona.example_lines)
    data = {
        "name": persona.name,
        "description": extra.pop("description", None) or (f"{persona.name} from {persona.source_title}." if persona.source_title else ""),
        "personality": extra.pop("personality", ""),
        "scenario": extra.pop("scenario", ""),
        "first_mes": persona.greeting or "",
        "mes_example": examples,
        "creator_notes": extra.pop("creator_notes", None) or "Made with Voice Weaver.",
        "system_prompt": persona.system_prompt or "",
        "post_history_instructions": extra.pop("post_history_instructions", ""),
        "alternate_greetings": list(extra.pop("alternate_greetings", []) or []),
        "character_book": extra.pop("character_book", None),
        "tags": list(extra.pop("tags", None) or ([persona.source_title] if persona.source_title else [])),
        "creator": extra.pop("creator", ""),
        "character_version": extra.pop("character_version", ""),
        "extensions": extensions,
    }
    if data["character_book"] is None:
        del data["character_book"]  # optional in the spec; when present it must be an object
    data.update(extra)  # unknown fields from the imported card
    return {"spec": SPEC, "spec_version": SPEC_VERSION, "data": data}


def _examples_from_mes(mes: str, name: str) -> list[str]:
    """The character's lines from a mes_example block ('{{char}}: ...' or '<name>: ...')."""
    out = []
    prefixes = ("{{char}}:", "<bot>:", f"{name}:")
    for raw in mes.replace("\r\n", "\n").split("\n"):
        line = raw.strip()
        for p in prefixes:
            if line.lower().startswith(p.lower()):
                text = line[len(p):].strip()
                if text:
                    out.append(text)
                break
    return out


def _subst(text: str, name: str) -> str:
    return re.sub(r"\{\{char\}\}|<BOT>", name, re.sub(r"\{\{user\}\}|<USER>", "the user", text, flags=re.I), flags=re.I)


def persona_from_card(card) -> Persona:
    """Validate a Character Card V2 dict and turn it into a Persona."""
    if not isinstance(card, dict):
        raise BadInputError("not a character card: the JSON is not an object")
    spec = card.get("spec")
    if spec != SPEC:
        found = f"spec is '{spec}'" if spec else "it has no 'spec' field"
        raise BadInputError(f"not a Character Card V2 ({found}; expected '{SPEC}')")
    data = card.get("data")
    if not isinstance(data, dict):
        raise BadInputError("Character Card V2 has no 'data' object")
    for k in _STRING_FIELDS:
        if k in data and data[k] is not None and not isinstance(data[k], str):
            raise BadInputError(f"Character Card V2 field '{k}' must be text")
    name = (data.get("name") or "").strip()
    if not name:
        raise BadInputError("Character Card V2 has no character name (data.name is missing or empty)")
    ext = data.get("extensions") or {}
    if not isinstance(ext, dict):
        raise BadInputError("Character Card V2 field 'extensions' must be an object")
    ours = ext.get(EXTENSION_KEY) or {}
    if not isinstance(ours, dict):
        ours = {}

    examples = _examples_from_mes(data.get("mes_example") or "", name)
    system_prompt = (data.get("system_prompt") or "").strip()
    description = "\n\n".join(
        s for s in ((data.get("description") or "").strip(), (data.get("personality") or "").strip(),
                    ("Scenario: " + data["scenario"].strip()) if (data.get("scenario") or "").strip() else "") if s
    )
    default = build_system_prompt(name, examples, ours.get("source_title"), description=_subst(description, name))
    if not system_prompt:
        system_prompt = default
    elif "{{original}}" in system_prompt:
        system_prompt = system_prompt.replace("{{original}}", default)
    system_prompt = _subst(system_prompt, name)
    try:
        temperature = float(ours.get("temperature", DEFAULT_TEMPERATURE))
    except (TypeError, ValueError):
        temperature = DEFAULT_TEMPERATURE

    extra = {k: v for k, v in data.items() if k not in _USED}
    other_ext = {k: v for k, v in ext.items() if k != EXTENSION_KEY}
    if other_ext:
        extra["extensions"] = other_ext
    return Persona(
        name=name, system_prompt=system_prompt, example_lines=examples,
        model=ours.get("model"), provider=ours.get("provider"), temperature=temperature,
        options=dict(ours.get("options") or {}), voice=ours.get("voice"), greeting=_subst(data.get("first_mes") or "", name),
        source_title=ours.get("source_title"), extra=extra,
    )


# -- bytes ----------------------------------------------------------------------------------------------
def _png_chara(data: bytes) -> str:
    """The 'chara' text of a PNG (tEXt, zTXt or iTXt), read chunk by chunk without decoding the image."""
    pos = len(PNG_MAGIC)
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        ctype = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if len(body) < length:
            raise BadInputError("PNG card is truncated")
        pos += 12 + length
        if ctype not in (b"tEXt", b"zTXt", b"iTXt"):
            if ctype == b"IEND":
                break
            continue
        key, _, rest = body.partition(b"\x00")
        if key != b"chara":
            continue
        try:
            if ctype == b"tEXt":
                return rest.decode("latin-1")
            if ctype == b"zTXt":
                return zlib.decompress(rest[1:]).decode("latin-1")
            comp_flag, rest = rest[0], rest[2:]
            _lang, _, rest = rest.partition(b"\x00")
            _tkey, _, text = rest.partition(b"\x00")
            return (zlib.decompress(text) if comp_flag else text).decode("utf-8")
        except (zlib.error, UnicodeDecodeError, IndexError):
            raise BadInputError("PNG card's 'chara' chunk is corrupt") from None
    raise BadInputError("PNG has no character card in it (no 'chara' text chunk)")


def read_card(data: bytes) -> Persona:
    """A Persona from card bytes: PNG (``chara`` chunk) or JSON."""
    if len(data) > MAX_CARD_BYTES:
        raise BadInputError(f"character card is too large ({len(data) // (1024 * 1024)} MB; the limit is {MAX_CARD_BYTES // (1024 * 1024)} MB)")
    if data.startswith(PNG_MAGIC):
        text = _png_chara(data)
        try:
            raw = base64.b64decode(text.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise BadInputError("PNG card's 'chara' chunk is not valid base64") from None
    else:
        raw = data
    try:
        card = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise BadInputError("character card is neither a PNG nor UTF-8 JSON") from None
    except json.JSONDecodeError as e:
        raise BadInputError(f"character card is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    return persona_from_card(card)


def write_card_json(persona: Persona) -> bytes:
    """The persona as a Character Card V2 JSON file (UTF-8)."""
    return json.dumps(card_from_persona(persona), ensure_ascii=False, indent=2).encode("utf-8")


def _placeholder_avatar(name: str):
    """A 400×600 gradient in a colour derived from the name (cards need a picture; we have none)."""
    import numpy as np
    from PIL import Image

    h = zlib.crc32(name.encode("utf-8"))
    base = np.array([(h >> 16) & 255, (h >> 8) & 255, h & 255], dtype=np.float32)
    ramp = np.linspace(0.35, 1.0, 600, dtype=np.float32)[:, None, None]
    img = np.clip(ramp * (base[None, None, :] * 0.6 + 80), 0, 255).astype(np.uint8)
    return Image.fromarray(np.repeat(img, 400, axis=1), "RGB")


def write_card_png(persona: Persona, avatar=None) -> bytes:
    """The persona as a PNG card: ``avatar`` (path, bytes or PIL image; a placeholder if None) + 'chara' chunk."""
    from PIL import Image, PngImagePlugin

    if avatar is None:
        img = _placeholder_avatar(persona.name)
    elif isinstance(avatar, Image.Image):
        img = avatar
    else:
        try:
            img = Image.open(io.BytesIO(avatar) if isinstance(avatar, (bytes, bytearray)) else avatar)
            img.load()
        except (OSError, ValueError) as e:
            raise BadInputError(f"avatar image cannot be read: {e}") from None
    if img.mode not in ("RGB", "RGBA"):
        img = img.convert("RGBA")
    info = PngImagePlugin.PngInfo()
    info.add_text("chara", base64.b64encode(write_card_json(persona)).decode("ascii"))
    buf = io.BytesIO()
    img.save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


# -- files ----------------------------------------------------------------------------------------------
def import_card(path: str | os.PathLike) -> Persona:
    """Read a .json or .png Character Card V2 file."""
    return read_card(card_file_bytes(path))


def card_file_bytes(path: str | os.PathLike) -> bytes:
    """The bytes of a card file (size-capped); one-line BadInputError when it cannot be read."""
    p = Path(path)
    try:
        if p.stat().st_size > MAX_CARD_BYTES:
            raise BadInputError(f"character card {p.name} is too large (limit {MAX_CARD_BYTES // (1024 * 1024)} MB)")
        data = p.read_bytes()
    except FileNotFoundError:
        raise BadInputError(f"character card not found: {p}") from None
    except IsADirectoryError:
        raise BadInputError(f"character card path is a folder: {p}") from None
    except OSError as e:
        raise BadInputError(f"cannot read character card {p}: {e.strerror}") from None
    return data


def export_card(persona: Persona, path: str | os.PathLike, avatar=None) -> Path:
    """Write the persona as a card; the suffix picks the format (.png, else JSON). Returns the path."""
    p = Path(path)
    data = write_card_png(persona, avatar) if p.suffix.lower() == ".png" else write_card_json(persona)
    from ..files import write_atomic

    return write_atomic(p, data)
