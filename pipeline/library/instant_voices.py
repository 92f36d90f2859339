"""SQL of the instant (cloned) voices: the character a voice is made for and its row in ``voices``."""

from __future__ import annotations

from ..errors import BadInputError, NotFoundError


def character_row(db, media_id: int, name: str) -> tuple[int, str]:
    """(id, stored name) of a character of an item, case-insensitively; NotFoundError listing the characters."""
    row = db.execute("SELECT id, name FROM characters WHERE media_id = ? AND lower(name) = lower(?)", [media_id, name]).fetchone()
    if row is None:
        names = [r[0] for r in db.execute("SELECT name FROM characters WHERE media_id = ? ORDER BY name", [media_id]).fetchall()]
        raise NotFoundError(f"no character '{name}' in item {media_id}" + (f" (characters: {', '.join(names)})" if names else ""))
    return int(row[0]), str(row[1])


def refuse_taken_name(db, name: str) -> None:
    if db.execute("SELECT 1 FROM voices WHERE name = ?", [name]).fetchone():
        raise BadInputError(f"a voice named '{name}' already exists (pick another --name, or remove it first)")


def insert_voice(db, *, name: str, character_id: int, base_model: str, path: str, state_bytes: int,
                 base_bytes: int | None, created_at: float) -> int:
    """The voice's row, 'training' until its voice check decides 'ready' or 'failed'; returns its id."""
    db["voices"].insert({"name": name, "character_id": character_id, "base_model": base_model, "adapter_path": path,
                         "adapter_bytes": state_bytes, "base_bytes": base_bytes, "created_at": created_at, "status": "training"})
    return int(db.execute("SELECT id FROM voices WHERE name = ?", [name]).fetchone()[0])


def delete_voice(db, voice_id: int) -> None:
    db.execute("DELETE FROM voices WHERE id = ?", [voice_id])
