"""Job runner for long work: persisted state, weighted stage progress with ETA, cancel, resume after kill.

A job is a list of named stages. Each finished stage stores its JSON result in ``job_stages``; when a
killed job is run again, finished stages are skipped and their results reused. Stages get a
:class:`StageContext` with the job's work folder (files in progress live there, never in the library
proper) and report progress through it. Cancel works across processes: ``request_cancel`` flips the
row to 'cancelling' and the running process notices at its next progress report.

A stage whose result is a database write records itself inside that write's transaction
(:meth:`StageContext.record`), so a kill between the two cannot leave a write without its record. When a job
fails or is cancelled its work folder is removed first and only then is the row marked (that write may fail
on a full disk); a job whose process is gone shows as 'interrupted', or 'failed' when its work folder is gone.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .errors import Cancelled, StorageError, WeaverError
from .progress import CancelToken, Progress, ProgressListener
from .library import jobs as rows
from .library.db import Library
from .library.values import dumps, now
from .library.jobs import ACTIVE_STATES, FINISHED_STATES, pid_alive  # noqa: F401 - importable from here too


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
    stage: str = ""
    _started: float = field(repr=False, default=0.0)

    def progress(self, fraction: float, message: str = "") -> None:
        """Report progress within the current stage (0..1); raises Cancelled if cancel was requested."""
        self._report(fraction, message)
        self.cancel.check()

    def record(self, db, result: Any) -> None:
        """Store the current stage's result inside the caller's transaction (``db`` from ``library.atomic()``):
        a stage whose work is that transaction commits it together with its record, so a kill right after the
        commit still resumes past it. The runner stores the same result again afterwards (harmless)."""
        rows.record_stage(db, self.job_id, self.stage, result, time.monotonic() - self._started)


@dataclass
class JobOutcome:
    """What a finished job returns to its caller: its id, the result of its last stage, whether it resumed."""

    job_id: int
    result: dict
    resumed: bool = False


@dataclass
class PreparedJob:
    """A validated job: ``run(service, listener, cancel)`` executes it (any thread, its own Service)."""

    job_id: int
    resumed: bool
    run: Callable


class JobRunner:
    """Creates, runs, resumes and cancels jobs stored in the library."""

    def __init__(self, library: Library):
        self.lib = library

    # -- rows ----------------------------------------------------------------------------------
    def create(self, kind: str, params: dict, *, key: str | None = None, media_id: int | None = None) -> int:
        """A queued job owned by this process (its pid), so a queue lost with its process is found stale."""
        with self.lib.atomic() as db:
            return rows.create(db, kind, params, key, media_id)

    def get(self, job_id: int) -> dict:
        job = self.lib.row("jobs", job_id, "job")
        job["params"] = json.loads(job["params"] or "{}")
        job["result"] = json.loads(job["result"]) if job["result"] else None
        job["stages_done"] = rows.stage_names(self.lib.db, job_id)
        return job

    def _stale(self, row: dict) -> bool:
        if row["state"] == "queued":  # waiting in a queue: stale only when the process holding the queue is gone
            return row["pid"] is not None and not pid_alive(row["pid"])
        return not pid_alive(row["pid"]) or (row["pid"] == os.getpid() and not self._is_ours(row["id"]))

    def mark_stale(self) -> int:
        """Jobs left active by a process that is gone become 'interrupted' (resumable), or 'failed' when their
        work folder is gone too (the process cleaned up but could not record it, e.g. on a full disk: resuming
        would reuse results whose files no longer exist). Returns how many."""
        stale = [r for r in rows.active(self.lib.db) if self._stale(r)]
        if not stale:
            return 0
        with self.lib.atomic() as db:
            for r in stale:
                again = rows.state_and_pid(db, r["id"])
                if not again or (again[0], again[1]) != (r["state"], r["pid"]):
                    continue  # picked up (or finished) meanwhile
                if r["state"] != "queued" and not self.lib.work_dir(r["id"]).exists():
                    rows.mark_failed_gone(db, r["id"])
                else:
                    rows.mark_interrupted(db, r["id"])
        return len(stale)

    _running_here = rows.RUNNING_HERE

    def _is_ours(self, job_id: int) -> bool:
        return job_id in JobRunner._running_here

    def find_resumable(self, key: str) -> int | None:
        """The newest interrupted job with this key, if any."""
        self.mark_stale()
        return rows.newest_with_key(self.lib.db, key, ("interrupted",))

    def find_active(self, key: str) -> int | None:
        self.mark_stale()
        return rows.newest_with_key(self.lib.db, key, ACTIVE_STATES)

    def list(self, limit: int = 50) -> list[dict]:
        self.mark_stale()
        return rows.newest(self.lib.db, limit)

    def request_cancel(self, job_id: int) -> None:
        """Ask a queued/running job (in any process) to stop; a job whose process is gone (interrupted) is
        cancelled at once and its work folder removed."""
        self.mark_stale()
        job = self.get(job_id)
        if job["state"] in ("queued", "running"):
            self._update(job_id, state="cancelling")
        elif job["state"] in ("interrupted", "failed", "cancelled"):
            if job["state"] == "interrupted":
                self._finish(job_id, "cancelled", error="cancelled")
            shutil.rmtree(self.lib.work_dir(job_id), ignore_errors=True)

    def jobs_of_media(self, media_id: int) -> list[int]:
        """Ids of every job working on (or that made) a media item (see pipeline.library.jobs.jobs_of_media)."""
        return rows.jobs_of_media(self.lib.db, media_id)

    def forget(self, job_ids: list[int], db) -> list[int]:
        """Inside the caller's transaction: remove these jobs' rows (see pipeline.library.jobs.forget)."""
        return rows.forget(db, job_ids)

    def _update(self, job_id: int, **values) -> None:
        with self.lib.atomic() as db:
            rows.update(db, job_id, **values)

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
        done = rows.stage_results(self.lib.db, job_id)
        total_w = sum(s.weight for s in stages) or 1.0
        base = sum(s.weight for s in stages if s.name in done)
        with self.lib.atomic() as db:  # a cancel asked while it waited in a queue wins
            state = rows.start_running(db, job_id)
        if state == "cancelling":
            shutil.rmtree(work, ignore_errors=True)
            self._finish(job_id, "cancelled", error="cancelled")
            raise Cancelled()
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
                if rows.state(self.lib.db, job_id) == "cancelling":
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
                ctx.stage, ctx._started = stage.name, time.monotonic()
                ctx.progress(0.0, "starting")
                result = stage.run(ctx)
                ctx.results[stage.name] = result
                _test_stall_hook(stage.name, "unrecorded")
                with self.lib.atomic() as db:
                    ctx.record(db, result)
                report(stage, offset, 1.0, "done")
                offset += stage.weight
                _test_stall_hook(stage.name)
        except BaseException as e:
            JobRunner._running_here.discard(job_id)
            full = None if isinstance(e, (WeaverError, KeyboardInterrupt)) else storage_error(e, work)
            # files first: freeing them must not depend on a database write succeeding (a full disk)
            shutil.rmtree(work, ignore_errors=True)
            if isinstance(e, (Cancelled, KeyboardInterrupt)):
                state, error, raised = "cancelled", "cancelled", e if isinstance(e, Cancelled) else Cancelled()
            else:
                raised = e if isinstance(e, WeaverError) else full or e
                state = "failed"
                error = str(raised) if isinstance(raised, WeaverError) else f"internal error: {type(e).__name__}: {e}"
            try:
                self._finish(job_id, state, error=error)
            except Exception:  # noqa: BLE001 - still unwritable: mark_stale shows it failed (no work folder left)
                pass
            if raised is e:
                raise
            raise raised from None
        finally:
            JobRunner._running_here.discard(job_id)
        final = {k: v for k, v in ctx.results.items()}
        self._finish(job_id, "done", result=final.get("commit", final.get(stages[-1].name) if stages else None))
        shutil.rmtree(work, ignore_errors=True)
        return final


LOW_SPACE = 1 << 20  # free bytes under which a failed write is put down to a full disk


def storage_error(e: BaseException, work: Path) -> StorageError | None:
    """A full disk (or the file size limit) behind an error that does not say so (an OSError, sqlite's "disk
    is full", or a library such as libsndfile answering "System error"), as a one-line StorageError. Called
    before the work folder is removed, while the disk is still full."""
    unchanged = "; the library is unchanged"
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return StorageError(f"no space left to write the library's files ({e.strerror}){unchanged}")
    if isinstance(e, sqlite3.OperationalError) and "full" in str(e).lower():
        return StorageError(f"disk full while writing the library: {e}")
    try:
        free = shutil.disk_usage(work if work.exists() else work.parent).free
    except OSError:
        free = None
    if free is not None and free < LOW_SPACE:
        return StorageError(f"no space left on the disk of the library ({work.parent.parent}: {free // 1024} KiB free)"
                            f" while writing its files{unchanged}")
    import resource

    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY and work.exists():
        if any(f.is_file() and f.stat().st_size >= limit for f in work.rglob("*")):
            return StorageError(f"a file reached this process's file size limit ({limit >> 20} MiB) while writing"
                                f" the library's files{unchanged}")
    return None


def _test_stall_hook(stage_name: str, point: str = "") -> None:
    """Tests set WEAVER_TEST_STALL_AFTER=<stage> to freeze a job after that stage (its record stored) so they can
    kill -9 it; ``<stage>:unrecorded`` freezes it after the stage ran but before the runner stored its record."""
    name = f"{stage_name}:{point}" if point else stage_name
    if os.environ.get("WEAVER_TEST_STALL_AFTER") == name:
        print(f"stalled after {name}", flush=True)
        while True:
            time.sleep(3600)
