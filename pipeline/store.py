"""The library: one SQLite database (WAL, foreign keys, versioned migrations) plus media files beside it.

Rows reference files by paths relative to the library home, so the whole folder can be moved.
Every write goes through :meth:`Library.atomic` (sqlite_utils' own ``Database.atomic`` is the same mechanism):
a transaction takes the write lock up front (``BEGIN IMMEDIATE``, retried with backoff while another process
writes), so a read-then-write block never fails with "database is locked" because another connection committed
between its read and its write (WAL mode cannot upgrade such a read snapshot). Nested blocks are savepoints.
Ids are never reused (AUTOINCREMENT): jobs and folders keyed by an id can never fall onto a newer row.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import threading
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


_ID_PK = re.compile(r"(?<![\w\]\"])(\[id\]|\"id\"|id)(\s+INTEGER\s+PRIMARY\s+KEY)(?!\s+(ASC\s+|DESC\s+)?AUTOINCREMENT)", re.I)
_TABLE_HEAD = re.compile(r"^\s*CREATE\s+TABLE\s+(IF\s+NOT\s+EXISTS\s+)?(\"[^\"]+\"|\[[^\]]+\]|\S+?)(?=\s*\()", re.I)


def _migration_autoincrement(db: sqlite_utils.Database) -> None:
    """Rebuild every table keyed by ``id INTEGER PRIMARY KEY`` as AUTOINCREMENT, keeping its rows, indexes and
    triggers. Plain rowid keys hand the id of a deleted last row to the next insert, so a job or folder keyed by
    a deleted item's id (``analyze:<id>``, ``media/<id>``, ``work/job-<id>``) fell onto the new item.
    Runs with foreign keys off (see Library._migrate), the documented way to rebuild a table in SQLite."""
    tables = db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND sql IS NOT NULL"
                        " AND name NOT LIKE 'sqlite_%'").fetchall()
    virtual = [n for n, sql in tables if sql.upper().lstrip().startswith("CREATE VIRTUAL")]
    shadow = set(virtual) | {n for n, _ in tables if any(n.startswith(v + "_") for v in virtual)}  # FTS internals
    db.execute("PRAGMA legacy_alter_table = ON")  # rename without re-checking every trigger against dropped tables
    try:
        for name, sql in tables:
            if name in shadow or not _ID_PK.search(sql):
                continue
            tmp = f"_weaver_rebuild_{name}"
            create = _TABLE_HEAD.sub(f"CREATE TABLE [{tmp}]", _ID_PK.sub(r"\1\2 AUTOINCREMENT", sql, count=1), count=1)
            extras = [r[0] for r in db.execute("SELECT sql FROM sqlite_master WHERE tbl_name = ? AND type IN"
                                               " ('index', 'trigger') AND sql IS NOT NULL", [name]).fetchall()]
            cols = ", ".join(f"[{r[1]}]" for r in db.execute(f"PRAGMA table_info([{name}])").fetchall())
            db.execute(create)
            db.execute(f"INSERT INTO [{tmp}] ({cols}) SELECT {cols} FROM [{name}]")
            db.execute(f"DROP TABLE [{name}]")
            db.execute(f"ALTER TABLE [{tmp}] RENAME TO [{name}]")
            for extra in extras:
                db.execute(extra)
    finally:
        db.execute("PRAGMA legacy_alter_table = OFF")
    # ids already handed out and freed before this version: jobs remember them, never give them out again
    seen = [int(k.split(":", 1)[1]) for (k,) in db.execute("SELECT key FROM jobs WHERE key LIKE 'analyze:%'").fetchall()
            if k.split(":", 1)[1].isdigit()]
    seen += [m for (m,) in db.execute("SELECT media_id FROM jobs WHERE media_id IS NOT NULL").fetchall()]
    for (result,) in db.execute("SELECT result FROM job_stages WHERE name = 'commit'").fetchall():
        try:
            seen.append(int(json.loads(result or "{}").get("media_id") or 0))
        except (ValueError, TypeError, AttributeError):
            pass
    top = max(seen, default=0)
    if top:
        if db.execute("SELECT 1 FROM sqlite_sequence WHERE name = 'media'").fetchone():
            db.execute("UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'media'", [top])
        else:
            db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('media', ?)", [top])


def _migration_line_text_and_encodings(db: sqlite_utils.Database) -> None:
    """User-edited line text, user joins and how a subtitle track's encoding was chosen (self-contained).

    - ``segments.user_text``: 1 when the user typed the line's text (edit or join of an edited line); that text
      wins over every automatic source, re-analysis included.
    - ``segments.user_join``: 1 when the segment is two lines the user joined (re-analysis joins them again).
    - ``subtitle_tracks.encoding_info``: JSON {encoding, unsure, method, candidates: [{encoding, cost, sample}]}.
    """
    def add(table: str, column: str, decl: str) -> None:
        if column not in {c[1] for c in db.execute(f"PRAGMA table_info([{table}])").fetchall()}:
            db.execute(f"ALTER TABLE [{table}] ADD COLUMN [{column}] {decl}")

    add("segments", "user_text", "INTEGER NOT NULL DEFAULT 0")
    add("segments", "user_join", "INTEGER NOT NULL DEFAULT 0")
    add("subtitle_tracks", "encoding_info", "TEXT")


def _migration_voiceprint_sources(db: sqlite_utils.Database) -> None:
    """Voiceprints known across recordings: ``voiceprints.source`` becomes the kind ('auto', 'named', 'file') and a
    ``voiceprint_sources`` table says which recordings each voiceprint came from (see pipeline.library.voiceprints).
    A label-enrolled print ('label:item N/SPEAKER') keeps item N and the speaker; an enrolled file keeps its path."""
    db.execute("CREATE TABLE voiceprint_sources (id INTEGER PRIMARY KEY AUTOINCREMENT,"
               " voiceprint_id INTEGER NOT NULL REFERENCES voiceprints(id) ON DELETE CASCADE,"
               " media_id INTEGER REFERENCES media(id) ON DELETE SET NULL, speaker TEXT, path TEXT, seconds REAL,"
               " created_at REAL NOT NULL)")
    db.execute("CREATE INDEX voiceprint_sources_vp ON voiceprint_sources (voiceprint_id)")
    db.execute("CREATE INDEX voiceprint_sources_media ON voiceprint_sources (media_id)")
    for vid, source, created in db.execute("SELECT id, source, created_at FROM voiceprints").fetchall():
        m = re.match(r"label:item (\d+)/(.*)$", source or "")
        media_id = int(m.group(1)) if m else None
        if media_id is not None and not db.execute("SELECT 1 FROM media WHERE id = ?", [media_id]).fetchone():
            media_id = None
        db.execute("INSERT INTO voiceprint_sources (voiceprint_id, media_id, speaker, path, created_at)"
                   " VALUES (?, ?, ?, ?, ?)", [vid, media_id, m.group(2) if m else None,
                                               None if m else source, created])
        db.execute("UPDATE voiceprints SET source = ? WHERE id = ?", ["named" if m else "file", vid])


# Append only: each entry is one schema version. Never edit a released migration.
MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [
    _migration_sql(SCHEMA_V1),
    _migration_scripts_fts,
    _plugin_migration("pipeline.voices.schema"),
    _plugin_migration("pipeline.chat.schema"),
    _migration_user_edits,
    _migration_autoincrement,
    _migration_line_text_and_encodings,
    _plugin_migration("pipeline.voices.schema", "add_check_columns"),
    _migration_voiceprint_sources,
]

BUSY_WAIT = 60.0  # seconds a write transaction keeps retrying to get the write lock before giving up


def _is_busy(e: sqlite3.OperationalError) -> bool:
    msg = str(e).lower()
    return "locked" in msg or "busy" in msg


def _is_full(e: sqlite3.OperationalError) -> bool:
    return "full" in str(e).lower()


class LibraryDatabase(sqlite_utils.Database):
    """sqlite_utils.Database on an autocommit connection whose transactions take the write lock up front.

    Python's sqlite3 would open DEFERRED transactions before DML, and sqlite_utils' ``atomic`` opens a plain
    ``BEGIN``: a deferred transaction that read first cannot become a writer once another connection committed
    (SQLITE_BUSY_SNAPSHOT, reported as "database is locked" at once, whatever the busy timeout). Here every
    transaction, including the ones sqlite_utils opens inside insert/upsert, is ``BEGIN IMMEDIATE``, retried
    with backoff while another process holds the lock; nested blocks are savepoints. One transaction at a time
    per connection (a lock), so threads sharing a handle do not interleave statements in each other's blocks.
    """

    def __init__(self, conn: sqlite3.Connection, busy_wait: float = BUSY_WAIT):
        super().__init__(conn)
        self.busy_wait = busy_wait
        self._tx_lock = threading.RLock()
        self._depth = 0

    @contextmanager
    def atomic(self) -> Iterator["LibraryDatabase"]:
        with self._tx_lock:
            if self._depth or self.conn.in_transaction:  # nested (or inside a transaction opened by hand): savepoint
                yield from self._savepoint()
                return
            self._retry_busy("BEGIN IMMEDIATE")
            self._depth = 1
            ok = False
            try:
                yield self
                ok = True
            finally:
                self._depth = 0
                if ok:
                    try:
                        self._retry_busy("COMMIT")
                    except BaseException:
                        self._rollback()
                        raise
                else:
                    self._rollback()

    def _savepoint(self) -> Iterator["LibraryDatabase"]:
        name = f"weaver_sp{self._depth}"
        self.conn.execute(f"SAVEPOINT {name}")
        self._depth += 1
        try:
            yield self
        except BaseException:
            if self.conn.in_transaction:  # an error may have ended the whole transaction already
                self.conn.execute(f"ROLLBACK TO {name}")
                self.conn.execute(f"RELEASE {name}")
            raise
        else:
            self.conn.execute(f"RELEASE {name}")
        finally:
            self._depth -= 1

    def _retry_busy(self, statement: str) -> None:
        deadline = time.monotonic() + self.busy_wait
        delay = 0.005
        while True:
            try:
                self.conn.execute(statement)
                return
            except sqlite3.OperationalError as e:
                if not _is_busy(e):
                    raise
                if time.monotonic() + delay > deadline:
                    raise StorageError(f"the library database stayed locked by another program for {self.busy_wait:.0f} s"
                                       f" ({e}); try again") from None
                time.sleep(delay)
                delay = min(delay * 2, 0.25)

    def _rollback(self) -> None:
        try:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass


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
        # isolation_level=None: no implicit DEFERRED transactions; every transaction is an explicit atomic() block
        conn = sqlite3.connect(str(self.db_path), timeout=30, check_same_thread=False, isolation_level=None)
        self.db = LibraryDatabase(conn)
        self._use_wal()
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA busy_timeout=30000")
        self._migrate()
        self.db.execute("PRAGMA foreign_keys=ON")

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
        """Apply pending migrations in one write transaction (one writer migrates; others wait, then see the
        new version). Foreign keys are off meanwhile (set on after), so a migration can rebuild a table."""
        if self.schema_version >= len(MIGRATIONS):
            return
        self.db.execute("PRAGMA foreign_keys=OFF")  # only takes effect outside a transaction
        try:
            with self.atomic():
                for version in range(self.schema_version, len(MIGRATIONS)):
                    MIGRATIONS[version](self.db)
                    self.db.execute(f"PRAGMA user_version={version + 1}")
        finally:
            self.db.execute("PRAGMA foreign_keys=ON")

    @contextmanager
    def atomic(self) -> Iterator[LibraryDatabase]:
        """A write transaction (savepoint when nested) holding the write lock from its start; waits (with
        backoff) while another process writes. Disk-full turns into StorageError after rollback."""
        try:
            with self.db.atomic():
                yield self.db
        except sqlite3.OperationalError as e:
            if _is_full(e):
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
        """Delete a media item: its jobs are removed (one still running elsewhere is asked to cancel), then its
        rows (cascading) in the same transaction, then the jobs' work folders and the item's folder. No job of a
        deleted item can resume later, and ids are never reused, so nothing of it reaches a newer item."""
        from .jobs import JobRunner

        self.media(media_id)
        runner = JobRunner(self)
        with self.atomic() as db:
            self.media(media_id)
            removed = runner.forget(runner.jobs_of_media(media_id), db)
            db.execute("DELETE FROM media WHERE id = ?", [media_id])
        for job_id in removed:
            shutil.rmtree(self.work_dir(job_id), ignore_errors=True)
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
