"""SQL for voice management (rename, delete to trash, restore, which personas use which voice).

Plain functions taking the library's database (a sqlite_utils.Database); callers hold the transaction.
"""

from __future__ import annotations

import time

VOICE_COLUMNS = ("name", "character_id", "base_model", "adapter_path", "adapter_bytes", "base_bytes", "created_at",
                 "status", "similarity", "wer", "dnsmos", "check_json")


def voice_row(db, name: str) -> dict | None:
    rows = list(db.query("SELECT * FROM voices WHERE name = ?", [name]))
    return rows[0] if rows else None


def voice_rows(db) -> dict[str, dict]:
    return {r["name"]: r for r in db.query("SELECT * FROM voices")}


def personas_using(db, name: str) -> list[dict]:
    """[{id, name}] of the personas whose voice is ``name``."""
    return list(db.query("SELECT id, name FROM personas WHERE voice = ? ORDER BY id", [name]))


def voice_users(db) -> dict[str, list[dict]]:
    """voice name → [{id, name}] of the personas using it (a persona without a voice counts as 'default')."""
    out: dict[str, list[dict]] = {}
    for r in db.query("SELECT id, name, coalesce(nullif(voice, ''), 'default') AS voice FROM personas ORDER BY id"):
        out.setdefault(r["voice"], []).append({"id": r["id"], "name": r["name"]})
    return out


def rename_voice(db, old: str, new: str, adapter_path: str | None) -> int:
    """Rename the voice's row (and its stored adapter path) and every persona using it; returns personas changed."""
    db.execute("UPDATE voices SET name = ?, adapter_path = coalesce(?, adapter_path) WHERE name = ?", [new, adapter_path, old])
    return db.execute("UPDATE personas SET voice = ?, updated_at = ? WHERE voice = ?", [new, time.time(), old]).rowcount


def reassign_personas(db, ids: list[int], voice: str) -> None:
    for pid in ids:
        db.execute("UPDATE personas SET voice = ?, updated_at = ? WHERE id = ?", [voice, time.time(), pid])


def restore_personas(db, ids: list[int], voice: str, only_if: str) -> int:
    """Point personas back at ``voice``, only those still on ``only_if`` (the user may have changed them since)."""
    n = 0
    for pid in ids:
        n += db.execute("UPDATE personas SET voice = ? WHERE id = ? AND coalesce(voice, 'default') = ?",
                        [voice, pid, only_if]).rowcount
    return n


def delete_voice(db, name: str) -> None:
    db.execute("DELETE FROM voices WHERE name = ?", [name])


def insert_voice(db, row: dict) -> None:
    """Re-insert a voice row saved by delete (a fresh id; its training history stays deleted)."""
    values = {k: row.get(k) for k in VOICE_COLUMNS if k in row}
    if values.get("character_id") is not None:
        if db.execute("SELECT 1 FROM characters WHERE id = ?", [values["character_id"]]).fetchone() is None:
            values["character_id"] = None
    db["voices"].insert(values)


def active_training(db, name: str) -> bool:
    """True while a training job of this voice is queued or running."""
    return db.execute(
        "SELECT 1 FROM training_runs t JOIN voices v ON v.id = t.voice_id LEFT JOIN jobs j ON j.id = t.job_id"
        " WHERE v.name = ? AND t.state IN ('queued', 'running') AND coalesce(j.state, 'running') IN ('queued', 'running')",
        [name]).fetchone() is not None
