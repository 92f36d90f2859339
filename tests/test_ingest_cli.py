"""The spine end to end through the real `weaver` command: MKV → PyAV decode → subtitle lines → clips.

Runs the CLI as a subprocess against a fresh library (WEAVER_HOME) so exit codes, stdout ids and one-line
errors are what a user sees.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pipeline.media import load_audio, probe
from pipeline.library import Library

REPO = Path(__file__).resolve().parents[1]


def weaver(home: Path, *args, check: bool = True, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "trayapp", *map(str, args)], capture_output=True, text=True, timeout=timeout,
                       env={**os.environ, "WEAVER_HOME": str(home), **(env or {})}, cwd=REPO)
    if check and r.returncode != 0:
        raise AssertionError(f"weaver {' '.join(map(str, args))} failed ({r.returncode}): {r.stderr}")
    return r


def last_line(r: subprocess.CompletedProcess) -> str:
    return r.stdout.strip().splitlines()[-1]


def snapshot(home: Path) -> tuple[dict, list]:
    lib = Library(home)
    try:
        return lib.counts(), lib.files()
    finally:
        lib.close()


def test_progress_bar_with_stage_and_eta_on_a_terminal(movie, tmp_path):
    """Run `weaver ingest` under a pseudo-terminal: the rich bar shows stage names and an ETA on stderr."""
    import pty

    cmd = [sys.executable, "-m", "trayapp", "ingest", str(movie.movie), "--no-analysis"]
    env = {**os.environ, "WEAVER_HOME": str(tmp_path), "COLUMNS": "120", "TERM": "xterm"}
    pid, fd = pty.fork()
    if pid == 0:  # child: stdout and stderr are the terminal
        os.chdir(REPO)
        os.execve(sys.executable, cmd, env)
    chunks = []
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    _, status = os.waitpid(pid, 0)
    screen = b"".join(chunks).decode("utf-8", "replace")
    assert os.waitstatus_to_exitcode(status) == 0, screen
    assert "ETA" in screen and "%" in screen
    assert "decoding audio" in screen or "saving to library" in screen


def test_help_and_version(tmp_path):
    r = weaver(tmp_path, "--help")
    for sub in ("ingest", "list", "show", "rm", "lines", "clips", "models", "transcribe", "diarize", "characters", "serve"):
        assert sub in r.stdout
    assert weaver(tmp_path, "--version").stdout.startswith("weaver 0.")


@pytest.fixture(scope="module")
def imported(movie, tmp_path_factory):
    """The fixture movie imported once (no analysis) into a module-wide library."""
    home = tmp_path_factory.mktemp("lib")
    r = weaver(home, "ingest", movie.movie, "--no-analysis")
    return home, int(last_line(r)), r


def test_ingest_reads_streams_and_takes_the_centre_channel(movie, imported):
    home, item, r = imported
    show = json.loads(weaver(home, "show", item, "--json").stdout)
    assert show["kind"] == "file" and show["has_video"] == 1
    assert abs(show["duration"] - movie.duration) < 0.2
    assert [t["channels"] for t in show["audio_tracks"]] == [6, 2]
    assert show["channel_mode"] == "centre"
    assert show["subtitle_tracks"][0]["source"] == "embedded"
    # the kept dialogue copy is the centre channel: it matches the clean dialogue stem, the stereo mix does not
    lib = Library(home)
    dialogue = load_audio(lib.home / f"media/{item}/dialogue.flac", 16000)
    clean = load_audio(movie.dialogue_wav, 16000)
    n = min(len(dialogue), len(clean))
    assert np.corrcoef(dialogue[:n], clean[:n])[0, 1] > 0.95
    assert lib.media(item)["dialogue_rate"] == 48000


def test_lines_come_from_the_embedded_subtitles(movie, imported):
    home, item, _ = imported
    rows = json.loads(weaver(home, "lines", item, "--json").stdout)
    assert len(rows) == len(movie.lines)
    for row, truth in zip(rows, movie.lines):
        assert row["text"].rstrip(".!?").lower()[:12] == truth.text.rstrip(".!?").lower()[:12]
        assert abs(row["start"] - truth.start) < 0.35
    text = weaver(home, "lines", item).stdout
    assert "-->" in text and movie.lines[0].text.split()[0] in text


def test_clips_export_audio_video_and_metadata(movie, imported, tmp_path):
    home, item, _ = imported
    out = tmp_path / "clips"
    r = weaver(home, "clips", item, "--export", out, "--video")
    assert last_line(r) == str(out)
    with open(out / "metadata.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(movie.lines)
    assert {"file", "text", "start", "end", "confidence", "source"} <= set(rows[0])
    for row in rows:
        audio = out / row["file"]
        video = out / row["video"]
        assert audio.stat().st_size > 1000 and video.stat().st_size > 1000
        dur = float(row["end"]) - float(row["start"])
        import soundfile as sf

        assert abs(sf.info(str(audio)).duration - dur) < 0.02
        info = probe(video)
        assert info.video and abs(info.duration - dur) < 0.3


def test_sidecar_subtitles_take_precedence_and_keep_sdh_cues(movie, tmp_path):
    r = weaver(tmp_path, "ingest", movie.movie, "--subtitles", movie.sdh_srt, "--no-analysis")
    item = last_line(r)
    rows = json.loads(weaver(tmp_path, "lines", item, "--json").stdout)
    cues = {row["speaker_cue"] for row in rows if row["speaker_cue"]}
    assert cues and cues <= set(movie.characters)
    assert any(row["tags"] for row in rows)  # [music] / [door slams] kept as metadata
    show = json.loads(weaver(tmp_path, "show", item, "--json").stdout)
    assert show["subtitle_tracks"][0]["source"] == "sidecar"


def test_duplicate_import_prints_existing_id_and_list_show_rm(movie, tmp_path):
    first = last_line(weaver(tmp_path, "ingest", movie.movie, "--no-analysis"))
    again = weaver(tmp_path, "ingest", movie.movie, "--no-analysis")
    assert last_line(again) == first and "already" in again.stderr
    listed = json.loads(weaver(tmp_path, "list", "--json").stdout)
    assert [m["id"] for m in listed] == [int(first)]
    weaver(tmp_path, "rm", first)
    assert json.loads(weaver(tmp_path, "list", "--json").stdout) == []
    counts, files = snapshot(tmp_path)
    assert files == [] and counts["media"] == counts["segments"] == counts["clips"] == 0
    r = weaver(tmp_path, "show", first, check=False)
    assert r.returncode != 0 and r.stderr.count("\n") == 1 and "not found" in r.stderr


def _bad_inputs(movie, tmp: Path) -> dict[str, list]:
    empty = tmp / "empty.mkv"
    empty.write_bytes(b"")
    truncated = tmp / "truncated.mkv"
    truncated.write_bytes(movie.movie.read_bytes()[:4096])
    half = tmp / "half.mkv"
    half.write_bytes(movie.movie.read_bytes()[: movie.movie.stat().st_size // 3])
    text = tmp / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    malformed = tmp / "bad.srt"
    malformed.write_text("1\nthis is not a time line\nhello\n\n2\n00:00:xx --> nope\nworld\n")
    return {
        "empty file": [empty],
        "truncated mkv": [truncated],
        "mkv cut at a third": [half],
        "text renamed .mp4": [text],
        "missing path": [tmp / "does-not-exist.mkv"],
        "malformed srt": [movie.movie, "--subtitles", malformed],
        "missing srt": [movie.movie, "--subtitles", tmp / "nope.srt"],
    }


def test_bad_input_gives_one_line_error_and_leaves_library_unchanged(movie, tmp_path):
    home = tmp_path / "home"
    weaver(home, "ingest", movie.movie, "--no-analysis")  # the library holds something already
    before = snapshot(home)
    for name, args in _bad_inputs(movie, tmp_path).items():
        r = weaver(home, "ingest", *args, "--no-analysis", check=False)
        assert r.returncode != 0, name
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("weaver: error:"), (name, r.stderr)
        assert "Traceback" not in r.stderr
        assert snapshot(home) == before, name
    assert not any((home / "work").iterdir())


def test_non_utf8_subtitles_import_with_correct_text(movie, tmp_path):
    srt = tmp_path / "cp1252.srt"
    srt.write_bytes("1\n00:00:01,000 --> 00:00:02,500\nUn café très naïve — “oui”.\n\n2\n00:00:03,000 --> 00:00:04,000\nÀ bientôt.\n".encode("cp1252"))
    item = last_line(weaver(tmp_path, "ingest", movie.movie, "--subtitles", srt, "--no-analysis"))
    rows = json.loads(weaver(tmp_path, "lines", item, "--json").stdout)
    assert rows[0]["text"] == "Un café très naïve — “oui”."


def test_kill_9_during_ingest_then_rerun_resumes_consistently(movie, tmp_path):
    """Kill the import right after decoding (a finished, cached stage), rerun: decode is not redone."""
    from tests.fixtures.movie import generate_long_media, long_media_paths

    long_file = generate_long_media(tmp_path / "long.mkv", 3.0, source=movie)
    srt, _ = long_media_paths(long_file)
    home = tmp_path / "home"
    env = {**os.environ, "WEAVER_HOME": str(home), "WEAVER_TEST_STALL_AFTER": "decode"}
    proc = subprocess.Popen([sys.executable, "-m", "trayapp", "ingest", str(long_file), "--subtitles", str(srt), "--no-analysis"], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout.readline().strip() == "stalled after decode"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    lib = Library(home)
    decode_done = lib.db.execute("SELECT finished_at FROM job_stages WHERE name='decode'").fetchone()[0]
    assert lib.counts()["media"] == 0  # nothing half-imported
    r = weaver(home, "ingest", long_file, "--subtitles", srt, "--no-analysis")
    assert "resumed" in r.stderr
    item = int(last_line(r))
    assert lib.db.execute("SELECT finished_at FROM job_stages WHERE name='decode'").fetchone()[0] == decode_done
    counts = lib.counts()
    assert counts["media"] == 1 and counts["clips"] == counts["segments"] > 0
    assert sorted(lib.files()) == [f"media/{item}/analysis.flac", f"media/{item}/dialogue.flac"]
    assert not any((home / "work").iterdir())
    job = json.loads(weaver(home, "jobs", "--json").stdout)[0]
    assert job["state"] == "done"


def test_kill_9_mid_decode_then_rerun_completes(movie, tmp_path):
    from tests.fixtures.movie import generate_long_media

    long_file = generate_long_media(tmp_path / "long.mkv", 3.0, source=movie)
    home = tmp_path / "home"
    proc = subprocess.Popen([sys.executable, "-m", "trayapp", "ingest", str(long_file), "--no-analysis"], cwd=REPO,
                            env={**os.environ, "WEAVER_HOME": str(home)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lib = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until the job is decoding, then kill
        if (home / "library.db").exists():
            lib = lib or Library(home)
            row = lib.db.execute("SELECT stage, progress FROM jobs").fetchone()
            if row and row[1] > 0.05:
                break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    r = weaver(home, "ingest", long_file, "--no-analysis")
    item = int(last_line(r))
    lib = Library(home)
    assert lib.counts()["media"] == 1
    assert sorted(lib.files()) == [f"media/{item}/analysis.flac", f"media/{item}/dialogue.flac"]
    assert not any((home / "work").iterdir())


def test_models_lists_every_stage_with_presence_and_fetch_commands(tmp_path):
    rows = json.loads(weaver(tmp_path, "models", "--json").stdout)
    stages = {r["stage"] for r in rows}
    assert {"separation", "vad", "asr", "align", "diarize", "voiceprint", "tts"} <= stages
    fw = next(r for r in rows if r["stage"] == "asr" and r["backend"] == "faster-whisper")
    assert fw["available"] and fw["models"][0]["present"]  # the bundled tiny.en
    for r in rows:
        if not r["available"]:
            assert r["fix"] or any(m["fetch_command"] for m in r["models"]), r
    text = weaver(tmp_path, "models").stdout
    assert "fetch: " in text and "ready" in text
