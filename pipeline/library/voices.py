"""Tables for voices, their datasets and training runs (listed in pipeline.library.migrations), and their SQL."""

from __future__ import annotations

import time

import sqlite_utils

from ..errors import BadInputError
from .values import dumps, now

SCHEMA = """
CREATE TABLE IF NOT EXISTS voices (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    character_id INTEGER REFERENCES characters(id) ON DELETE SET NULL,
    base_model TEXT NOT NULL,
    adapter_path TEXT,               -- relative to the library home, NULL until training finished
    adapter_bytes INTEGER NOT NULL DEFAULT 0,
    base_bytes INTEGER,
    created_at REAL NOT NULL,
    status TEXT NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'dataset', 'training', 'ready', 'failed', 'cancelled'))
);
CREATE TABLE IF NOT EXISTS datasets (
    id INTEGER PRIMARY KEY,
    character_id INTEGER REFERENCES characters(id) ON DELETE SET NULL,
    path TEXT NOT NULL,
    summary_json TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS training_runs (
    id INTEGER PRIMARY KEY,
    voice_id INTEGER NOT NULL REFERENCES voices(id) ON DELETE CASCADE,
    job_id INTEGER,
    config_json TEXT NOT NULL DEFAULT '{}',
    losses_json TEXT NOT NULL DEFAULT '[]',
    state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled'))
);
CREATE INDEX IF NOT EXISTS idx_training_runs_voice ON training_runs(voice_id);
CREATE INDEX IF NOT EXISTS idx_datasets_character ON datasets(character_id)
"""


def create_tables(db: sqlite_utils.Database) -> None:
    """Create the voices, datasets and training_runs tables (idempotent; plain SQL so it runs inside a migration)."""
    for statement in [s.strip() for s in SCHEMA.split(";") if s.strip()]:
        db.execute(statement)


def add_check_columns(db: sqlite_utils.Database) -> None:
    """One schema version: the voice check's numbers per voice (pipeline.voices.check; NULL until checked).
    ``check_json`` holds the whole check (ok, reasons, the default voice's numbers)."""
    for column, kind in (("similarity", "REAL"), ("wer", "REAL"), ("dnsmos", "REAL"), ("check_json", "TEXT")):
        db.execute(f"ALTER TABLE voices ADD COLUMN {column} {kind}")


# -- rows -----------------------------------------------------------------------------------------
def add_dataset(db, character_id: int, path: str, summary: dict) -> int:
    db["datasets"].insert({"character_id": character_id, "path": path, "summary_json": dumps(summary),
                           "created_at": now()})
    return db.execute("SELECT last_insert_rowid()").fetchone()[0]


def datasets(db) -> list[dict]:
    """Every dataset with its character; ``summary_json`` still encoded."""
    return list(db.query(
        "SELECT d.id, d.path, d.summary_json, d.created_at, c.name AS character, c.media_id FROM datasets d"
        " LEFT JOIN characters c ON c.id = d.character_id ORDER BY d.id"))


def voice_id(db, name: str) -> int | None:
    row = db.execute("SELECT id FROM voices WHERE name = ?", [name]).fetchone()
    return row[0] if row else None


def voice_status(db, voice_id: int) -> str:
    return db.execute("SELECT status FROM voices WHERE id = ?", [voice_id]).fetchone()[0]


def add_voice(db, name: str, character_id: int | None, base_model: str) -> None:
    db["voices"].insert({"name": name, "character_id": character_id, "base_model": base_model,
                         "created_at": now(), "status": "training"})


def set_training(db, voice_id: int, base_model: str) -> None:
    """An existing (unfinished) voice trains again, on ``base_model``."""
    db.execute("UPDATE voices SET status='training', base_model=? WHERE id=?", [base_model, voice_id])


def add_training_run(db, voice_id: int, job_id: int, config: dict) -> None:
    db["training_runs"].insert({"voice_id": voice_id, "job_id": job_id, "config_json": dumps(config),
                                "state": "running"})


def set_losses(db, job_id: int, losses: list[float]) -> None:
    db.execute("UPDATE training_runs SET losses_json = ? WHERE job_id = ?", [dumps(losses), job_id])


def set_registered(db, voice_id: int, job_id: int, adapter_path: str, adapter_bytes: int, base_bytes: int | None,
                   losses: list[float]) -> None:
    """The trained adapter is in place ('ready' or 'failed' is decided by the voice check that follows)."""
    db.execute("UPDATE voices SET adapter_path=?, adapter_bytes=?, base_bytes=? WHERE id=?",
               [adapter_path, adapter_bytes, base_bytes, voice_id])
    db.execute("UPDATE training_runs SET state='done', losses_json=? WHERE job_id=?", [dumps(losses), job_id])


def set_training_ended(db, voice_id: int, job_id: int, state: str) -> None:
    """A training job stopped early: its run and (unless already ready) its voice get ``state``."""
    db.execute("UPDATE training_runs SET state = ? WHERE job_id = ?", [state, job_id])
    db.execute("UPDATE voices SET status = ? WHERE id = ? AND status != 'ready'", [state, voice_id])


def set_check(db, voice_id: int, status: str, res: dict) -> None:
    db.execute("UPDATE voices SET status=?, similarity=?, wer=?, dnsmos=?, check_json=? WHERE id=?",
               [status, res["similarity"], res["wer"], res["dnsmos"], dumps(res), voice_id])


def voice_rows(db) -> dict[str, dict]:
    return {r["name"]: r for r in db.query("SELECT * FROM voices")}


def training_runs(db) -> list[dict]:
    """Every training run, newest first, with its voice and job progress; ``losses_json`` still encoded."""
    return list(db.query(
        "SELECT t.id, t.job_id, t.state, t.losses_json, v.name AS voice, j.progress, j.eta, j.message"
        " FROM training_runs t JOIN voices v ON v.id = t.voice_id LEFT JOIN jobs j ON j.id = t.job_id ORDER BY t.id DESC"))


def remove_voice(db, name: str) -> None:
    db.execute("DELETE FROM voices WHERE name = ?", [name])


# -- voice management: rename, trash/restore, who uses which voice -----------------------------
VOICE_COLUMNS = ("name", "character_id", "base_model", "adapter_path", "adapter_bytes", "base_bytes", "created_at",
                 "status", "similarity", "wer", "dnsmos", "check_json")


def voice_row(db, name: str) -> dict | None:
    rows = list(db.query("SELECT * FROM voices WHERE name = ?", [name]))
    return rows[0] if rows else None



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



def reinsert_voice(db, row: dict) -> None:
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


# -- instant (cloned) voices ------------------------------------------------------------------
def refuse_taken_name(db, name: str) -> None:
    if db.execute("SELECT 1 FROM voices WHERE name = ?", [name]).fetchone():
        raise BadInputError(f"a voice named '{name}' already exists (pick another --name, or remove it first)")


def add_instant_voice(db, *, name: str, character_id: int, base_model: str, path: str, state_bytes: int,
                 base_bytes: int | None, created_at: float) -> int:
    """The voice's row, 'training' until its voice check decides 'ready' or 'failed'; returns its id."""
    db["voices"].insert({"name": name, "character_id": character_id, "base_model": base_model, "adapter_path": path,
                         "adapter_bytes": state_bytes, "base_bytes": base_bytes, "created_at": created_at, "status": "training"})
    return int(db.execute("SELECT id FROM voices WHERE name = ?", [name]).fetchone()[0])


def remove_voice_id(db, voice_id: int) -> None:
    db.execute("DELETE FROM voices WHERE id = ?", [voice_id])
