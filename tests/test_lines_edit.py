"""Editing a line's text and joining two lines: undoable edits, the user's text wins over re-analysis, the clip
export uses it, and bad requests are refused with one line and change nothing.

Real library (SQLite file) holding the generated fixture movie's first 19 s; the libraries are built once per
module and copied per test (tests/test_reliability_edits.py helpers)."""

from __future__ import annotations

import csv
import os
import shutil
import sqlite3
import subprocess
import sys

import pytest

from pipeline.workflows.analysis import AnalysisOptions
from pipeline.errors import BadInputError, NotFoundError
from pipeline.service import Service
from pipeline.library import MIGRATIONS
from tests.test_reliability_edits import _close, _ffmpeg, item_rows

# no forced alignment and no diarization: the fastest analysis that still recreates every segment
FAST = dict(align=False, diarize=False)


@pytest.fixture(scope="module")
def plain_library(movie, tmp_path_factory):
    """19 s of the movie imported with its subtitles, not analysed: six lines, no characters; (home, id)."""
    folder = tmp_path_factory.mktemp("lines")
    part = folder / "part.mkv"
    _ffmpeg("-i", movie.movie, "-map", "0:a", "-map", "0:s", "-t", 19, "-c", "copy", part)
    svc = Service(home=folder / "home")
    mid = svc.ingest(str(part), analyze=False).result["media_id"]
    assert len(svc.segments(mid)) == 6
    _close(svc)
    return folder / "home", mid, part


@pytest.fixture
def lib(plain_library, tmp_path):
    home, mid, part = plain_library
    shutil.copytree(home, tmp_path / "home")
    return Service(home=tmp_path / "home"), mid


def _seg(svc: Service, mid: int, seg_id: int) -> dict:
    return next(s for s in svc.segments(mid) if s["id"] == seg_id)


def _words(svc: Service, seg_id: int) -> list[str]:
    return [r["text"] for r in svc.lib.db.query("SELECT text FROM words WHERE segment_id = ? ORDER BY idx", [seg_id])]


def test_edit_text_marks_it_the_users_and_undo_restores_exactly(lib):
    svc, mid = lib
    seg = svc.segments(mid)[2]
    before = item_rows(svc, mid)
    res = svc.edit_line_text(seg["id"], "  Well, I told you   we should have left.  ")
    assert res == {"segment": seg["id"], "text": "Well, I told you we should have left.", "previous": seg["text"]}
    now = _seg(svc, mid, seg["id"])
    assert (now["text"], now["user_text"]) == ("Well, I told you we should have left.", 1)
    assert svc.clip(now["clip_id"])["text"] == now["text"]
    assert [e["action"]["op"] for e in svc.edits(mid)] == ["text"]
    svc.set_clip_status(now["clip_id"], "kept")  # a mark set after the edit is not part of it
    assert svc.undo(mid)["op"] == "text"
    after = item_rows(svc, mid)
    for table in ("segments", "words", "characters", "speakers"):
        assert after[table] == before[table], table
    assert _seg(svc, mid, seg["id"])["status"] == "kept"
    assert svc.undo(mid) is None


def test_edit_text_refusals_change_nothing(lib):
    svc, mid = lib
    seg = svc.segments(mid)[0]
    before = item_rows(svc, mid)
    for bad in ("", "   \n\t "):
        with pytest.raises(BadInputError, match=rf"text of line {seg['id']} cannot be empty"):
            svc.edit_line_text(seg["id"], bad)
    with pytest.raises(BadInputError, match="too long"):
        svc.edit_line_text(seg["id"], "word " * 1000)
    with pytest.raises(NotFoundError, match="line 99999 not found"):
        svc.edit_line_text(99999, "text")
    assert item_rows(svc, mid) == before and svc.edits(mid) == []


