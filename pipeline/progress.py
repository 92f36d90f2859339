"""Progress reporting and cooperative cancellation shared by stages, jobs and faces."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from .errors import Cancelled


class CancelToken:
    """A flag a face sets to ask running work to stop at its next checkpoint."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise Cancelled if cancellation was requested."""
        if self._event.is_set():
            raise Cancelled()


ProgressCallback = Callable[[float, str], None]
"""callback(fraction 0..1 within the current stage, short message)."""


def no_progress(fraction: float, message: str = "") -> None:
    """A progress callback that ignores updates."""


@dataclass
class Progress:
    """Progress of a whole job: the current stage, its fraction and an ETA."""

    stage: str = ""
    fraction: float = 0.0
    message: str = ""
    started: float = field(default_factory=time.monotonic)

    @property
    def eta_seconds(self) -> float | None:
        elapsed = time.monotonic() - self.started
        if self.fraction <= 0.01 or elapsed < 0.5:
            return None
        return elapsed * (1.0 - self.fraction) / self.fraction


ProgressListener = Callable[[Progress], None]
"""The one listener type every face passes to the Service: listener(Progress(stage, fraction, message))."""


def stage_callback(listener: ProgressListener | None, stage: str = "") -> ProgressCallback:
    """The (fraction, message) callback a stage or export takes, reporting to a face's listener as Progress."""
    if listener is None:
        return no_progress
    return lambda fraction, message="": listener(Progress(stage, fraction, message))
