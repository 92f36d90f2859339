"""Voices known across recordings: automatic voiceprints from a screenplay-attributed movie, named ones from
labelling (and undo removing them), list/rename/merge/rm through the service, the CLI and the panel's HTTP API,
and the migration of voiceprints stored before sources were recorded. Real SQLite, the three-voice fixture movie."""

from __future__ import annotations

import json
import sqlite3
import subprocess

import httpx
import numpy as np
import pytest

from pipeline.errors import BadInputError, NotFoundError
from pipeline.library import voiceprints as vplib
from pipeline.service import Service
from pipeline.library import MIGRATIONS
from tests.test_ingest_cli import last_line, weaver
from pipeline.workflows.voiceprints import enrol_auto

pytest.importorskip("resemblyzer")


@pytest.fixture(scope="module")
def imported(movie, tmp_path_factory):
    """A library holding the fixture movie imported with its screenplay (analysis ran)."""
    home = tmp_path_factory.mktemp("vphome")
    svc = Service(home=home)
    mid = svc.ingest(str(movie.movie), script=str(movie.screenplay_txt)).result["media_id"]
    return home, mid


@pytest.mark.slow
def test_screenplay_lines_enrol_each_character_automatically_and_name_a_new_recording(imported, movie, tmp_path):
    home, mid = imported
    svc = Service(home=home)
    prints = svc.voiceprints()
    auto = [p for p in prints if p["source"] == "auto"]
    assert sorted(p["name"] for p in auto) == sorted(movie.characters)
    for p in auto:
        assert [r["media_id"] for r in p["recordings"]] == [mid] and p["recordings"][0]["seconds"] >= 3.0
    assert set(vplib.known(svc.lib.db)) == set(movie.characters)
    assert vplib.known(svc.lib.db, media_id=mid) == {}, "an item is not named from its own automatic prints"
    # an audio-only cut of the same voices, no screenplay: its clusters are named by the automatic prints
    other = tmp_path / "b.mka"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-ss", "20", "-i", str(movie.movie), "-map", "0:a:1",
                    "-c:a", "flac", str(other)], check=True)
    mid2 = svc.ingest(str(other)).result["media_id"]
    named = [s for s in svc.speakers(mid2) if s["name"]]
    assert len(named) >= 2 and {s["name"] for s in named} <= set(movie.characters)
    for s in named:  # the name is right: the cluster's first line is that character's
        first = s["segments"][0]
        truth = max(movie.lines, key=lambda t: min(first[1] + 20, t.end) - max(first[0] + 20, t.start))
        assert s["name"] == truth.character, (s, truth)
    assert len([p for p in svc.voiceprints() if p["source"] == "auto"]) == 3, "no automatic prints from item 2"
    # enrolling item 1 again (as its next analysis does) replaces its automatic prints rather than piling them up
    from pipeline.workflows.analysis import analysis_span

    ids = enrol_auto(svc.lib, mid, lambda s, e: analysis_span(svc.lib, mid, s, e))
    assert sorted(p["id"] for p in svc.voiceprints() if p["source"] == "auto") == sorted(ids)


@pytest.mark.slow
def test_naming_enrols_and_undo_removes_that_voiceprint(imported, tmp_path):
    home, mid = imported
    svc = Service(home=home)
    before = {p["id"] for p in svc.voiceprints()}
    sp = svc.speakers(mid)[0]
    svc.label_speaker(mid, sp["speaker"], "NARRATOR")
    new = [p for p in svc.voiceprints() if p["id"] not in before]
    assert [(p["name"], p["source"]) for p in new] == [("NARRATOR", "named")]
    assert new[0]["recordings"][0]["media_id"] == mid and new[0]["recordings"][0]["speaker"] == sp["speaker"]
    assert svc.undo(mid)["op"] == "label"
    assert {p["id"] for p in svc.voiceprints()} == before, "undo of the naming removes the voiceprint it enrolled"
    left = svc.lib.db.execute("SELECT count(*) FROM voiceprint_sources WHERE voiceprint_id = ?", [new[0]["id"]]).fetchone()
    assert left[0] == 0


def _lib_with_prints(tmp_path):
    svc = Service(home=tmp_path / "home")
    rng = np.random.default_rng(0)
    a, b = (v / np.linalg.norm(v) for v in rng.random((2, 256)).astype(np.float32))
    with svc.lib.atomic() as db:
        db.execute("INSERT INTO media (id, kind, title, created_at) VALUES (7, 'file', 'Film', 0)")
        ia = vplib.add(db, "ALICE", a, "auto", media_id=7, seconds=30.0)
        ib = vplib.add(db, "Alice", b, "named", media_id=7, speaker="SPEAKER_01", seconds=10.0)
    return svc, ia, ib, a, b


