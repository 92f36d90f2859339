"""Names that become paths and files put into place: the one safe-child check every face uses, the one slug for
file names, the one atomic write (``.part`` + rename) and replace_folder (a fully built folder moved into place)."""

from __future__ import annotations

import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import BadInputError


def safe_child(root: str | os.PathLike, name: str, *, nested: bool = False) -> Path:
    """The path of a user-given name inside ``root``; BadInputError (HTTP 400) unless it stays strictly inside.

    The one check every face (routes, CLI) uses before turning a name into a file path. Refused: empty names,
    '.', '..', absolute paths, NUL bytes, path separators (``/`` or ``\\``; with ``nested=True`` a relative
    sub-path of plain components is allowed), and any name whose resolved path (symlinks followed) is ``root``
    itself or outside it. Returns ``root / name`` unresolved, so a caller deleting it never follows a link.
    """
    text = os.fspath(name) if isinstance(name, os.PathLike) else name
    if not isinstance(text, str) or not text.strip():
        raise BadInputError("a name is required")
    if "\x00" in text:
        raise BadInputError(f"name contains a NUL byte: {text!r}")
    escapes = BadInputError(f"path escapes its folder: {text!r}")
    if os.path.isabs(text) or text.startswith(("/", "\\")) or os.path.splitdrive(text)[0]:
        raise escapes
    parts = re.split(r"[\\/]", text)
    if (len(parts) > 1 and not nested) or any(p in ("", ".", "..") for p in parts):
        raise escapes
    base = Path(root)
    candidate = base.joinpath(*parts)
    real_root = base.resolve()
    try:
        real = candidate.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        raise escapes from None
    if real == real_root or not real.is_relative_to(real_root):
        raise escapes
    return candidate


def slug(text: str, n: int = 40) -> str:
    """A lower-case file-name stem of letters, digits and underscores (at most ``n``; "clip" when nothing is left)."""
    s = re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")
    return (s[:n] or "clip").lower()


def replace_folder(built: Path, target: Path) -> None:
    """Move a fully built folder into place; an existing target is swapped out first and removed only after."""
    built, target = Path(built), Path(target)
    if target.exists():
        old = target.with_name(target.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
        os.replace(built, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(built, target)


@contextmanager
def part_path(path: str | os.PathLike, *, keep_suffix: bool = False) -> Iterator[Path]:
    """Yield the temporary name to write ``path`` under (``name.part``; ``stem.part.suffix`` with ``keep_suffix``,
    for writers that pick the format by suffix); it is renamed onto ``path`` when the block ends, and removed
    when the block raises, so a reader never sees a half-written file under the real name."""
    p = Path(path)
    tmp = p.with_name(p.stem + ".part" + p.suffix) if keep_suffix else p.with_name(p.name + ".part")
    try:
        yield tmp
        os.replace(tmp, p)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise


def write_atomic(path: str | os.PathLike, data: bytes | str, *, encoding: str = "utf-8") -> Path:
    """Write bytes (or text, encoded) to ``path`` through :func:`part_path`; returns the path."""
    p = Path(path)
    with part_path(p) as tmp:
        tmp.write_bytes(data.encode(encoding) if isinstance(data, str) else data)
    return p
