"""Analysis commands through the real CLI: transcribe, diarize (RTTM), analyze, speakers, voiceprints."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.test_ingest_cli import last_line, weaver

pytestmark = pytest.mark.slow


def test_transcribe_file_in_three_formats(movie, tmp_path):
    srt = weaver(tmp_path, "transcribe", movie.dialogue_wav, "--format", "srt").stdout
    assert "-->" in srt and srt.strip().startswith("1")
    data = json.loads(weaver(tmp_path, "transcribe", movie.dialogue_wav, "--format", "json").stdout)
    assert data["language"] == "en"
    words = [w for ln in data["lines"] for w in ln["words"]]
    assert len(words) > 100
    assert all(a["start"] <= b["start"] for a, b in zip(words, words[1:]))
    txt = weaver(tmp_path, "transcribe", movie.dialogue_wav).stdout
    assert "soup" in txt.lower()


def test_diarize_writes_rttm_with_the_three_voices(movie, tmp_path):
    out = tmp_path / "movie.rttm"
    weaver(tmp_path, "diarize", movie.dialogue_wav, "--rttm", out)
    rows = [ln.split() for ln in out.read_text().splitlines()]
    assert rows and all(r[0] == "SPEAKER" for r in rows)
    assert len({r[7] for r in rows}) == 3


def test_missing_model_is_one_clear_line(movie, tmp_path):
    r = weaver(tmp_path, "transcribe", movie.dialogue_wav, "--model", "large-v3", check=False)
    assert r.returncode != 0
    assert r.stderr.count("\n") == 1 and "download_model('large-v3')" in r.stderr and "Traceback" not in r.stderr


def test_analyze_then_speakers_and_voiceprints_recognise_a_new_recording(movie, tmp_path):
    audio_only = tmp_path / "a.mka"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(movie.movie), "-map", "0:a:1", "-c", "copy",
                    str(audio_only)], check=True)
    item = last_line(weaver(tmp_path, "ingest", audio_only, "--no-analysis"))
    job = last_line(weaver(tmp_path, "analyze", item))
    assert json.loads(weaver(tmp_path, "jobs", "show", job).stdout)["state"] == "done"
    speakers = json.loads(weaver(tmp_path, "speakers", item, "--json").stdout)
    assert len(speakers) == 3 and all(s["name"] is None for s in speakers)
    for s in speakers:  # name each cluster after the true character of its first segment
        first = s["segments"][0]
        truth = max(movie.lines, key=lambda t: min(first[1], t.end) - max(first[0], t.start))
        weaver(tmp_path, "label", "rename", item, s["speaker"], truth.character)
    assert len(json.loads(weaver(tmp_path, "voiceprint", "list", "--json").stdout)) == 3
    # a new recording of the same voices: the clusters are named by the stored voiceprints
    other = tmp_path / "b.mka"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-ss", "20", "-i", str(movie.movie), "-map", "0:a:1",
                    "-c:a", "flac", str(other)], check=True)
    item2 = last_line(weaver(tmp_path, "ingest", other))
    named = json.loads(weaver(tmp_path, "speakers", item2, "--json").stdout)
    assert {s["name"] for s in named} <= set(movie.characters)
    assert sum(1 for s in named if s["name"]) >= 2
    assert all(s["match_score"] is None or s["match_score"] > 0.5 for s in named)
    chars = json.loads(weaver(tmp_path, "characters", item2, "--json").stdout)
    assert {c["name"] for c in chars} <= set(movie.characters)


def test_voiceprint_enroll_from_a_window(movie, tmp_path):
    alice = movie.lines_of("ALICE")
    vid = last_line(weaver(tmp_path, "voiceprint", "enroll", "ALICE", movie.dialogue_wav,
                           "--start", alice[0].start, "--end", alice[1].end))
    assert vid.isdigit()
    r = weaver(tmp_path, "voiceprint", "enroll", "X", movie.dialogue_wav, "--start", 0, "--end", 0.2, check=False)
    assert r.returncode != 0 and "at least 1 s" in r.stderr


def test_analyze_says_what_the_subtitle_sync_found(movie, tmp_path):
    """`weaver analyze` prints the sync summary of shifted, drifting subtitles; `weaver show` prints it stored."""
    item = last_line(weaver(tmp_path, "ingest", movie.movie, "--subtitles", movie.shifted_srt, "--no-analysis"))
    r = weaver(tmp_path, "analyze", item, "--asr", "never")
    assert "subtitle sync: shifted −2.3 s, 23.976→25 fps" in r.stderr, r.stderr
    assert "subtitle sync: shifted −2.3 s, 23.976→25 fps" in weaver(tmp_path, "show", item).stdout
