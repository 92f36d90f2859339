"""The library: one SQLite database (WAL, foreign keys, versioned migrations) plus media files beside it.

Rows reference files by paths relative to the library home, so the whole folder can be moved.
Multi-table writes go through :meth:`Library.atomic` so a failure leaves no half-written rows.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import sqlite_utils

from .config import open_private, private_dir, secure_library, weaver_home
from .errors import NotFoundError, StorageError

SCHEMA_V1 = """
CREATE TABLE media (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('file', 'capture')),
    title TEXT NOT NULL,
    source_path TEXT,
    fingerprint TEXT UNIQUE,
    duration REAL NOT NULL DEFAULT 0,
    container TEXT,
    has_video INTEGER NOT NULL DEFAULT 0,
    width INTEGER, height INTEGER, fps REAL,
    audio_track INTEGER NOT NULL DEFAULT 0,
    channel_mode TEXT NOT NULL DEFAULT 'mix',
    analysis_path TEXT,          -- 16 kHz mono FLAC for the analysis stages
    dialogue_path TEXT,          -- full-quality dialogue track (native rate) for clips
    dialogue_rate INTEGER,
    frames_path TEXT,            -- folder of timestamped screen frames (captures)
    created_at REAL NOT NULL,
    meta TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE audio_tracks (
    id INTEGER PRIMARY KEY,
    media_id INTEGER NOT NULL REFERENCES media(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL, stream_index INTEGER NOT NULL,
    codec TEXT, channels INTEGER, layout TEXT, sample_rate INTEGER,
    language TEXT, title TEXT, is_default INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE subtitle_tracks (
    id INTEGER PRIMARY KEY,
    media_id INTEGER NOT NULL REFERENCES media(id) ON DELETE CASCADE,
    source TEXT NOT NULL CHECK (source IN ('embedded', 'sidecar', 'asr')),
    stream_index INTEGER, path TEXT, format TEXT, encoding TEXT, language TEXT,
    is_primary INTEGER NOT NULL DEFAULT 0,
    sync TEXT                    -- JSON: scale, offset, score, method
);
CREATE TABLE lines (
    id INTEGER PRIMARY KEY,
    media_id INTEGER NOT NULL REFERENCES media(id) ON DELETE CASCADE,
    track_id INTEGER NOT NULL REFERENCES subtitle_tracks(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL, start REAL NOT NULL, end REAL NOT NULL,
    text TEXT NOT NULL, speaker_cue TEXT, tags TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE speakers (
    id INTEGER PRIMARY KEY,
    media_id INTEGER NOT NULL REFERENCES media(id) ON DELETE CASCADE,
    label TEXT NOT NULL, name TEXT, voiceprint_id INTEGER REFERENCES voiceprints(id) ON DELETE SET NULL,
    match_score REAL, embedding BLOB,
    UNIQUE (media_id, label)
);
CREATE TABLE characters (
    id INTEGER PRIMARY KEY,
    media_id INTEGER REFERENCES media(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    UNIQUE (media_id, name)
);
CREATE TABLE segments (
    id INTEGER PRIMARY KEY,
    media_id INTEGER NOT NULL REFERENCES media(id) ON DELETE CASCADE,
    line_id INTEGER REFERENCES lines(id) ON DELETE SET NULL,
    idx INTEGER NOT NULL, start REAL NOT NULL, end REAL NOT NULL,
    text TEXT NOT NULL,
    origin TEXT NOT NULL DEFAULT 'subtitle',      -- subtitle | asr | script
    speaker_id INTEGER REFERENCES speakers(id) ON DELETE SET NULL,
    character_id INTEGER REFERENCES characters(id) ON DELETE SET NULL,
    confidence REAL, attribution_source TEXT, overlap INTEGER NOT NULL DEFAULT 0,
    speaker_cue TEXT, tags TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE words (
    id INTEGER PRIMARY KEY,
    segment_id INTEGER NOT NULL REFERENCES segments(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL, start REAL NOT NULL, end REAL NOT NULL, text TEXT NOT NULL, probability REAL
);
CREATE TABLE clips (
    id INTEGER PRIMARY KEY,
    media_id INTEGER NOT NULL REFERENCES media(id) ON DELETE CASCADE,
    segment_id INTEGER NOT NULL UNIQUE REFERENCES segments(id) ON DELETE CASCADE,
    trim_start REAL NOT NULL DEFAULT 0,   -- seconds added to the segment start (+ later, - earlier)
    trim_end REAL NOT NULL DEFAULT 0,     -- seconds added to the segment end
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'kept', 'rejected'))
);
CREATE TABLE voiceprints (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL, embedding BLOB NOT NULL, source TEXT, created_at REAL NOT NULL
);
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL, key TEXT, media_id INTEGER REFERENCES media(id) ON DELETE SET NULL,
    params TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL DEFAULT 'queued'
        CHECK (state IN ('queued', 'running', 'cancelling', 'done', 'failed', 'cancelled', 'interrupted')),
    progress REAL NOT NULL DEFAULT 0, stage TEXT, message TEXT, eta REAL, error TEXT,
    pid INTEGER, result TEXT,
    created_at REAL NOT NULL, updated_at REAL NOT NULL, finished_at REAL
);
CREATE TABLE job_stages (
    job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    name TEXT NOT NULL, result TEXT, finished_at REAL NOT NULL, seconds REAL,
    PRIMARY KEY (job_id, name)
);
CREATE TABLE edits (
    id INTEGER PRIMARY KEY,
    media_id INTEGER NOT NULL REFERENCES media(id) ON DELETE CASCADE,
    action TEXT NOT NULL, undo TEXT NOT NULL,   -- JSON: what was done, and the row values to restore
    created_at REAL NOT NULL, undone INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX idx_segments_media ON segments(media_id, start);
CREATE INDEX idx_segments_character ON segments(character_id);
CREATE INDEX idx_lines_track ON lines(track_id, idx);
CREATE INDEX idx_words_segment ON words(segment_id, idx);
CREATE INDEX idx_clips_media ON clips(media_id);
CREATE INDEX idx_jobs_key ON jobs(key, state);
"""

SCHEMA_V2_SCRIPTS = """
CREATE TABLE scripts (
    id INTEGER PRIMARY KEY, title TEXT NOT NULL, year INTEGER, path TEXT, format TEXT,
    fingerprint TEXT UNIQUE, created_at REAL NOT NULL
);
CREATE TABLE script_lines (
    id INTEGER PRIMARY KEY,
    script_id INTEGER NOT NULL REFERENCES scripts(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL, scene INTEGER NOT NULL DEFAULT 0, character TEXT NOT NULL, text TEXT NOT NULL,
    parenthetical TEXT, extension TEXT
);
CREATE INDEX idx_script_lines ON script_lines(script_id, idx);
ALTER TABLE media ADD COLUMN script_id INTEGER REFERENCES scripts(id) ON DELETE SET NULL;
"""


def _migration_sql(sql: str) -> Callable[[sqlite_utils.Database], None]:
    def apply(db: sqlite_utils.Database) -> None:
        for statement in [s.strip() for s in sql.split(";") if s.strip()]:
            db.execute(statement)

    return apply


def _migration_scripts_fts(db: sqlite_utils.Database) -> None:
    _migration_sql(SCHEMA_V2_SCRIPTS)(db)
    db["script_lines"].enable_fts(["character", "text"], create_triggers=True, tokenize="porter")
    db["scripts"].enable_fts(["title"], create_triggers=True)


def _plugin_migration(module: str, function: str = "create_tables") -> Callable[[sqlite_utils.Database], None]:
    def apply(db: sqlite_utils.Database) -> None:
        import importlib

        getattr(importlib.import_module(module), function)(db)

    return apply


def _migration_user_edits(db: sqlite_utils.Database) -> None:
    """Row-level undo, and user-owned values that automatic passes keep (self-contained; one schema version).

    - ``edits.closed``: why an edit can no longer be undone (NULL while it can). Edits recorded before this version
      hold a whole-item snapshot, whose restore would also revert every later change, so they are closed here.
      ``edits.undo`` now holds the rows the edit inserted, deleted and updated (see Service._edit).
    - ``speakers.name_source``: 'user' (named by label_speaker) or 'voiceprint' (matched by analysis).
    - ``segments.user_split``: 1 when the segment starts where the user split a line.
    """
    db.execute("ALTER TABLE edits ADD COLUMN closed TEXT")
    db.execute("UPDATE edits SET closed = 'recorded before row-level undo' WHERE undone = 0")
    db.execute("ALTER TABLE speakers ADD COLUMN name_source TEXT")
    db.execute("UPDATE speakers SET name_source = CASE WHEN EXISTS (SELECT 1 FROM segments s JOIN characters c"
               " ON c.id = s.character_id WHERE s.speaker_id = speakers.id AND s.attribution_source = 'user'"
               " AND c.name = speakers.name) THEN 'user' ELSE 'voiceprint' END WHERE name IS NOT NULL")
    db.execute("ALTER TABLE segments ADD COLUMN user_split INTEGER NOT NULL DEFAULT 0")
    # before this version a split's second half was the only subtitle segment without a subtitle line
    db.execute("UPDATE segments SET user_split = 1 WHERE line_id IS NULL AND origin = 'subtitle'")


# Append only: each entry is one schema version. Never edit a released migration.
MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [
    _migration_sql(SCHEMA_V1),
    _migration_scripts_fts,
    _plugin_migration("pipeline.voices.schema"),
    _plugin_migration("pipeline.chat.schema"),
    _migration_user_edits,
    _plugin_migration("pipeline.voices.schema", "add_check_columns"),
]


class Library:
    """A handle on the library folder and its database. Cheap to open; one per thread."""

    def __init__(self, home: str | os.PathLike | None = None):
        self.home = Path(home) if home else weaver_home()
        try:
            for folder in (self.home, self.home / "media", self.home / "work"):
                private_dir(folder)  # 0700: the library is the user's own
            self.db_path = self.home / "library.db"
            if not self.db_path.exists():  # created 0600 (SQLite gives its -wal/-shm the database's mode)
                open_private(self.db_path).close()
            secure_library(self.home)  # a library from before: tighten its folders and files
        except OSError as e:
            raise StorageError(f"cannot create the library folder {self.home}: {e.strerror}") from None
        conn = sqlite3.connect(str(self.db_path), timeout=30, check_same_thread=False)
        self.db = sqlite_utils.Database(conn)
        self._use_wal()
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA busy_timeout=30000")
        self._migrate()

    def _use_wal(self, timeout: float = 30.0) -> None:
        """Switch a new database to WAL (it stays so). The switch needs the database to itself and SQLite
        answers "locked" at once instead of waiting, so several threads opening a fresh library together (the
        panel's first page load) retry here."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.db.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
                    return
                self.db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    # -- schema -------------------------------------------------------------------------------
    @property
    def schema_version(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    def _migrate(self) -> None:
        current = self.schema_version
        if current >= len(MIGRATIONS):
            return
        self.db.execute("BEGIN IMMEDIATE")  # one writer migrates; others wait then see the new version
        try:
            current = self.schema_version
            for version in range(current, len(MIGRATIONS)):
                MIGRATIONS[version](self.db)
                self.db.execute(f"PRAGMA user_version={version + 1}")
            self.db.execute("COMMIT")
        except BaseException:
            self.db.conn.rollback()
            raise

    @contextmanager
    def atomic(self) -> Iterator[sqlite_utils.Database]:
        """A transaction (savepoint when nested); disk-full turns into StorageError after rollback."""
        try:
            with self.db.atomic():
                yield self.db
        except sqlite3.OperationalError as e:
            if "full" in str(e).lower():
                raise StorageError(f"disk full while writing the library: {e}") from None
            raise

    def close(self) -> None:
        self.db.conn.close()

    # -- paths ---------------------------------------------------------------------------------
    def abspath(self, rel: str | None) -> Path | None:
        return (self.home / rel) if rel else None

    def relpath(self, path: str | os.PathLike) -> str:
        return str(Path(path).resolve().relative_to(self.home.resolve()))

    def media_dir(self, media_id: int) -> Path:
        return self.home / "media" / str(media_id)

    def work_dir(self, job_id: int) -> Path:
        return self.home / "work" / f"job-{job_id}"

    # -- queries -------------------------------------------------------------------------------
    def row(self, table: str, row_id: int, what: str | None = None) -> dict:
        """One row by id, or NotFoundError naming what was asked for."""
        rows = list(self.db.query(f"SELECT * FROM [{table}] WHERE id = ?", [row_id]))
        if not rows:
            raise NotFoundError(f"{what or table.rstrip('s')} {row_id} not found")
        return rows[0]

    def media(self, media_id: int) -> dict:
        return self.row("media", media_id, "media item")

    def counts(self) -> dict[str, int]:
        """Row count of every table (tests compare these before/after failures)."""
        names = [r["name"] for r in self.db.query(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '%_fts%'")]
        return {n: self.db.execute(f"SELECT count(*) FROM [{n}]").fetchone()[0] for n in names}

    def files(self) -> list[str]:
        """Every file stored under media/ (relative paths), for consistency checks."""
        root = self.home / "media"
        return sorted(str(p.relative_to(self.home)) for p in root.rglob("*") if p.is_file())

    def remove_media(self, media_id: int) -> None:
        """Delete a media item's rows (cascading) and then its folder."""
        self.media(media_id)
        with self.atomic() as db:
            db.execute("DELETE FROM media WHERE id = ?", [media_id])
        shutil.rmtree(self.media_dir(media_id), ignore_errors=True)


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


def dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def now() -> float:
    return time.time()