def test_join_keeps_one_clip_with_outer_trims_and_undo_restores_both(lib):
    svc, mid = lib
    segs = svc.segments(mid)
    a, b = segs[1], segs[2]
    words_a, words_b = _words(svc, a["id"]), _words(svc, b["id"])
    svc.trim_clip(a["clip_id"], start=0.05)
    svc.trim_clip(b["clip_id"], end=-0.07)
    svc.set_clip_status(a["clip_id"], "kept")
    svc.set_clip_status(b["clip_id"], "kept")
    before = item_rows(svc, mid)
    res = svc.join_lines(a["id"], b["id"])
    assert res == {"segment": a["id"], "joined": b["id"], "text": f"{a['text']} {b['text']}"}
    after = svc.segments(mid)
    assert len(after) == len(segs) - 1 and b["id"] not in {s["id"] for s in after}
    j = _seg(svc, mid, a["id"])
    assert (j["start"], j["end"], j["text"], j["user_join"]) == (a["start"], b["end"], f"{a['text']} {b['text']}", 1)
    clip = svc.clip(j["clip_id"])
    assert clip["id"] == a["clip_id"] and clip["status"] == "kept"
    assert clip["start"] == pytest.approx(a["start"] + 0.05) and clip["end"] == pytest.approx(b["end"] - 0.07)
    assert _words(svc, a["id"]) == words_a + words_b
    assert svc.undo(mid)["op"] == "join"
    assert item_rows(svc, mid) == before  # the second line, its clip (trim, mark) and its words are back


def test_join_with_different_marks_is_pending_and_accepts_reversed_order(lib):
    svc, mid = lib
    segs = svc.segments(mid)
    a, b = segs[3], segs[4]
    svc.set_clip_status(a["clip_id"], "kept")
    svc.set_clip_status(b["clip_id"], "rejected")
    res = svc.join_lines(b["id"], a["id"])  # given the other way round: still the earlier line is kept
    assert (res["segment"], res["joined"]) == (a["id"], b["id"])
    assert _seg(svc, mid, a["id"])["status"] == "pending"


def test_join_refusals_change_nothing(lib, plain_library, movie):
    svc, mid = lib
    segs = svc.segments(mid)
    other = svc.ingest(str(movie.dialogue_wav), subtitles=str(movie.srt), analyze=False).result["media_id"]
    svc.reassign_line(segs[1]["id"], "Ann")
    before, edits = item_rows(svc, mid), len(svc.edits(mid))
    with pytest.raises(BadInputError, match=rf"lines {segs[0]['id']} and {segs[2]['id']} are not adjacent \(1 line between"):
        svc.join_lines(segs[0]["id"], segs[2]["id"])
    with pytest.raises(BadInputError, match="in different items"):
        svc.join_lines(segs[5]["id"], svc.segments(other)[0]["id"])
    with pytest.raises(BadInputError, match="with itself"):
        svc.join_lines(segs[0]["id"], segs[0]["id"])
    with pytest.raises(BadInputError, match=rf"line {segs[1]['id']} is Ann's and line {segs[2]['id']} is unattributed: "
                                            "joining lines of two characters needs force"):
        svc.join_lines(segs[1]["id"], segs[2]["id"])
    with pytest.raises(NotFoundError):
        svc.join_lines(segs[0]["id"], 99999)
    assert item_rows(svc, mid) == before and len(svc.edits(mid)) == edits
    svc.join_lines(segs[1]["id"], segs[2]["id"], force=True)
    assert _seg(svc, mid, segs[1]["id"])["character"] == "Ann"  # the first line's character
    assert svc.undo(mid)["op"] == "join" and item_rows(svc, mid) == before


