"""The jobs' rows: jobs and job_stages (SQL only; the runner that drives them is pipeline.jobs.JobRunner).

Which process runs a job is told by its pid; ``RUNNING_HERE`` holds the ids this process is running now, so a
row left by an earlier run of the same pid is not taken for a live one.
"""

from __future__ import annotations

import json
import os
from typing import Any

from .values import dumps, now

ACTIVE_STATES = ("queued", "running", "cancelling")
FINISHED_STATES = ("done", "failed", "cancelled")

RUNNING_HERE: set[int] = set()  # ids of the jobs this process is running


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (killed, not yet reaped) is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def alive_runner(job_id: int, pid: int | None) -> bool:
    """A live process runs this job (this process counts only while it really runs it)."""
    return pid_alive(pid) and (pid != os.getpid() or job_id in RUNNING_HERE)


def create(db, kind: str, params: dict, key: str | None, media_id: int | None) -> int:
    t = now()
    db["jobs"].insert({"kind": kind, "key": key, "media_id": media_id, "params": dumps(params), "state": "queued",
                       "progress": 0.0, "pid": os.getpid(), "created_at": t, "updated_at": t})
    return db.execute("SELECT last_insert_rowid()").fetchone()[0]


def stage_names(db, job_id: int) -> list[str]:
    return [r["name"] for r in db.query("SELECT name FROM job_stages WHERE job_id = ? ORDER BY finished_at", [job_id])]


def stage_results(db, job_id: int) -> dict[str, Any]:
    return {r["name"]: (json.loads(r["result"]) if r["result"] else None)
            for r in db.query("SELECT name, result FROM job_stages WHERE job_id = ?", [job_id])}


def record_stage(db, job_id: int, name: str, result: Any, seconds: float) -> None:
    db["job_stages"].insert({"job_id": job_id, "name": name, "result": dumps(result), "finished_at": now(),
                             "seconds": seconds}, replace=True)


def active(db) -> list[dict]:
    return list(db.query("SELECT id, pid, state FROM jobs WHERE state IN ('queued','running','cancelling')"))


def state_and_pid(db, job_id: int) -> tuple | None:
    return db.execute("SELECT state, pid FROM jobs WHERE id = ?", [job_id]).fetchone()


def state(db, job_id: int) -> str | None:
    row = db.execute("SELECT state FROM jobs WHERE id = ?", [job_id]).fetchone()
    return row[0] if row else None


def mark_failed_gone(db, job_id: int) -> None:
    db.execute("UPDATE jobs SET state='failed', error=coalesce(error, ?), finished_at=?, updated_at=?"
               " WHERE id=?", ["stopped before it could record why; its work files are gone", now(), now(), job_id])


def mark_interrupted(db, job_id: int) -> None:
    db.execute("UPDATE jobs SET state='interrupted', updated_at=? WHERE id=?", [now(), job_id])


def newest_with_key(db, key: str, states: tuple[str, ...]) -> int | None:
    marks = ",".join("?" * len(states))
    row = list(db.query(f"SELECT id FROM jobs WHERE key = ? AND state IN ({marks}) ORDER BY id DESC LIMIT 1",
                        [key, *states]))
    return row[0]["id"] if row else None


def newest(db, limit: int) -> list[dict]:
    rows = list(db.query("SELECT * FROM jobs ORDER BY id DESC LIMIT ?", [limit]))
    for r in rows:
        r["params"] = json.loads(r["params"] or "{}")
        r["result"] = json.loads(r["result"]) if r["result"] else None
    return rows


def update(db, job_id: int, **values) -> None:
    values["updated_at"] = now()
    sets = ", ".join(f"{k} = ?" for k in values)
    db.execute(f"UPDATE jobs SET {sets} WHERE id = ?", [*values.values(), job_id])


def start_running(db, job_id: int) -> str:
    """Inside a transaction: mark the job running in this process unless a cancel was asked; its state before."""
    before = state(db, job_id)
    if before != "cancelling":
        db.execute("UPDATE jobs SET state = 'running', pid = ?, error = NULL, updated_at = ? WHERE id = ?",
                   [os.getpid(), now(), job_id])
    return before


def jobs_of_media(db, media_id: int) -> list[int]:
    """Ids of every job working on (or that made) a media item: linked by media_id, keyed by its id, or
    whose commit stage created it."""
    ids = {r["id"] for r in db.query("SELECT id FROM jobs WHERE media_id = ? OR key = ?",
                                     [media_id, f"analyze:{media_id}"])}
    for r in db.query("SELECT job_id, result FROM job_stages WHERE name = 'commit'"):
        try:
            if int((json.loads(r["result"] or "{}") or {}).get("media_id") or 0) == media_id:
                ids.add(r["job_id"])
        except (ValueError, TypeError, AttributeError):
            pass
    return sorted(ids)


def forget(db, job_ids: list[int]) -> list[int]:
    """Inside the caller's transaction: remove these jobs' rows, except jobs still running in a live process,
    which are asked to cancel (their runner removes their work folder). Returns the ids whose work folders
    the caller removes after committing."""
    removed = []
    for jid in job_ids:
        row = state_and_pid(db, jid)
        if row is None:
            continue
        if row[0] in ("running", "cancelling") and alive_runner(jid, row[1]):
            db.execute("UPDATE jobs SET state = 'cancelling', updated_at = ? WHERE id = ?", [now(), jid])
            continue
        db.execute("DELETE FROM jobs WHERE id = ?", [jid])
        removed.append(jid)
    return removed


def link_media(db, job_id: int, media_id: int) -> None:
    """The job owns the item (it made it or works on it)."""
    db.execute("UPDATE jobs SET media_id = ? WHERE id = ?", [media_id, job_id])


def media_and_start(db, job_id: int) -> tuple | None:
    return db.execute("SELECT media_id, created_at FROM jobs WHERE id = ?", [job_id]).fetchone()


def claimed_by_other(db, media_id: int, job_id: int) -> bool:
    return db.execute("SELECT 1 FROM jobs WHERE media_id = ? AND id != ?", [media_id, job_id]).fetchone() is not None


def busy_count(db) -> int:
    return db.execute("SELECT count(*) FROM jobs WHERE state IN ('queued','running')").fetchone()[0]


def interrupt_queued(db, job_id: int) -> None:
    db.execute("UPDATE jobs SET state = 'interrupted' WHERE id = ? AND state = 'queued'", [job_id])
