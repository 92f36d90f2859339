"""Job runner for long work: persisted state, weighted stage progress with ETA, cancel, resume after kill.

A job is a list of named stages. Each finished stage stores its JSON result in ``job_stages``; when a
killed job is run again, finished stages are skipped and their results reused. Stages get a
:class:`StageContext` with the job's work folder (files in progress live there, never in the library
proper) and report progress through it. Cancel works across processes: ``request_cancel`` flips the
row to 'cancelling' and the running process notices at its next progress report.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .errors import Cancelled, NotFoundError, WeaverError
from .progress import CancelToken, Progress
from .store import Library, dumps, now

ACTIVE_STATES = ("queued", "running", "cancelling")
FINISHED_STATES = ("done", "failed", "cancelled")


@dataclass
class Stage:
    name: str
    run: Callable[["StageContext"], Any]
    weight: float = 1.0
    label: str = ""


@dataclass
class StageContext:
    library: Library
    job_id: int
    params: dict
    work_dir: Path
    results: dict[str, Any]
    cancel: CancelToken
    _report: Callable[[float, str], None] = field(repr=False, default=lambda f, m: None)

    def progress(self, fraction: float, message: str = "") -> None:
        """Report progress within the current stage (0..1); raises Cancelled if cancel was requested."""
        self._report(fraction, message)
        self.cancel.check()


ProgressListener = Callable[[Progress], None]


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


class JobRunner:
    """Creates, runs, resumes and cancels jobs stored in the library."""

    def __init__(self, library: Library):
        self.lib = library

    # -- rows ----------------------------------------------------------------------------------
    def create(self, kind: str, params: dict, *, key: str | None = None, media_id: int | None = None) -> int:
        t = now()
        with self.lib.atomic() as db:
            db["jobs"].insert(
                {"kind": kind, "key": key, "media_id": media_id, "params": dumps(params), "state": "queued",
                 "progress": 0.0, "created_at": t, "updated_at": t}
            )
            return db.execute("SELECT last_insert_rowid()").fetchone()[0]

    def get(self, job_id: int) -> dict:
        job = self.lib.row("jobs", job_id, "job")
        job["params"] = json.loads(job["params"] or "{}")
        job["result"] = json.loads(job["result"]) if job["result"] else None
        job["stages_done"] = [r["name"] for r in self.lib.db.query(
            "SELECT name FROM job_stages WHERE job_id = ? ORDER BY finished_at", [job_id])]
        return job

    def mark_stale(self) -> int:
        """Jobs left 'running' by a process that died become 'interrupted' (resumable). Returns how many."""
        stale = [r["id"] for r in self.lib.db.query("SELECT id, pid FROM jobs WHERE state IN ('running','cancelling')")
                 if not pid_alive(r["pid"]) or (r["pid"] == os.getpid() and not self._is_ours(r["id"]))]
        if stale:
            with self.lib.atomic() as db:
                for jid in stale:
                    db.execute("UPDATE jobs SET state='interrupted', updated_at=? WHERE id=?", [now(), jid])
        return len(stale)

    _running_here: set[int] = set()

    def _is_ours(self, job_id: int) -> bool:
        return job_id in JobRunner._running_here

    def find_resumable(self, key: str) -> int | None:
        """The newest interrupted job with this key, if any."""
        self.mark_stale()
        row = list(self.lib.db.query(
            "SELECT id FROM jobs WHERE key = ? AND state = 'interrupted' ORDER BY id DESC LIMIT 1", [key]))
        return row[0]["id"] if row else None

    def find_active(self, key: str) -> int | None:
        self.mark_stale()
        row = list(self.lib.db.query(
            "SELECT id FROM jobs WHERE key = ? AND state IN ('queued','running','cancelling') ORDER BY id DESC LIMIT 1",
            [key]))
        return row[0]["id"] if row else None

    def list(self, limit: int = 50) -> list[dict]:
        self.mark_stale()
        rows = list(self.lib.db.query("SELECT * FROM jobs ORDER BY id DESC LIMIT ?", [limit]))
        for r in rows:
            r["params"] = json.loads(r["params"] or "{}")
            r["result"] = json.loads(r["result"]) if r["result"] else None
        return rows

    def request_cancel(self, job_id: int) -> None:
        """Ask a queued/running job (in any process) to stop; an interrupted job is cancelled at once."""
        job = self.get(job_id)
        if job["state"] in ("queued", "running"):
            self._update(job_id, state="cancelling")
        elif job["state"] == "interrupted":
            self._finish(job_id, "cancelled", error="cancelled")
            shutil.rmtree(self.lib.work_dir(job_id), ignore_errors=True)

    def _update(self, job_id: int, **values) -> None:
        values["updated_at"] = now()
        sets = ", ".join(f"{k} = ?" for k in values)
        with self.lib.atomic() as db:
            db.execute(f"UPDATE jobs SET {sets} WHERE id = ?", [*values.values(), job_id])

    def _finish(self, job_id: int, state: str, *, error: str | None = None, result: Any = None) -> None:
        self._update(job_id, state=state, error=error, finished_at=now(), eta=None,
                     result=dumps(result) if result is not None else None,
                     **({"progress": 1.0} if state == "done" else {}))

    # -- running -------------------------------------------------------------------------------
    def run(self, job_id: int, stages: list[Stage], *, listener: ProgressListener | None = None,
            cancel: CancelToken | None = None) -> dict[str, Any]:
        """Run (or resume) a job's stages in order; returns every stage's result by name.

        Raises the stage's WeaverError (job 'failed') or Cancelled (job 'cancelled'); in both cases the
        job's work folder is removed. A killed process leaves the job 'running' with a dead pid, which
        :meth:`mark_stale` turns into 'interrupted' for a later resume.
        """
        job = self.get(job_id)
        if job["state"] in FINISHED_STATES:
            raise WeaverError(f"job {job_id} already {job['state']}")
        cancel = cancel or CancelToken()
        work = self.lib.work_dir(job_id)
        work.mkdir(parents=True, exist_ok=True)
        done = {r["name"]: (json.loads(r["result"]) if r["result"] else None)
                for r in self.lib.db.query("SELECT name, result FROM job_stages WHERE job_id = ?", [job_id])}
        total_w = sum(s.weight for s in stages) or 1.0
        base = sum(s.weight for s in stages if s.name in done)
        self._update(job_id, state="running", pid=os.getpid(), error=None)
        JobRunner._running_here.add(job_id)
        progress = Progress()
        start_fraction = base / total_w
        last_write = [0.0]
        ctx = StageContext(self.lib, job_id, job["params"], work, dict(done), cancel)

        def report(stage: Stage, offset: float, fraction: float, message: str) -> None:
            fraction = min(max(fraction, 0.0), 1.0)
            overall = (offset + stage.weight * fraction) / total_w
            progress.stage, progress.message = stage.label or stage.name, message
            # ETA from this run's pace only (resumed stages took no time now)
            progress.fraction = (overall - start_fraction) / max(1e-9, 1 - start_fraction)
            eta = progress.eta_seconds
            t = time.monotonic()
            if listener:
                listener(Progress(progress.stage, overall, message, progress.started))
            if t - last_write[0] >= 0.3 or fraction >= 1.0:
                last_write[0] = t
                state = self.lib.db.execute("SELECT state FROM jobs WHERE id = ?", [job_id]).fetchone()
                if state and state[0] == "cancelling":
                    cancel.cancel()
                self._update(job_id, progress=overall, stage=progress.stage, message=message, eta=eta)

        try:
            offset = 0.0
            for stage in stages:
                if stage.name in done:
                    offset += stage.weight
                    continue
                cancel.check()
                ctx._report = lambda f, m, s=stage, o=offset: report(s, o, f, m)
                t0 = time.monotonic()
                ctx.progress(0.0, "starting")
                result = stage.run(ctx)
                ctx.results[stage.name] = result
                with self.lib.atomic() as db:
                    db["job_stages"].insert({"job_id": job_id, "name": stage.name, "result": dumps(result),
                                             "finished_at": now(), "seconds": time.monotonic() - t0}, replace=True)
                report(stage, offset, 1.0, "done")
                offset += stage.weight
                _test_stall_hook(stage.name)
        except Cancelled:
            self._finish(job_id, "cancelled", error="cancelled")
            shutil.rmtree(work, ignore_errors=True)
            raise
        except WeaverError as e:
            self._finish(job_id, "failed", error=str(e))
            shutil.rmtree(work, ignore_errors=True)
            raise
        except BaseException as e:
            if isinstance(e, KeyboardInterrupt):
                self._finish(job_id, "cancelled", error="cancelled")
                shutil.rmtree(work, ignore_errors=True)
                raise Cancelled() from None
            self._finish(job_id, "failed", error=f"internal error: {type(e).__name__}: {e}")
            shutil.rmtree(work, ignore_errors=True)
            raise
        finally:
            JobRunner._running_here.discard(job_id)
        final = {k: v for k, v in ctx.results.items()}
        self._finish(job_id, "done", result=final.get("commit", final.get(stages[-1].name) if stages else None))
        shutil.rmtree(work, ignore_errors=True)
        return final


def _test_stall_hook(stage_name: str) -> None:
    """Tests set WEAVER_TEST_STALL_AFTER=<stage> to freeze a job after that stage so they can kill -9 it."""
    if os.environ.get("WEAVER_TEST_STALL_AFTER") == stage_name:
        print(f"stalled after {stage_name}", flush=True)
        while True:
            time.sleep(3600)


def get_job(library: Library, job_id: int) -> dict:
    try:
        return JobRunner(library).get(job_id)
    except NotFoundError:
        raise
