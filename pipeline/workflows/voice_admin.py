"""Voice management: rename, delete into a trash (restore, purge), storage per voice and per shared base model,
and which personas use which voice.

Layout: a voice lives in ``<voices>/<name>/`` (voice.json + adapter or voice state) with its training folder in
``<home>/training/<slug>/``. Deleting moves both into ``<voices>/.trash/<name>/`` (``voice/``, ``training/``,
``trash.json`` with the database row and the personas that were switched to the default voice), so a restore
brings back the same files, the row and those personas. ``purge`` empties the trash. Every user-given name
goes through :func:`pipeline.files.safe_child` before it becomes a path.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from ..errors import BadInputError, NotFoundError, StorageError, WeaverError
from ..files import safe_child
from ..library import voices as sql

DEFAULT = "default"
TRASH = ".trash"


class VoiceInUseError(BadInputError):
    """Deleting a voice that personas use, without reassigning them (``personas``: their names)."""

    def __init__(self, message: str, personas: list[str]):
        super().__init__(message)
        self.personas = personas


def _check_name(name: str) -> str:
    from ..voices.synth import _NAME_RE

    if name == DEFAULT:
        raise BadInputError("the built-in default voice cannot be renamed or deleted")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise BadInputError(f"invalid voice name {name!r}: use letters, digits, space, _ . - (and not 'default')")
    return name


def _slug(text: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "voice"


def training_dir(home: Path, name: str) -> Path:
    return Path(home) / "training" / _slug(name)


def tree_bytes(path: Path) -> int:
    """Bytes of the files under a folder (links not followed; a missing path is 0)."""
    p = Path(path)
    if p.is_symlink() or not p.exists():
        return 0
    if p.is_file():
        return p.stat().st_size
    total = 0
    for root, _dirs, files in os.walk(p):
        for f in files:
            fp = Path(root) / f
            if not fp.is_symlink():
                try:
                    total += fp.stat().st_size
                except OSError:
                    pass
    return total


def _base_bytes(base_model: str | None, stored: int | None) -> int | None:
    if stored:
        return int(stored)
    if not base_model:
        return None
    if base_model.startswith("pocket-tts/"):  # the shared Pocket TTS model in the hub cache
        try:
            from ..voices import pocket

            return pocket.model_bytes(base_model.split("/", 1)[1])
        except WeaverError:
            return None
    try:
        from ..voices.train import dir_bytes, resolve_base_model

        return dir_bytes(resolve_base_model(base_model), ("*.safetensors", "*.bin", "*.gguf")) or None
    except (WeaverError, OSError):
        return None


# ---------------------------------------------------------------------------------------------- read
def users(lib) -> dict[str, list[dict]]:
    return sql.voice_users(lib.db)


def storage(lib, voices_dir: Path) -> dict:
    """{voices: [{name, bytes, voice_bytes, training_bytes, base_model, status, personas}],
    bases: [{base_model, bytes, voices}], trash: [{name, bytes, deleted_at}], trash_bytes, total_bytes}.
    ``bytes`` of a voice is its own files (voice folder + training folder); the base model is counted once."""
    from ..voices.synth import list_voices

    rows = sql.voice_rows(lib.db)
    who = sql.voice_users(lib.db)
    voices, bases = [], {}
    for v in list_voices(voices_dir):
        if v.builtin:
            continue
        r = rows.get(v.name, {})
        vb = tree_bytes(Path(v.path))
        tb = tree_bytes(training_dir(lib.home, v.name))
        voices.append({"name": v.name, "voice_bytes": vb, "training_bytes": tb, "bytes": vb + tb,
                       "base_model": v.base_model, "status": r.get("status", "ready"),
                       "personas": [p["name"] for p in who.get(v.name, [])]})
        if v.base_model:
            b = bases.setdefault(v.base_model, {"base_model": v.base_model, "bytes": None, "voices": []})
            b["voices"].append(v.name)
            b["bytes"] = b["bytes"] or _base_bytes(v.base_model, r.get("base_bytes"))
    trash = trash_list(voices_dir)
    trash_bytes = sum(t["bytes"] for t in trash)
    total = sum(v["bytes"] for v in voices) + sum(b["bytes"] or 0 for b in bases.values()) + trash_bytes
    return {"voices": voices, "bases": list(bases.values()), "trash": trash, "trash_bytes": trash_bytes,
            "total_bytes": total, "default_personas": [p["name"] for p in who.get(DEFAULT, [])]}


def trash_list(voices_dir: Path) -> list[dict]:
    root = Path(voices_dir) / TRASH
    out = []
    if not root.is_dir():
        return out
    for d in sorted(root.iterdir()):
        meta = d / "trash.json"
        if d.is_symlink() or not meta.is_file():
            continue
        try:
            m = json.loads(meta.read_text())
        except ValueError:
            continue
        out.append({"name": m.get("name", d.name), "deleted_at": m.get("deleted_at"), "bytes": tree_bytes(d),
                    "reassigned": [p["name"] for p in m.get("personas", [])]})
    return out


# ---------------------------------------------------------------------------------------------- rename
def rename(lib, voices_dir: Path, old: str, new: str) -> dict:
    """Rename a voice: its folder, voice.json, database row, training folder and every persona using it."""
    _check_name(old)
    _check_name(new)
    if old == new:
        raise BadInputError("the new name is the same as the old one")
    src, dest = safe_child(voices_dir, old), safe_child(voices_dir, new)
    row = sql.voice_row(lib.db, old)
    if row is None and not (src / "voice.json").is_file():
        raise NotFoundError(f"no voice named '{old}'")
    if dest.exists() or dest.is_symlink() or sql.voice_row(lib.db, new) is not None:
        raise BadInputError(f"a voice named '{new}' already exists")
    if sql.active_training(lib.db, old):
        raise BadInputError(f"voice '{old}' is training; cancel it or wait before renaming")
    moved = False
    if src.is_dir() and not src.is_symlink():
        os.rename(src, dest)
        moved = True
        meta = dest / "voice.json"
        if meta.is_file():
            m = json.loads(meta.read_text())
            m["name"] = new
            tmp = dest / "voice.json.tmp"
            tmp.write_text(json.dumps(m, indent=2))
            os.replace(tmp, meta)
    try:
        adapter = None
        if row and row.get("adapter_path"):
            adapter = lib.relpath(dest) if moved else None
        with lib.atomic() as db:
            changed = sql.rename_voice(db, old, new, adapter)
    except BaseException:
        if moved:
            os.rename(dest, src)
            _rewrite_name(src, old)
        raise
    t_old, t_new = training_dir(lib.home, old), training_dir(lib.home, new)
    if t_old != t_new and t_old.is_dir() and not t_new.exists():
        os.rename(t_old, t_new)
    _forget_engines()
    return {"renamed": old, "to": new, "personas": changed}


def _rewrite_name(folder: Path, name: str) -> None:
    meta = folder / "voice.json"
    if meta.is_file():
        m = json.loads(meta.read_text())
        m["name"] = name
        meta.write_text(json.dumps(m, indent=2))


def _forget_engines() -> None:
    from ..voices import synth

    synth._ENGINES.clear()


# ---------------------------------------------------------------------------------------------- delete / restore
def delete(lib, voices_dir: Path, name: str, *, reassign: bool = False) -> dict:
    """Move a voice into the trash. Personas using it: VoiceInUseError unless ``reassign`` (then they get the
    default voice, and a restore gives it back to those still on the default)."""
    _check_name(name)
    folder = safe_child(voices_dir, name)
    row = sql.voice_row(lib.db, name)
    has_folder = (folder / "voice.json").is_file() and not folder.is_symlink()
    if row is None and not has_folder and not folder.is_symlink():
        raise NotFoundError(f"no voice named '{name}'")
    if sql.active_training(lib.db, name):
        raise BadInputError(f"voice '{name}' is training; cancel the training first")
    using = sql.personas_using(lib.db, name)
    if using and not reassign:
        names = ", ".join(p["name"] for p in using)
        raise VoiceInUseError(f"voice '{name}' is used by persona(s) {names}: delete with --reassign to switch "
                              f"them to the default voice", [p["name"] for p in using])
    trash_root = Path(voices_dir) / TRASH
    trash_root.mkdir(parents=True, exist_ok=True)
    slot = safe_child(trash_root, name)
    if slot.exists():  # an older deletion of the same name: the newer one wins
        shutil.rmtree(slot, ignore_errors=True)
    tmp = trash_root / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        (tmp / "trash.json").write_text(json.dumps({"name": name, "deleted_at": time.time(), "row": row,
                                                   "personas": using}, indent=2, default=str))
        os.replace(tmp, slot)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise StorageError(f"could not write the trash entry for '{name}': {e.strerror or e}") from None
    if folder.is_symlink() or folder.is_file():
        folder.unlink(missing_ok=True)  # a link is removed itself, never what it points to
    elif folder.is_dir():
        os.rename(folder, slot / "voice")
    tdir = training_dir(lib.home, name)
    if tdir.is_dir() and not tdir.is_symlink():
        os.rename(tdir, slot / "training")
    with lib.atomic() as db:
        sql.reassign_personas(db, [p["id"] for p in using], DEFAULT)
        sql.remove_voice(db, name)
    _forget_engines()
    return {"deleted": name, "trash": True, "reassigned": [p["name"] for p in using]}


def restore(lib, voices_dir: Path, name: str) -> dict:
    """Bring a deleted voice back from the trash (files, row, and the personas that were switched away)."""
    _check_name(name)
    slot = safe_child(Path(voices_dir) / TRASH, name) if (Path(voices_dir) / TRASH).is_dir() else None
    if slot is None or not (slot / "trash.json").is_file():
        raise NotFoundError(f"no voice named '{name}' in the trash")
    dest = safe_child(voices_dir, name)
    if dest.exists() or sql.voice_row(lib.db, name) is not None:
        raise BadInputError(f"a voice named '{name}' exists again; rename it first to restore the deleted one")
    meta = json.loads((slot / "trash.json").read_text())
    if (slot / "voice").is_dir():
        os.rename(slot / "voice", dest)
    tdir = training_dir(lib.home, name)
    if (slot / "training").is_dir() and not tdir.exists():
        tdir.parent.mkdir(parents=True, exist_ok=True)
        os.rename(slot / "training", tdir)
    back = 0
    with lib.atomic() as db:
        if meta.get("row"):
            sql.reinsert_voice(db, meta["row"])
        back = sql.restore_personas(db, [p["id"] for p in meta.get("personas", [])], name, DEFAULT)
    shutil.rmtree(slot, ignore_errors=True)
    _forget_engines()
    return {"restored": name, "personas": back}


def purge(voices_dir: Path, name: str | None = None) -> dict:
    """Delete the trash for good (one entry, or all); returns what went and the bytes freed."""
    root = Path(voices_dir) / TRASH
    if name is not None:
        _check_name(name)
        targets = [safe_child(root, name)] if root.is_dir() else []
        if not targets or not targets[0].exists():
            raise NotFoundError(f"no voice named '{name}' in the trash")
    else:
        targets = [d for d in root.iterdir()] if root.is_dir() else []
    freed, names = 0, []
    for d in targets:
        freed += tree_bytes(d)
        names.append(d.name)
        if d.is_symlink() or d.is_file():
            d.unlink(missing_ok=True)
        else:
            shutil.rmtree(d, ignore_errors=True)
    return {"purged": [n for n in names if not n.startswith(".")], "bytes": freed}
