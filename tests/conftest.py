"""Shared pytest setup: markers, the generated fixture movie, a fresh WEAVER_HOME, and an artifacts folder.

Markers (also declared in pyproject.toml): slow, gpu (skipped without an NVIDIA GPU), desktop (skipped without
Xvfb or a display), audio (skipped without PulseAudio). Artifacts (screenshots, logs) go to tests/artifacts/,
or $WEAVER_TEST_ARTIFACTS.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # so `tests.fixtures...` imports also under a bare `pytest` call
    sys.path.insert(0, str(REPO))

# the random tiny test bases (tests/tiny_tts.py, RANDOM_WEIGHTS) may be trained here (and in CLI subprocesses)
os.environ.setdefault("WEAVER_TEST_RANDOM_BASE", "1")

MARKERS = {
    "slow": "takes more than ~20 s (still runs in CI)",
    "gpu": "needs an NVIDIA GPU (skipped without one)",
    "desktop": "needs an X display (tests start Xvfb)",
    "audio": "needs a PulseAudio daemon (tests start one)",
}


def pytest_configure(config):
    declared = {line.split(":", 1)[0].strip() for line in config.getini("markers")}
    for name, doc in MARKERS.items():
        if name not in declared:
            config.addinivalue_line("markers", f"{name}: {doc}")


def _has_gpu() -> bool:
    return Path("/dev/nvidia0").exists() or Path("/proc/driver/nvidia/gpus").is_dir()


def _missing(marker: str) -> str | None:
    """Why tests with this marker cannot run here (None when they can)."""
    if marker == "gpu" and not _has_gpu():
        return "needs an NVIDIA GPU"
    if marker == "desktop" and not (shutil.which("Xvfb") or os.environ.get("DISPLAY")):
        return "needs Xvfb or an X display"
    if marker == "audio" and not shutil.which("pulseaudio"):
        return "needs PulseAudio (apt-get install -y pulseaudio pulseaudio-utils)"
    return None


def pytest_collection_modifyitems(config, items):
    # in CI a missing desktop/audio service is a failure of the setup, not a reason to skip
    markers = ("gpu",) if os.environ.get("CI") else ("gpu", "desktop", "audio")
    reasons = {m: _missing(m) for m in markers}
    for item in items:
        for marker, why in reasons.items():
            if why and item.get_closest_marker(marker):
                item.add_marker(pytest.mark.skip(reason=why))


@pytest.fixture(scope="session")
def movie():
    """The generated three-character movie (MovieFixture), from the fixture cache (built on first use)."""
    from tests.fixtures.movie import cached_movie

    return cached_movie()


@pytest.fixture(scope="session")
def bad_inputs(movie, tmp_path_factory):
    """Every deliberately bad input (BadInputs), written once per session into a temp folder."""
    from tests.fixtures.bad_inputs import make_bad_inputs

    return make_bad_inputs(tmp_path_factory.mktemp("bad-inputs"), movie)


@pytest.fixture
def weaver_home(tmp_path, monkeypatch) -> Path:
    """A fresh, empty library folder, exported as $WEAVER_HOME for the test (and its subprocesses)."""
    home = tmp_path / "weaver-home"
    home.mkdir()
    monkeypatch.setenv("WEAVER_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def artifacts_root() -> Path:
    """tests/artifacts/ (or $WEAVER_TEST_ARTIFACTS): kept after the run, ignored by git."""
    root = Path(os.environ.get("WEAVER_TEST_ARTIFACTS") or REPO / "tests" / "artifacts")
    root.mkdir(parents=True, exist_ok=True)
    return root


@pytest.fixture
def artifacts_dir(artifacts_root, request) -> Path:
    """A per-test folder under the artifacts root, emptied at the start of the test."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid.replace("::", "__").replace("/", "_"))[:150]
    folder = artifacts_root / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder
