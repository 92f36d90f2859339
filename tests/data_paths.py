"""Where shared real-speech test data lives, and readers for its reference annotations.

- AMI excerpts: ``../shared/data/ami-train`` beside the repository (trn00..trn09.wav, train.rttm, train.uem), or
  $WEAVER_AMI_DIR.
- pyannote.audio's sample conversation (``pyannote/audio/sample/sample.wav`` + ``sample.rttm``), found through the
  ``pyannote`` namespace package's search path without importing pyannote.audio. It comes with the ``pyannote``
  extra that setup installs.

Each locator skips the test with a reason when the data is absent (fails it in CI).
"""

from __future__ import annotations

import importlib.util
import os
from collections import defaultdict
from pathlib import Path

import pytest

from tests.desktop_env import skip_or_fail

REPO = Path(__file__).resolve().parent.parent


def ami_dir() -> Path:
    """Folder of the AMI excerpts, or skip the test."""
    candidates = [os.environ.get("WEAVER_AMI_DIR"), REPO.parent / "shared" / "data" / "ami-train",
                  "/work/shared/data/ami-train"]
    for cand in candidates:
        d = Path(cand) if cand else None
        if d and (d / "train.rttm").is_file() and (d / "trn00.wav").is_file():
            return d
    msg = f"AMI test excerpts not found at {REPO.parent / 'shared' / 'data' / 'ami-train'} (shared test data; set WEAVER_AMI_DIR)"
    skip_or_fail(msg)  # CI always has shared/ beside the clone: absence there is a failure


def pyannote_sample() -> tuple[Path, Path]:
    """(sample.wav, sample.rttm) shipped in the pyannote.audio wheel, or skip the test."""
    try:
        spec = importlib.util.find_spec("pyannote")
    except (ImportError, ValueError):
        spec = None
    for base in (spec.submodule_search_locations if spec and spec.submodule_search_locations else []):
        d = Path(base) / "audio" / "sample"
        if (d / "sample.wav").is_file() and (d / "sample.rttm").is_file():
            return d / "sample.wav", d / "sample.rttm"
    pytest.skip("pyannote.audio's sample.wav not installed (pip install -e '.[pyannote]')")


def read_rttm(path: Path) -> dict[str, list[tuple[float, float, str]]]:
    """uri -> [(start, end, speaker)] from an RTTM file."""
    out: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        f = line.split()
        if len(f) >= 8 and f[0] == "SPEAKER":
            s, d = float(f[3]), float(f[4])
            out[f[1]].append((s, s + d, f[7]))
    return dict(out)


def read_uem(path: Path) -> dict[str, tuple[float, float]]:
    """uri -> (start, end) scored region from a UEM file."""
    out = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        f = line.split()
        if len(f) >= 4:
            out[f[0]] = (float(f[2]), float(f[3]))
    return out