def test_export_uses_edited_and_joined_text(lib, tmp_path):
    svc, mid = lib
    segs = svc.segments(mid)
    svc.edit_line_text(segs[0]["id"], "Exactly what was said, word for word.")
    svc.join_lines(segs[3]["id"], segs[4]["id"])
    out = svc.export_clips(mid, tmp_path / "export")
    with open(out / "metadata.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    texts = [r["text"] for r in rows]
    assert len(rows) == 5 and texts[0] == "Exactly what was said, word for word."
    assert f"{segs[3]['text']} {segs[4]['text']}" in texts
    assert segs[0]["text"] not in texts
    joined = next(r for r in rows if r["text"].startswith(segs[3]["text"]))
    assert float(joined["end"]) == pytest.approx(segs[4]["end"], abs=1e-3)


def test_split_of_an_edited_line_keeps_the_users_words(lib):
    svc, mid = lib
    seg = max(svc.segments(mid), key=lambda s: s["end"] - s["start"])
    svc.edit_line_text(seg["id"], "one two three four five six")
    res = svc.split_line(seg["id"], (seg["start"] + seg["end"]) / 2)
    left, right = _seg(svc, mid, seg["id"]), _seg(svc, mid, res["new_segment"])
    assert f"{left['text']} {right['text']}" == "one two three four five six"
    assert left["user_text"] == right["user_text"] == 1


def test_reanalysis_keeps_edited_text_and_joins(plain_library, tmp_path):
    home, mid, _ = plain_library
    shutil.copytree(home, tmp_path / "home")
    svc = Service(home=tmp_path / "home")
    svc.analyze(mid, options=AnalysisOptions(**FAST))
    segs = svc.segments(mid)
    assert len(segs) == 6
    edited, a, b = segs[0], segs[2], segs[3]
    svc.edit_line_text(edited["id"], "The words actually spoken here.")
    svc.join_lines(a["id"], b["id"])
    svc.edit_line_text(segs[5]["id"], "Last line, as heard.")
    svc.set_clip_status(_seg(svc, mid, a["id"])["clip_id"], "rejected")
    for _ in range(2):  # a second pass keeps them as well
        out = svc.analyze(mid, options=AnalysisOptions(**FAST))
        assert svc.runner.get(out.job_id)["state"] == "done"
        now = svc.segments(mid)
        assert len(now) == 5, [(s["start"], s["end"], s["text"]) for s in now]
        texts = [s["text"] for s in now]
        assert texts[0] == "The words actually spoken here." and texts[-1] == "Last line, as heard."
        assert now[0]["user_text"] == 1 and now[-1]["user_text"] == 1
        joined = now[2]
        assert joined["text"] == f"{a['text']} {b['text']}" and joined["user_join"] == 1 and joined["user_text"] == 0
        assert joined["start"] == pytest.approx(a["start"], abs=0.05) and joined["end"] == pytest.approx(b["end"], abs=0.05)
        assert joined["status"] == "rejected"
        assert sum(s["user_text"] for s in now) == 2


def test_cli_line_edit_join_undo(plain_library, tmp_path):
    home, mid, _ = plain_library
    shutil.copytree(home, tmp_path / "home")
    env = {**os.environ, "WEAVER_HOME": str(tmp_path / "home")}

    def weaver(*args, check=True):
        r = subprocess.run([sys.executable, "-m", "trayapp", *map(str, args)], capture_output=True, text=True, env=env,
                           timeout=120)
        assert (r.returncode == 0) == check, (r.returncode, r.stdout, r.stderr)
        return r

    svc = Service(home=tmp_path / "home")
    segs = svc.segments(mid)
    r = weaver("line", "edit", segs[0]["id"], "Typed by the user.")
    assert r.stdout.strip().splitlines()[-1] == str(segs[0]["id"])
    assert _seg(svc, mid, segs[0]["id"])["text"] == "Typed by the user."
    r = weaver("line", "join", segs[1]["id"], segs[3]["id"], check=False)
    assert r.returncode == 2 and r.stderr.strip() == (f"weaver: error: lines {segs[1]['id']} and {segs[3]['id']} are not adjacent"
                                                       " (1 line between them); only neighbouring lines can be joined")
    weaver("line", "join", segs[1]["id"], segs[2]["id"])
    assert len(svc.segments(mid)) == 5
    assert "undid join" in weaver("line", "undo", mid).stderr
    assert "undid text" in weaver("line", "undo", mid).stderr
    assert weaver("line", "undo", mid, check=False).returncode == 1
    assert [(s["id"], s["text"]) for s in svc.segments(mid)] == [(s["id"], s["text"]) for s in segs]


def test_migration_adds_user_text_join_and_encoding_columns(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    sqlite3.connect(home / "library.db").close()
    import sqlite_utils

    db = sqlite_utils.Database(home / "library.db")
    version = MIGRATIONS.index(next(m for m in MIGRATIONS if m.__name__ == "_migration_line_text_and_encodings"))
    for step in MIGRATIONS[:version]:
        step(db)
    db.execute(f"PRAGMA user_version={version}")
    db.execute("INSERT INTO media (id, kind, title, created_at) VALUES (1, 'file', 't', 0)")
    db.execute("INSERT INTO segments (id, media_id, idx, start, end, text) VALUES (1, 1, 0, 0, 1, 'a')")
    db.conn.commit()
    db.conn.close()
    svc = Service(home=home)
    assert svc.lib.schema_version >= version + 1
    row = svc.lib.db.execute("SELECT user_text, user_join FROM segments WHERE id = 1").fetchone()
    assert tuple(row) == (0, 0)
    assert "encoding_info" in {c[1] for c in svc.lib.db.execute("PRAGMA table_info(subtitle_tracks)").fetchall()}
