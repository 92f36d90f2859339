"""Runs long service calls (import, analysis, training) on a background worker for the panel."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from pipeline.progress import CancelToken


class BackgroundJobs:
    """One worker thread: long jobs run one at a time; progress lives in the jobs table (SSE reads it)."""

    def __init__(self, service_factory: Callable):
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="weaver-job")
        self._service_factory = service_factory
        self._tokens: dict[str, CancelToken] = {}
        self.errors: dict[str, str] = {}
        self._lock = threading.Lock()

    def submit(self, name: str, fn: Callable, *args, **kwargs) -> str:
        """Run fn(service, *args, cancel=token, **kwargs) in the worker; returns a handle name."""
        token = CancelToken()
        with self._lock:
            self._tokens[name] = token

        def run():
            svc = self._service_factory()
            try:
                return fn(svc, *args, cancel=token, **kwargs)
            except Exception as e:  # the job row already records WeaverErrors; keep the message for the page
                self.errors[name] = str(e)
                raise
            finally:
                svc.lib.close()

        self._pool.submit(run)
        return name

    def shutdown(self) -> None:
        for t in self._tokens.values():
            t.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)
