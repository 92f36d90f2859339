"""User edits: undo reverts exactly one labelling edit, and no automatic pass drops what the user set.

Real library (SQLite file), the generated fixture movie imported and analysed through the Service facade. The
analysed libraries are built once per module and copied per test, so every test starts from the same rows.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess

import pytest

from pipeline.workflows.analysis import AnalysisOptions, match_segments
from pipeline.service import Service
from pipeline.library import MIGRATIONS

# no forced alignment: pocketsphinx is the slowest stage and nothing here depends on word-exact line edges
OPTIONS = dict(align=False)
ITEM_TABLES = ("characters", "speakers", "segments", "clips")
slow = pytest.mark.slow  # every test on an analysed library: diarization (model load included) takes ~30 s once


def _ffmpeg(*args) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *map(str, args)], check=True)


def _close(svc: Service) -> None:
    svc.lib.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    svc.lib.close()


@pytest.fixture(scope="module")
def subtitle_library(movie, tmp_path_factory):
    """A library holding the movie's first 19 s (six lines; its audio tracks and embedded subtitles) analysed
    with speakers; (home, media id)."""
    folder = tmp_path_factory.mktemp("subs")
    part = folder / "movie-part.mkv"
    _ffmpeg("-i", movie.movie, "-map", "0:a", "-map", "0:s", "-t", 19, "-c", "copy", part)
    home = folder / "home"
    svc = Service(home=home)
    mid = svc.ingest(str(part), analysis=AnalysisOptions(**OPTIONS)).result["media_id"]
    assert len(svc.segments(mid)) == 6
    assert len(svc.speakers(mid)) >= 2
    _close(svc)
    return home, mid


@pytest.fixture(scope="module")
def asr_library(movie, tmp_path_factory):
    """A library holding a WAV without subtitles (first 19 s of the movie's dialogue): lines come from ASR."""
    folder = tmp_path_factory.mktemp("asr")
    wav = folder / "dialogue-part.wav"
    _ffmpeg("-i", movie.dialogue_wav, "-t", 19, wav)
    svc = Service(home=folder / "home")
    mid = svc.ingest(str(wav), analysis=AnalysisOptions(**OPTIONS)).result["media_id"]
    segs = svc.segments(mid)
    assert len(segs) >= 4 and all(s["origin"] == "asr" for s in segs)
    _close(svc)
    return folder / "home", mid


def _copy(library, tmp_path) -> tuple[Service, int]:
    home, mid = library
    shutil.copytree(home, tmp_path / "home")
    return Service(home=tmp_path / "home"), mid


@pytest.fixture
def subs(subtitle_library, tmp_path):
    return _copy(subtitle_library, tmp_path)


@pytest.fixture
def asr(asr_library, tmp_path):
    return _copy(asr_library, tmp_path)


def item_rows(svc: Service, mid: int) -> dict[str, list[dict]]:
    """Every row of the item's labelling tables and the words of its segments, plus all voiceprints."""
    q = lambda sql, args=(mid,): list(svc.lib.db.query(sql, list(args)))  # noqa: E731
    out = {t: q(f"SELECT * FROM {t} WHERE media_id = ? ORDER BY id") for t in ITEM_TABLES}
    out["words"] = q("SELECT w.* FROM words w JOIN segments s ON s.id = w.segment_id WHERE s.media_id = ? ORDER BY w.id")
    out["voiceprints"] = q("SELECT id, name, source FROM voiceprints ORDER BY id", ())
    return out


def by_speaker(svc: Service, mid: int) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for s in svc.segments(mid):
        out.setdefault(s["speaker"], []).append(s)
    return out


def longest_with_words(svc: Service, mid: int, avoid: set[int] = frozenset()) -> dict:
    """The longest line with at least four word times (the longest line when none has words)."""
    segs = [s for s in svc.segments(mid) if s["id"] not in avoid]
    worded = [s for s in segs if svc.lib.db.execute(
        "SELECT count(*) FROM words WHERE segment_id = ?", [s["id"]]).fetchone()[0] >= 4]
    return max(worded or segs, key=lambda s: s["end"] - s["start"])


# ------------------------------------------------------------------------------------------------------ undo


@slow
def test_label_undo_keeps_later_trims_and_marks_and_removes_its_voiceprint(subs):
    svc, mid = subs
    groups = by_speaker(svc, mid)
    speaker = max(groups, key=lambda k: len(groups[k]))
    other = next(k for k in groups if k != speaker)
    before = item_rows(svc, mid)
    svc.label_speaker(mid, speaker, "Zed")
    assert {s["character"] for s in svc.segments(mid) if s["speaker"] == speaker} == {"Zed"}
    assert [v["name"] for v in svc.voiceprints()] == ["Zed"]
    own, foreign = groups[speaker][0], groups[other][0]
    trimmed = svc.trim_clip(own["clip_id"], start=0.1, end=-0.1)  # a clip of the labelled speaker
    rejected = svc.set_clip_status(own["clip_id"], "rejected")
    kept = svc.set_clip_status(foreign["clip_id"], "kept")

    assert svc.undo(mid)["op"] == "label"

    after = item_rows(svc, mid)
    assert after["voiceprints"] == before["voiceprints"] == []
    assert after["speakers"] == before["speakers"] and after["characters"] == before["characters"]
    assert after["segments"] == before["segments"]
    clips = {c["id"]: c for c in after["clips"]}
    assert (clips[own["clip_id"]]["trim_start"], clips[own["clip_id"]]["trim_end"]) == \
        (pytest.approx(trimmed["trim_start"]), pytest.approx(trimmed["trim_end"]))
    assert clips[own["clip_id"]]["status"] == rejected["status"] == "rejected"
    assert clips[foreign["clip_id"]]["status"] == kept["status"] == "kept"
    untouched = [c for c in after["clips"] if c["id"] not in (own["clip_id"], foreign["clip_id"])]
    assert untouched == [c for c in before["clips"] if c["id"] not in (own["clip_id"], foreign["clip_id"])]
    assert svc.undo(mid) is None  # the trims and marks are not on the labelling undo stack


@slow
def test_undone_label_no_longer_names_the_next_import(subs, movie, tmp_path):
    svc, mid = subs
    groups = by_speaker(svc, mid)
    speaker = max(groups, key=lambda k: len(groups[k]))
    svc.label_speaker(mid, speaker, "Zed")
    part_a, part_b = tmp_path / "a.wav", tmp_path / "b.wav"
    _ffmpeg("-ss", 20, "-i", movie.dialogue_wav, "-t", 25, part_a)
    _ffmpeg("-ss", 22, "-i", movie.dialogue_wav, "-t", 25, part_b)
    opts = dict(asr="never", align=False)
    named = svc.ingest(str(part_a), analysis=AnalysisOptions(**opts)).result["media_id"]
    assert "Zed" in {s["name"] for s in svc.speakers(named)}, "the enrolled voiceprint names a new recording"
    svc.undo(mid)
    assert "Zed" not in [v["name"] for v in svc.voiceprints()]
    unnamed = svc.ingest(str(part_b), analysis=AnalysisOptions(**opts)).result["media_id"]
    assert svc.speakers(unnamed) and "Zed" not in {s["name"] for s in svc.speakers(unnamed)}


@slow
def test_merge_undo_restores_exactly_its_rows(subs):
    svc, mid = subs
    groups = by_speaker(svc, mid)
    a, b = sorted(groups, key=lambda k: -len(groups[k]))[:2]
    svc.label_speaker(mid, b, "Bea", enroll=False)
    before = item_rows(svc, mid)
    svc.merge_speakers(mid, a, b)
    assert a not in {s["speaker"] for s in svc.speakers(mid)}
    assert {s["character"] for s in svc.segments(mid) if s["speaker"] == b} == {"Bea"}
    clip_id = groups[a][0]["clip_id"]
    svc.trim_clip(clip_id, end=-0.2)
    assert svc.undo(mid)["op"] == "merge"
    after = item_rows(svc, mid)
    for table in ("speakers", "characters", "segments", "words", "voiceprints"):
        assert after[table] == before[table], table
    assert [c for c in after["clips"] if c["id"] != clip_id] == [c for c in before["clips"] if c["id"] != clip_id]
    assert next(c for c in after["clips"] if c["id"] == clip_id)["trim_end"] == pytest.approx(-0.2)
    assert svc.undo(mid)["op"] == "label"  # the label before it is next
    assert {s["name"] for s in svc.speakers(mid)} == {None}


@slow
def test_split_undo_restores_the_line_its_words_and_drops_the_new_clip(subs):
    svc, mid = subs
    seg = longest_with_words(svc, mid)
    other = next(s for s in svc.segments(mid) if s["id"] != seg["id"])
    svc.set_clip_status(other["clip_id"], "rejected")  # before the split
    before = item_rows(svc, mid)
    at = (seg["start"] + seg["end"]) / 2
    res = svc.split_line(seg["id"], at)
    halves = [s for s in svc.segments(mid) if s["id"] in (seg["id"], res["new_segment"])]
    assert [(h["start"], h["end"]) for h in halves] == [(seg["start"], at), (at, seg["end"])]
    assert halves[1]["character"] == seg["character"] and halves[1]["clip_id"] is not None
    svc.set_clip_status(halves[1]["clip_id"], "kept")  # a mark on the new half goes with it
    svc.trim_clip(other["clip_id"], start=0.05)  # a trim elsewhere stays
    assert svc.undo(mid)["op"] == "split"
    after = item_rows(svc, mid)
    for table in ("speakers", "characters", "segments", "words", "voiceprints"):
        assert after[table] == before[table], table
    clips = {c["id"]: c for c in after["clips"]}
    assert halves[1]["clip_id"] not in clips
    assert clips[other["clip_id"]]["status"] == "rejected"
    assert clips[other["clip_id"]]["trim_start"] == pytest.approx(0.05)


@slow
def test_reassign_undo_restores_the_line_and_keeps_its_clip_mark(subs):
    svc, mid = subs
    seg = svc.segments(mid)[3]
    before = item_rows(svc, mid)
    svc.reassign_line(seg["id"], "Aunt Mabel")
    assert next(s for s in svc.segments(mid) if s["id"] == seg["id"])["character"] == "Aunt Mabel"
    svc.set_clip_status(seg["clip_id"], "rejected")
    assert svc.undo(mid)["op"] == "reassign"
    after = item_rows(svc, mid)
    for table in ("speakers", "characters", "segments", "voiceprints"):
        assert after[table] == before[table], table
    assert next(s for s in svc.segments(mid) if s["id"] == seg["id"])["status"] == "rejected"


@slow
def test_undo_with_interleaved_edits_of_two_items(subs, movie, tmp_path):
    svc, one = subs
    two = svc.ingest(str(movie.dialogue_wav), subtitles=str(movie.srt), analyze=False).result["media_id"]
    start_one, start_two = item_rows(svc, one), item_rows(svc, two)
    s1, s2 = svc.segments(one)[1], svc.segments(two)[2]
    svc.reassign_line(s1["id"], "Ann")
    svc.reassign_line(s2["id"], "Ben")
    mid_one = item_rows(svc, one)
    svc.split_line(s1["id"], (s1["start"] + s1["end"]) / 2)
    svc.split_line(s2["id"], (s2["start"] + s2["end"]) / 2)
    both_two = item_rows(svc, two)

    assert svc.undo(one)["op"] == "split"
    assert item_rows(svc, one) == mid_one and item_rows(svc, two) == both_two
    assert svc.undo(one)["op"] == "reassign"
    assert item_rows(svc, one) == start_one and item_rows(svc, two) == both_two
    assert svc.undo(one) is None
    assert svc.undo(two)["op"] == "split" and svc.undo(two)["op"] == "reassign"
    assert item_rows(svc, two) == start_two and item_rows(svc, one) == start_one
    assert [e["undone"] for e in svc.edits(one)] == [1, 1]


@slow
def test_undo_twice_steps_back_two_edits(subs):
    svc, mid = subs
    groups = by_speaker(svc, mid)
    speaker = max(groups, key=lambda k: len(groups[k]))
    line = groups[speaker][0]
    start = item_rows(svc, mid)
    svc.label_speaker(mid, speaker, "Zed")
    labelled = item_rows(svc, mid)
    svc.reassign_line(line["id"], "Yan")
    svc.reassign_line(line["id"], "Yan")  # no change: not recorded
    assert [e["action"]["op"] for e in svc.edits(mid)] == ["label", "reassign"]
    assert svc.undo(mid)["op"] == "reassign"
    assert item_rows(svc, mid) == labelled
    assert svc.undo(mid)["op"] == "label"
    assert item_rows(svc, mid) == start
    assert svc.undo(mid) is None


# ------------------------------------------------------------------------------------------- re-analysis


def _edit_everything(svc: Service, mid: int) -> dict:
    """Reassign a line, trim a clip, reject a clip, name a speaker (no voiceprint) and split a line."""
    segs = svc.segments(mid)
    groups = by_speaker(svc, mid)
    speaker = max(groups, key=lambda k: len(groups[k]))
    svc.label_speaker(mid, speaker, "Named One", enroll=False)
    free = [s for s in svc.segments(mid) if s["speaker"] != speaker]
    reassigned, trimmed, rejected = free[0], free[1], segs[-1]
    svc.reassign_line(reassigned["id"], "Aunt Mabel")
    trim = svc.trim_clip(trimmed["clip_id"], start=0.12, end=-0.08)
    svc.set_clip_status(rejected["clip_id"], "rejected")
    split = longest_with_words(svc, mid, avoid={reassigned["id"], trimmed["id"], rejected["id"]})
    at = round((split["start"] + split["end"]) / 2, 3)
    svc.split_line(split["id"], at)
    return {"speaker": speaker, "reassigned": reassigned, "trimmed": trimmed, "trim": trim, "rejected": rejected,
            "split": split, "at": at, "speaker_lines": len(groups[speaker])}


def _same_line(svc: Service, mid: int, seg: dict) -> dict:
    return max(svc.segments(mid), key=lambda s: min(s["end"], seg["end"]) - max(s["start"], seg["start"]))


def _check_edits_survive(svc: Service, mid: int, e: dict) -> None:
    r = _same_line(svc, mid, e["reassigned"])
    assert (r["character"], r["attribution_source"]) == ("Aunt Mabel", "user-line")
    t = _same_line(svc, mid, e["trimmed"])
    assert (t["trim_start"], t["trim_end"]) == (pytest.approx(e["trim"]["trim_start"]), pytest.approx(e["trim"]["trim_end"]))
    assert _same_line(svc, mid, e["rejected"])["status"] == "rejected"
    named = [s for s in svc.speakers(mid) if s["name"] == "Named One"]
    assert len(named) == 1
    assert sum(1 for s in svc.segments(mid) if s["character"] == "Named One") >= e["speaker_lines"]
    pieces = [s for s in svc.segments(mid) if s["start"] < e["split"]["end"] and s["end"] > e["split"]["start"]]
    assert any(s["end"] == pytest.approx(e["at"]) for s in pieces) and any(s["start"] == pytest.approx(e["at"]) for s in pieces)
    others = [s for s in svc.segments(mid) if s["id"] not in {r["id"], t["id"]} and s["status"] == "rejected"]
    assert len(others) == 1  # nothing else picked up a mark


def _reanalyse_and_check(svc: Service, mid: int, e: dict) -> None:
    out = svc.analyze(mid, options=AnalysisOptions(**OPTIONS))
    assert svc.runner.get(out.job_id)["state"] == "done" and out.result["lines"] > 0
    _check_edits_survive(svc, mid, e)
    assert {"Named One", "Aunt Mabel"} <= set(out.result["characters"])  # the job's summary says so too


@slow
def test_reanalysis_keeps_user_edits_on_a_subtitled_item(subs):
    svc, mid = subs
    e = _edit_everything(svc, mid)
    _check_edits_survive(svc, mid, e)
    n = len(svc.segments(mid))
    _reanalyse_and_check(svc, mid, e)
    assert len(svc.segments(mid)) == n
    assert svc.undo(mid) is None and all(x["closed"] for x in svc.edits(mid))  # the pass closed the old edits
    _reanalyse_and_check(svc, mid, e)  # and a second pass keeps them too


@slow
def test_reanalysis_keeps_user_edits_on_an_asr_item(asr):
    svc, mid = asr
    e = _edit_everything(svc, mid)
    n = len(svc.segments(mid))
    _reanalyse_and_check(svc, mid, e)
    assert len(svc.segments(mid)) == n


# -------------------------------------------------------------------------------------------- small parts


def test_match_segments_pairs_by_line_time_and_text():
    old = [{"start": 1.0, "end": 2.0, "text": "Hello there", "line_id": 7},
           {"start": 2.0, "end": 3.0, "text": "General Kenobi", "line_id": None},
           {"start": 5.0, "end": 6.0, "text": "You are a bold one", "line_id": None}]
    new = [{"start": 4.5, "end": 5.4, "text": "something else entirely", "line_id": None},  # overlaps, other words
           {"start": 3.5, "end": 4.6, "text": "Hello there", "line_id": 7},  # moved by a sync, same subtitle line
           {"start": 2.05, "end": 3.1, "text": "general kenobi!", "line_id": None},
           {"start": 5.0, "end": 6.05, "text": "You are a bold one.", "line_id": None}]
    assert match_segments(old, new) == {1: 0, 2: 1, 3: 2}


def test_migration_closes_snapshot_edits_and_marks_old_splits(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    conn = sqlite3.connect(home / "library.db")
    conn.close()
    import sqlite_utils

    db = sqlite_utils.Database(home / "library.db")
    version = MIGRATIONS.index(next(m for m in MIGRATIONS if m.__name__ == "_migration_user_edits"))
    for step in MIGRATIONS[:version]:
        step(db)
    db.execute(f"PRAGMA user_version={version}")
    db.execute("INSERT INTO media (id, kind, title, created_at) VALUES (1, 'file', 't', 0)")
    db.execute("INSERT INTO segments (id, media_id, line_id, idx, start, end, text, origin) VALUES"
               " (1, 1, NULL, 0, 0, 1, 'a', 'subtitle'), (2, 1, NULL, 1, 1, 2, 'b', 'asr')")
    db.execute("INSERT INTO speakers (id, media_id, label, name) VALUES (1, 1, 'S0', 'Vp')")
    db.execute("INSERT INTO edits (media_id, action, undo, created_at) VALUES (1, '{\"op\":\"label\"}', '{}', 0)")
    db.conn.commit()
    db.conn.close()
    svc = Service(home=home)
    assert svc.lib.schema_version >= version + 1
    assert [e["closed"] for e in svc.edits(1)] and all(e["closed"] for e in svc.edits(1))
    assert svc.undo(1) is None
    assert [r["user_split"] for r in svc.lib.db.query("SELECT user_split FROM segments ORDER BY id")] == [1, 0]
    assert svc.lib.db.execute("SELECT name_source FROM speakers").fetchone()[0] == "voiceprint"
