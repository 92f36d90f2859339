"""Pick a character → every line they say, measured against the fixture's ground truth.

Each scenario imports the generated movie through the service (the same path the CLI and panel use) with the
full analysis chain, matches every resulting line to the true line it overlaps most, and prints per-character
precision and recall. Thresholds: screenplay + subtitles ≥ 95% precision / ≥ 90% recall (the issue's target),
the other scenarios at the level measured (written beside each assert).
"""

from __future__ import annotations

import csv
import json
import shutil

import pytest

from pipeline.errors import BadInputError
from pipeline.service import Service

pytestmark = pytest.mark.slow


def score(svc: Service, media_id: int, movie) -> dict[str, tuple[float, float]]:
    """Per character: (precision, recall) of lines, matching each segment to the true line it overlaps most."""
    from tests.line_metrics import measure

    out = measure(svc.segments(media_id), movie.lines, movie.characters)["pr"]
    print(" ".join(f"{c}: P={p:.2f} R={r:.2f}" for c, (p, r) in out.items()))
    return out


def test_screenplay_and_subtitles(movie, tmp_path):
    svc = Service(home=tmp_path / "home")
    out = svc.ingest(str(movie.movie), script=str(movie.screenplay_txt))
    res = score(svc, out.result["media_id"], movie)
    for c, (p, r) in res.items():
        assert p >= 0.95 and r >= 0.90, (c, p, r)
    chars = {c["name"]: c for c in svc.characters(out.result["media_id"])}
    assert set(chars) == set(movie.characters)
    for c in movie.characters:
        assert chars[c]["lines"] == sum(1 for t in movie.lines if t.character == c)
        truth_time = sum(t.end - t.start for t in movie.lines if t.character == c)
        assert abs(chars[c]["seconds"] - truth_time) < 0.15 * truth_time


def test_shifted_drifting_subtitles_are_synced_then_attributed(movie, tmp_path):
    svc = Service(home=tmp_path / "home")
    out = svc.ingest(str(movie.movie), subtitles=str(movie.shifted_srt), script=str(movie.screenplay_txt))
    mid = out.result["media_id"]
    track = svc.show_media(mid)["subtitle_tracks"][0]
    assert track["sync"] is not None, "the sync correction is recorded"
    assert abs(track["sync"]["scale"] - 1 / movie.shift_drift) < 1e-3
    assert track["sync"]["applied"] and track["sync"]["summary"].startswith("shifted −2.3 s, 23.976→25 fps"), track["sync"]
    assert out.result["analysis"]["sync"]["summary"] == track["sync"]["summary"]  # what `weaver ingest` prints
    starts = sorted(s["start"] for s in svc.segments(mid))
    errors = [min(abs(s - t.start) for s in starts) for t in movie.lines]
    print(f"max start error after sync + alignment: {max(errors) * 1000:.0f} ms")
    assert sum(e <= 0.1 for e in errors) >= 0.95 * len(errors)
    res = score(svc, mid, movie)
    for c, (p, r) in res.items():
        assert p >= 0.95 and r >= 0.90, (c, p, r)


def test_sdh_subtitles_without_screenplay(movie, tmp_path):
    """Names come only from the SDH cues, spread by the voice clusters."""
    svc = Service(home=tmp_path / "home")
    out = svc.ingest(str(movie.movie), subtitles=str(movie.sdh_srt))
    res = score(svc, out.result["media_id"], movie)
    for c, (p, r) in res.items():  # measured 2026-11-26: 1.00 / 1.00 for all three
        assert p >= 0.95 and r >= 0.9, (c, p, r)


def test_no_subtitles_no_script_asr_and_user_labels(movie, tmp_path):
    """ASR lines + diarization; the user names one line per speaker cluster and the labels propagate."""
    audio_only = tmp_path / "movie-audio.mkv"
    import subprocess

    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(movie.movie), "-map", "0:a", "-c", "copy",
                    str(audio_only)], check=True)
    svc = Service(home=tmp_path / "home")
    out = svc.ingest(str(audio_only))
    mid = out.result["media_id"]
    segs = svc.segments(mid)
    assert segs and all(s["origin"] == "asr" for s in segs)
    for sp in svc.speakers(mid):  # label each cluster from the truth line its first segment overlaps
        first = sp["segments"][0]
        truth = max(movie.lines, key=lambda t: min(first[1], t.end) - max(first[0], t.start))
        svc.label_speaker(mid, sp["speaker"], truth.character)
    res = score(svc, mid, movie)
    for c, (p, r) in res.items():  # measured 2026-11-26: 1.00 / 1.00 (tiny.en lines + resemblyzer clusters)
        assert p >= 0.9 and r >= 0.9, (c, p, r)


def test_character_clips_export_only_that_character(movie, tmp_path):
    svc = Service(home=tmp_path / "home")
    mid = svc.ingest(str(movie.movie), script=str(movie.screenplay_txt)).result["media_id"]
    out = svc.export_clips(mid, tmp_path / "boris", character="BORIS", video=True)
    with open(out / "metadata.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    truth = [t for t in movie.lines if t.character == "BORIS"]
    assert len(rows) == len(truth)
    assert {r["character"] for r in rows} == {"BORIS"}
    for r, t in zip(rows, truth):
        assert abs(float(r["start"]) - t.start) < 0.15 and abs(float(r["end"]) - t.end) < 0.25
        assert r["source"] in ("script", "sdh", "voice", "voiceprint", "user")
        assert float(r["confidence"]) > 0.5
        assert (out / r["video"]).exists()


def test_wrong_movie_subtitles_are_reported_not_attributed(movie, tmp_path, bad_inputs):
    svc = Service(home=tmp_path / "home")
    out = svc.ingest(str(movie.movie), subtitles=str(bad_inputs.other_movie_srt), script=str(movie.screenplay_txt))
    warnings = out.result["analysis"]["warnings"]
    assert any("wrong movie" in w or "do not match" in w for w in warnings), warnings
    segs = svc.segments(out.result["media_id"])
    assert not any(s["attribution_source"] == "script" for s in segs)


def test_bad_screenplays_fail_before_anything_is_written(movie, tmp_path, bad_inputs):
    svc = Service(home=tmp_path / "home")
    before = svc.lib.counts()
    for bad in (bad_inputs.unknown_layout_txt, bad_inputs.image_only_pdf):
        with pytest.raises(BadInputError) as e:
            svc.ingest(str(movie.movie), script=str(bad))
        assert "\n" not in str(e.value)
        assert svc.lib.counts() == before
