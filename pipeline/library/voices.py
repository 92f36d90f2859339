"""Tables for voices, their datasets and training runs (listed in pipeline.library.migrations), and their SQL."""

from __future__ import annotations

import sqlite_utils

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
