"""Capture wired into the library: the manager the tray/panel/CLI share, the CLI through the background app,
and recovery of a recording whose app was killed -9. Real PulseAudio null sink, real soundcard loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.pulse_env import private_pulseaudio, pulseaudio_available, speech_wav
from pipeline.library import Library

pytestmark = [pytest.mark.audio, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[1]

if not pulseaudio_available() and not os.environ.get("CI"):
    pytest.skip("pulseaudio not installed", allow_module_level=True)


@pytest.fixture(scope="module")
def pulse():
    with private_pulseaudio(sinks=("vw_svc",), default="vw_svc") as pa:
        yield pa


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    d = tmp_path_factory.mktemp("speech")
    return speech_wav(d / "s.wav", "The quick brown fox jumps over the lazy dog. Then it runs into the winter farm.")


def test_manager_records_and_saves_windows_as_capture_items(pulse, speech, tmp_path):
    from pipeline.workflows.recordings import CaptureManager

    mgr = CaptureManager(tmp_path)
    st = mgr.start(source="loopback", record=True, buffer_minutes=1)
    assert st["running"] and st["recording"]
    pulse.play(speech)
    media_id = mgr.save_last(0.1)  # a 6 s window of the rolling buffer
    mid2 = mgr.stop()
    lib = Library(tmp_path)
    rows = {r["id"]: r for r in lib.db.query("SELECT * FROM media")}
    assert set(rows) == {media_id, mid2}
    assert all(r["kind"] == "capture" for r in rows.values())
    assert 5.0 < rows[media_id]["duration"] < 7.5
    assert rows[mid2]["duration"] >= 3.0
    assert not any((tmp_path / "captures").iterdir())  # recordings moved into the library
    assert mgr.status()["running"] is False


def _weaver(home, *args, check=True, timeout=120):
    r = subprocess.run([sys.executable, "-m", "trayapp", *map(str, args)], capture_output=True, text=True, timeout=timeout,
                       cwd=REPO, env={**os.environ, "WEAVER_HOME": str(home)})
    if check:
        assert r.returncode == 0, r.stderr
    return r


def test_cli_capture_runs_in_the_background_app(pulse, speech, tmp_path):
    home = tmp_path / "home"
    try:
        _weaver(home, "capture", "start", "--buffer", "2m")
        status = json.loads(_weaver(home, "capture", "status", "--json").stdout)
        assert status["running"] and status["recording"] and status["source"] == "loopback"
        pulse.play(speech)
        item = _weaver(home, "capture", "stop").stdout.strip().splitlines()[-1]
        show = json.loads(_weaver(home, "show", item, "--json").stdout)
        assert show["kind"] == "capture" and show["duration"] > 3.0
        assert json.loads(_weaver(home, "capture", "status", "--json").stdout)["running"] is False
        bad = _weaver(home, "capture", "save", "--last", "5m", check=False)
        assert bad.returncode != 0 and "no capture is running" in bad.stderr
    finally:
        info = json.loads((home / "run" / "server.json").read_text())
        os.kill(info["pid"], signal.SIGTERM)


def test_app_killed_mid_recording_is_recovered_on_next_start(pulse, speech, tmp_path):
    home = tmp_path / "home"
    _weaver(home, "capture", "start")
    info = json.loads((home / "run" / "server.json").read_text())
    pulse.play(speech)
    t_kill = time.monotonic()
    os.kill(info["pid"], signal.SIGKILL)
    time.sleep(0.5)
    server = subprocess.Popen([sys.executable, "-m", "trayapp", "serve"], cwd=REPO, env={**os.environ, "WEAVER_HOME": str(home)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        server.stdout.readline()  # the URL: the server is up and recovery has run
        deadline = time.monotonic() + 60
        lib = Library(home)
        while lib.counts()["media"] == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        rows = list(lib.db.query("SELECT kind, duration FROM media"))
        assert len(rows) == 1 and rows[0]["kind"] == "capture"
        assert rows[0]["duration"] >= 3.0  # the speech played before the kill is there (≤ 2 s lost)
    finally:
        server.terminate()
        server.wait(timeout=20)