def test_rename_merge_and_delete_in_the_library(tmp_path):
    svc, ia, ib, a, b = _lib_with_prints(tmp_path)
    assert svc.rename_voiceprint(ib, " Alice Smith ")["name"] == "Alice Smith"
    with pytest.raises(BadInputError):
        svc.rename_voiceprint(ib, "  ")
    with pytest.raises(NotFoundError):
        svc.rename_voiceprint(999, "x")
    with pytest.raises(BadInputError):
        svc.merge_voiceprints(ia, ia)
    merged = svc.merge_voiceprints(ia, ib)
    assert merged == {**merged, "id": ib, "name": "Alice Smith", "source": "named"}
    rows = svc.voiceprints()
    assert [r["id"] for r in rows] == [ib]
    assert sorted(r["seconds"] for r in rows[0]["recordings"]) == [10.0, 30.0]
    emb = np.frombuffer(svc.lib.db.execute("SELECT embedding FROM voiceprints WHERE id = ?", [ib]).fetchone()[0],
                        dtype=np.float32)
    want = 30 * a + 10 * b
    assert np.allclose(emb, want / np.linalg.norm(want), atol=1e-5), "seconds-weighted mean"
    assert svc.delete_voiceprint(ib)["name"] == "Alice Smith"
    assert svc.voiceprints() == []
    assert svc.lib.db.execute("SELECT count(*) FROM voiceprint_sources").fetchone()[0] == 0
    with pytest.raises(NotFoundError):
        svc.delete_voiceprint(ib)


def test_known_leaves_out_an_items_own_automatic_prints(tmp_path):
    svc, ia, ib, a, b = _lib_with_prints(tmp_path)
    assert set(vplib.known(svc.lib.db)) == {"ALICE", "Alice"}
    assert set(vplib.known(svc.lib.db, media_id=7)) == {"Alice"}  # the named one stays
    svc.rename_voiceprint(ib, "ALICE")
    k = vplib.known(svc.lib.db)["ALICE"]  # two prints of one name: their mean
    assert np.allclose(k, (a + b) / np.linalg.norm(a + b), atol=1e-5)


def test_cli_list_rename_merge_rm(tmp_path):
    svc, ia, ib, a, b = _lib_with_prints(tmp_path)
    home = tmp_path / "home"
    rows = json.loads(weaver(home, "voiceprint", "list", "--json").stdout)
    assert [(r["name"], r["source"]) for r in rows] == [("ALICE", "auto"), ("Alice", "named")]
    text = weaver(home, "voiceprint", "list").stdout
    assert "item 7 Film" in text and "SPEAKER_01" in text and "(auto)" in text
    assert "now BOB" in last_line(weaver(home, "voiceprint", "rename", str(ia), "BOB"))
    assert "merged into" in last_line(weaver(home, "voiceprint", "merge", str(ia), str(ib)))
    r = weaver(home, "voiceprint", "rm", "999", check=False)
    assert r.returncode != 0 and "voiceprint 999 not found" in r.stderr and "Traceback" not in r.stderr
    weaver(home, "voiceprint", "rm", str(ib))
    assert json.loads(weaver(home, "voiceprint", "list", "--json").stdout) == []


def test_http_list_rename_merge_delete(tmp_path):
    from web_ui.server import PanelServer

    svc, ia, ib, a, b = _lib_with_prints(tmp_path)
    srv = PanelServer(home=tmp_path / "home").start()
    try:
        h = {"Authorization": f"Bearer {srv.token}"}
        u = f"http://127.0.0.1:{srv.port}/api/voiceprints"
        rows = httpx.get(u, headers=h).json()
        assert [r["recordings"][0]["title"] for r in rows] == ["Film", "Film"]
        assert httpx.get(u).status_code == 401
        assert httpx.patch(f"{u}/{ia}", headers=h, json={"name": "ZED"}).json()["name"] == "ZED"
        assert httpx.patch(f"{u}/{ia}", headers=h, json={}).status_code == 400
        assert httpx.post(f"{u}/{ia}/merge", headers=h, json={"into": 555}).status_code == 404
        assert httpx.post(f"{u}/{ia}/merge", headers=h, json={"into": ib}).json()["id"] == ib
        assert httpx.delete(f"{u}/{ib}", headers=h).status_code == 200
        assert httpx.get(u, headers=h).json() == []
    finally:
        srv.stop()


def test_migration_keeps_old_voiceprints_with_their_item(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    sqlite3.connect(home / "library.db").close()
    import sqlite_utils

    db = sqlite_utils.Database(home / "library.db")
    version = MIGRATIONS.index(next(m for m in MIGRATIONS if m.__name__ == "_migration_voiceprint_sources"))
    for step in MIGRATIONS[:version]:
        step(db)
    db.execute(f"PRAGMA user_version={version}")
    db.execute("INSERT INTO media (id, kind, title, created_at) VALUES (3, 'file', 'Old film', 0)")
    emb = np.ones(256, np.float32).tobytes()
    db.execute("INSERT INTO voiceprints (name, embedding, source, created_at) VALUES ('A', ?, 'label:item 3/SPEAKER_02', 1)", [emb])
    db.execute("INSERT INTO voiceprints (name, embedding, source, created_at) VALUES ('B', ?, '/x/b.wav', 2)", [emb])
    db.execute("INSERT INTO voiceprints (name, embedding, source, created_at) VALUES ('C', ?, 'label:item 9/S', 3)", [emb])
    db.conn.commit()
    db.conn.close()
    svc = Service(home=home)
    assert svc.lib.schema_version == len(MIGRATIONS)
    rows = {r["name"]: r for r in svc.voiceprints()}
    assert rows["A"]["source"] == "named" and rows["A"]["recordings"][0]["media_id"] == 3
    assert rows["A"]["recordings"][0]["speaker"] == "SPEAKER_02" and rows["A"]["recordings"][0]["title"] == "Old film"
    assert rows["B"]["source"] == "file" and rows["B"]["recordings"][0]["path"] == "/x/b.wav"
    assert rows["C"]["recordings"][0]["media_id"] is None  # item 9 was deleted before
