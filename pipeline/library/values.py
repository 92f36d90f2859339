"""How the library writes values into rows: compact JSON and the wall-clock time (no SQL here)."""

from __future__ import annotations

import json
import time


def dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def now() -> float:
    return time.time()
