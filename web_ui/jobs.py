"""Runs long service calls (import, analysis, training) on a background worker for the panel."""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

from pipeline.progress import CancelToken


class BackgroundJobs:
    """One worker thread: long jobs run one at a time; progress lives in the jobs table (SSE reads it)."""

    def __init__(self, service_factory: Callable):
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="weaver-job")
        self._service_factory = service_factory
        self._tokens: dict[str, CancelToken] = {}
        self._futures: dict[str, Future] = {}
        self.errors: dict[str, str] = {}
        self._lock = threading.Lock()

    def submit(self, name: str, fn: Callable, *args, **kwargs) -> str:
        """Run fn(service, *args, cancel=token, **kwargs) in the worker; returns a handle name
        (``job-<id>`` names a jobs row: if the panel stops before it ran, that row is marked interrupted)."""
        token = CancelToken()

        def run():
            try:
                svc = self._service_factory()
            except Exception as e:  # noqa: BLE001 - e.g. the library folder vanished; keep it for the page
                self.errors[name] = str(e)
                raise
            try:
                return fn(svc, *args, cancel=token, **kwargs)
            except Exception as e:  # the job row already records WeaverErrors; keep the message for the page
                self.errors[name] = str(e)
                raise
            finally:
                svc.lib.close()
                with self._lock:
                    self._tokens.pop(name, None)
                    self._futures.pop(name, None)

        with self._lock:
            self._tokens[name] = token
            self._futures[name] = self._pool.submit(run)
        return name

    def cancel(self, name: str) -> bool:
        """Cancel a job of this worker at once (the jobs row is updated by its runner); False if unknown."""
        with self._lock:
            token = self._tokens.get(name)
        if token:
            token.cancel()
        return token is not None

    def shutdown(self) -> None:
        with self._lock:
            tokens, futures = list(self._tokens.values()), dict(self._futures)
        for t in tokens:
            t.cancel()
        never_ran = [name for name, f in futures.items() if f.cancel()]
        self._pool.shutdown(wait=False, cancel_futures=True)
        ids = [int(n[4:]) for n in never_ran if n.startswith("job-") and n[4:].isdigit()]
        if ids:  # queued rows this process owned: resumable later instead of 'queued' forever
            try:
                svc = self._service_factory()
                try:
                    svc.interrupt_queued(ids)
                finally:
                    svc.lib.close()
            except Exception:  # noqa: BLE001 - shutting down: mark_stale catches them once this process is gone
                pass
