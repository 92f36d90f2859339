"""The library's connection: one SQLite database (WAL, foreign keys, versioned migrations) plus media files beside it.

Rows reference files by paths relative to the library home, so the whole folder can be moved.
Every write goes through :meth:`Library.atomic` (sqlite_utils' own ``Database.atomic`` is the same mechanism):
a transaction takes the write lock up front (``BEGIN IMMEDIATE``, retried with backoff while another process
writes), so a read-then-write block never fails with "database is locked" because another connection committed
between its read and its write (WAL mode cannot upgrade such a read snapshot). Nested blocks are savepoints.
Ids are never reused (AUTOINCREMENT): jobs and folders keyed by an id can never fall onto a newer row.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import sqlite_utils

from ..config import open_private, private_dir, secure_library, weaver_home
from ..errors import NotFoundError, StorageError
from . import jobs
from .migrations import MIGRATIONS
from .values import dumps, now  # noqa: F401 - the library's value helpers, importable beside Library

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
        self.media(media_id)
        with self.atomic() as db:
            self.media(media_id)
            removed = jobs.forget(db, jobs.jobs_of_media(self.db, media_id))
            db.execute("DELETE FROM media WHERE id = ?", [media_id])
        for job_id in removed:
            shutil.rmtree(self.work_dir(job_id), ignore_errors=True)
        shutil.rmtree(self.media_dir(media_id), ignore_errors=True)
