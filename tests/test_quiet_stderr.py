"""The user's terminal gets our progress and one-line messages only: no third-party warnings or tqdm bars.

Runs the main `weaver` commands as subprocesses (`python -m trayapp`, a fresh WEAVER_HOME, stderr a pipe) and
checks every stderr line: no ``...Warning``, no ``warn(`` source echo, no tqdm bar (``it/s]``, ``s/it]``,
``NN%|``). With ``--debug`` the same filters are off, so third-party output may show again.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOISE = re.compile(r"Warning\b|warn\(|FutureWarning|DeprecationWarning|it/s\]|s/it\]|\d%\|")


def weaver(home: Path, *args, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if k not in ("TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS", "TRANSFORMERS_VERBOSITY", "PYTHONWARNINGS")}
    r = subprocess.run([sys.executable, "-m", "trayapp", *map(str, args)], capture_output=True, text=True,
                       timeout=timeout, env={**env, "WEAVER_HOME": str(home)}, cwd=REPO)
    assert r.returncode == 0, f"weaver {' '.join(map(str, args))} failed ({r.returncode}): {r.stderr[-3000:]}"
    return r


def assert_quiet(r: subprocess.CompletedProcess) -> None:
    noisy = [line for line in r.stderr.splitlines() if NOISE.search(line)]
    assert not noisy, f"`{' '.join(r.args[3:])}` printed third-party noise on stderr:\n" + "\n".join(noisy[:20])


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("weaver-home")


@pytest.fixture(scope="module")
def ingested(movie, home) -> str:
    """The fixture movie imported with the whole analysis chain (VAD, ASR, diarization, voiceprints)."""
    r = weaver(home, "ingest", movie.movie, "--script", movie.screenplay_txt)
    assert_quiet(r)
    return r.stdout.strip().splitlines()[-1]


def test_help_and_listing_commands_are_quiet(home):
    r = weaver(home, "--help")
    assert "ingest" in r.stdout
    assert_quiet(r)
    r = weaver(home, "models")
    assert "asr" in r.stdout
    assert_quiet(r)
    r = weaver(home, "chat-models")
    assert "embedded" in r.stdout.lower() or "llama" in r.stdout.lower()
    assert_quiet(r)


@pytest.mark.slow
def test_ingest_and_characters_are_quiet(ingested, home):
    assert ingested.isdigit()
    r = weaver(home, "characters", ingested)
    assert r.stdout.strip()
    assert_quiet(r)


def test_transcribe_and_say_are_quiet(home, tmp_path):
    wav = tmp_path / "hello.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), "Hello there, this is a short test."], check=True, capture_output=True)
    r = weaver(home, "transcribe", wav)
    assert "test" in r.stdout.lower()
    assert_quiet(r)
    out = tmp_path / "said.wav"
    r = weaver(home, "say", "default", "Good evening.", "-o", out)
    assert out.stat().st_size > 1000
    assert_quiet(r)


def test_quiet_switches_stay_off_under_debug(home):
    """--debug leaves third-party progress bars and warnings alone (the switches are set only without it)."""
    code = ("import os, sys, warnings; from trayapp.cli import quiet_third_party; quiet_third_party(debug={d}); "
            "print(os.environ.get('TQDM_DISABLE'), os.environ.get('HF_HUB_DISABLE_PROGRESS_BARS')); "
            "warnings.warn('third party says', FutureWarning)")
    env = {k: v for k, v in os.environ.items() if k not in ("TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS", "PYTHONWARNINGS")}
    quiet = subprocess.run([sys.executable, "-c", code.format(d=False)], capture_output=True, text=True, env=env, cwd=REPO)
    loud = subprocess.run([sys.executable, "-c", code.format(d=True)], capture_output=True, text=True, env=env, cwd=REPO)
    assert quiet.stdout.split() == ["1", "1"] and "FutureWarning" not in quiet.stderr
    assert loud.stdout.split() == ["None", "None"] and "FutureWarning" in loud.stderr
