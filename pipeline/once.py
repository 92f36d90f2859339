"""One helper for the models a process loads at most once (a shared encoder, scorer or ASR backend)."""

from __future__ import annotations

import functools
import threading
from typing import Callable, TypeVar

T = TypeVar("T")


def load_once(load: Callable[[], T]) -> Callable[[], T]:
    """Wrap a no-argument loader so the first call loads (under a lock, so two threads never load twice) and
    every later call returns the same object. A loader that raises is tried again on the next call."""
    lock = threading.Lock()
    loaded: list[T] = []

    @functools.wraps(load)
    def get() -> T:
        with lock:
            if not loaded:
                loaded.append(load())
            return loaded[0]

    return get
