"""Capture UX fixes a new user found: one Listen/Record state for every face, Save says what it saved, `capture stop`
adds no second copy of saved audio, one sentence (no exception text) when no sound server runs, and run/server.json
survives an older instance exiting. Real PulseAudio null sink, real background app, real SQLite."""

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

REPO = Path(__file__).resolve().parents[1]


def _weaver(home, *args, check=True, timeout=120, env=None):
    r = subprocess.run([sys.executable, "-m", "trayapp", *map(str, args)], capture_output=True, text=True, timeout=timeout,
                       cwd=REPO, env={**os.environ, "WEAVER_HOME": str(home), **(env or {})})
    if check:
        assert r.returncode == 0, r.stderr
    return r


def test_an_exiting_instance_leaves_a_newer_instances_server_json(tmp_path):
    home = tmp_path / "home"
    proc = subprocess.Popen([sys.executable, "-m", "trayapp", "serve", "--background"], cwd=REPO,
                            env={**os.environ, "WEAVER_HOME": str(home)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    runtime = home / "run" / "server.json"
    try:
        deadline = time.monotonic() + 60
        while not (runtime.exists() and json.loads(runtime.read_text() or "{}").get("pid") == proc.pid):
            assert time.monotonic() < deadline and proc.poll() is None, "the app did not write its server.json"
            time.sleep(0.1)
        # a newer instance (this live process stands in for it) takes over the runtime file
        newer = {"port": 1, "token": "t", "pid": os.getpid()}
        runtime.write_text(json.dumps(newer))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert json.loads(runtime.read_text()) == newer, "the exiting instance deleted the newer instance's server.json"


def test_own_server_json_is_removed_on_exit(tmp_path):
    from trayapp.panel import remove_runtime, write_runtime

    path = write_runtime(tmp_path, 1234, "tok")
    assert remove_runtime(path, pid=os.getpid() + 1) is False and path.exists()
    assert remove_runtime(path) is True and not path.exists()


PROBE = """
import sys
from pathlib import Path
from pipeline.errors import WeaverError
from pipeline.workflows.recordings import CaptureManager
try:
    CaptureManager(Path(sys.argv[1])).start(source="loopback")
except WeaverError as e:
    print(str(e))
"""


def test_no_sound_server_is_one_sentence_without_exception_text(tmp_path):
    from pipeline.workflows.recordings import NO_SOUND_SERVER

    env = dict(os.environ, PULSE_SERVER=f"unix:{tmp_path}/nothing/native", PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path)], env=env, capture_output=True, text=True, timeout=60)
    msg = r.stdout.strip()
    assert msg == NO_SOUND_SERVER
    assert "Error" not in msg and "connection failed" not in msg and msg.count(". ") == 0




@pytest.fixture(scope="module")
def pulse():
    if not pulseaudio_available():
        pytest.skip("pulseaudio not installed")
    with private_pulseaudio(sinks=("vw_ux",), default="vw_ux") as pa:
        yield pa


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    d = tmp_path_factory.mktemp("speech")
    return speech_wav(d / "s.wav", "The quick brown fox jumps over the lazy dog. Then it runs into the winter farm.")


@pytest.mark.audio
@pytest.mark.slow
def test_listen_and_record_are_one_state_and_stop_adds_no_second_copy(pulse, speech, tmp_path):
    from pipeline.workflows.recordings import CaptureManager

    mgr = CaptureManager(tmp_path)
    assert mgr.status()["state"] == "off"
    st = mgr.start(source="loopback", buffer_minutes=1)
    assert st["state"] == "listening" and not st["recording"]
    st = mgr.record()
    assert st["state"] == "recording"
    pulse.play(speech)
    saved_id = mgr.save_last(1.0)  # covers the whole recording so far
    assert mgr.last_saved["media_id"] == saved_id and mgr.last_saved["seconds"] > 3
    assert mgr.stop() == saved_id  # nothing new: no second copy
    lib = Library(tmp_path)
    try:
        assert [r["id"] for r in lib.db.query("SELECT id FROM media")] == [saved_id]
    finally:
        lib.close()

    # Record from off; save a window, record more, stop: the second item holds only what came after the save
    st = mgr.record(source="loopback", buffer_minutes=1)
    assert st["state"] == "recording" and st["running"]
    pulse.play(speech)
    first = mgr.save_last(1.0)
    saved_seconds = mgr.last_saved["seconds"]
    time.sleep(0.5)  # the audio clock has to move on for something new to exist after the save
    pulse.play(speech)
    recorded = mgr.status()["elapsed"]
    rest = mgr.stop()
    lib = Library(tmp_path)
    try:
        rows = {r["id"]: r for r in lib.db.query("SELECT id, duration FROM media")}
    finally:
        lib.close()
    assert rest not in (first, saved_id) and len(rows) == 3
    speech_seconds = rows[first]["duration"] - 1  # about one play of the sentence
    assert rows[rest]["duration"] < recorded - saved_seconds + 1.0, (rows, recorded, saved_seconds)
    assert rows[rest]["duration"] >= speech_seconds * 0.8, rows


@pytest.mark.audio
@pytest.mark.slow
def test_cli_and_panel_api_show_the_same_state_and_save_says_what_it_saved(pulse, speech, tmp_path):
    home = tmp_path / "home"
    try:
        _weaver(home, "capture", "listen", "--buffer", "2m", "--no-live")
        st = json.loads(_weaver(home, "capture", "status", "--json").stdout)
        assert st["state"] == "listening" and not st["recording"]
        assert "listening" in _weaver(home, "capture", "status").stdout
        pulse.play(speech)
        r = _weaver(home, "capture", "save", "--last", "30s", "--no-analyze")
        item = r.stdout.strip().splitlines()[-1]
        assert f"as item {item}" in r.stderr and "saved" in r.stderr
        st = json.loads(_weaver(home, "capture", "status", "--json").stdout)
        assert st["last_saved"]["media_id"] == int(item)
        _weaver(home, "capture", "start", "--no-live")  # Record while listening: records from now, no error
        st = json.loads(_weaver(home, "capture", "status", "--json").stdout)
        assert st["state"] == "recording"
        _weaver(home, "capture", "listen", "--no-live")  # Listen again: a no-op, still recording
        assert json.loads(_weaver(home, "capture", "status", "--json").stdout)["state"] == "recording"
    finally:
        _weaver(home, "capture", "stop", "--no-analyze", check=False)
        info = json.loads((home / "run" / "server.json").read_text())
        os.kill(info["pid"], signal.SIGTERM)


@pytest.mark.audio
@pytest.mark.slow
def test_capture_watch_prints_live_lines_in_the_terminal(pulse, speech, tmp_path):
    home = tmp_path / "home"
    try:
        _weaver(home, "capture", "listen", "--buffer", "1m")
        deadline = time.monotonic() + 60
        while not (json.loads(_weaver(home, "capture", "status", "--json").stdout).get("live") or {}).get("passes"):
            assert time.monotonic() < deadline, "the live analyser did not start"
            time.sleep(0.5)
        watcher = subprocess.Popen([sys.executable, "-m", "trayapp", "capture", "watch", "--for", "25"], cwd=REPO,
                                   env={**os.environ, "WEAVER_HOME": str(home)}, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        pulse.play(speech)
        out, err = watcher.communicate(timeout=90)
        assert watcher.returncode == 0, err
        lines = [ln for ln in out.splitlines() if ln.strip()]
        assert lines and any("lazy dog" in ln.lower() or "winter farm" in ln.lower() for ln in lines), out + err
        assert all(": " in ln and ln.split()[0].isdigit() for ln in lines), out  # "  1 [00:03.1] S1: text"
        assert "S1" in lines[0] and "\033[" not in out  # a label; no colour codes when not a terminal
    finally:
        _weaver(home, "capture", "stop", "--no-analyze", check=False)
        info = json.loads((home / "run" / "server.json").read_text())
        os.kill(info["pid"], signal.SIGTERM)
