"""Re-import (issue #12): swap or add subtitle tracks and a screenplay on an item already in the library, without
deleting it — the item id, the user's edits and the old track stay; bad files change nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.errors import BadInputError
from pipeline.service import Service

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def weaver(home, *args):
    return subprocess.run([sys.executable, "-m", "trayapp", *map(str, args)], capture_output=True, text=True, timeout=600,
                          cwd=REPO, env={**os.environ, "WEAVER_HOME": str(home)})


def _sources(svc, mid):
    return {s["attribution_source"] for s in svc.segments(mid)}


@pytest.fixture(scope="module")
def item(movie, tmp_path_factory):
    """The movie imported with the wrong release's subtitles (shifted + drift) and analysed; one line edited."""
    home = tmp_path_factory.mktemp("reimport")
    svc = Service(home=home)
    mid = svc.ingest(str(movie.movie), subtitles=str(movie.shifted_srt)).result["media_id"]
    seg = svc.segments(mid)[2]
    svc.edit_line_text(seg["id"], "The wind never leaves muddy boots in my hall.")
    return home, svc, mid, seg


def test_swapping_in_sdh_subtitles_keeps_the_item_and_the_users_text(item, movie):
    home, svc, mid, edited = item
    first = svc.subtitle_tracks(mid)
    assert len(first) == 1 and first[0]["is_primary"]
    assert "sdh" not in _sources(svc, mid)
    res = svc.add_subtitles(mid, str(movie.sdh_srt))
    assert res["primary"] and res["lines"] > 10
    out = svc.analyze(mid).result
    tracks = {t["id"]: t for t in svc.subtitle_tracks(mid)}
    assert set(tracks) == {first[0]["id"], res["track"]} and tracks[res["track"]]["is_primary"]
    assert not tracks[first[0]["id"]]["is_primary"] and tracks[first[0]["id"]]["lines"] == first[0]["lines"]
    segs = svc.segments(mid)
    new_lines = {r[0] for r in svc.lib.db.execute("SELECT id FROM lines WHERE track_id = ?", [res["track"]])}
    linked = [r[0] for r in svc.lib.db.execute("SELECT line_id FROM segments WHERE media_id = ? AND origin = 'subtitle'", [mid])]
    assert segs and linked and all(i in new_lines for i in linked)
    assert "sdh" in _sources(svc, mid), _sources(svc, mid)  # the SDH names now attribute lines
    mine = [s for s in segs if s["user_text"]]
    assert [s["text"] for s in mine] == ["The wind never leaves muddy boots in my hall."]
    assert abs(mine[0]["start"] - edited["start"]) < 1.0
    assert set(out["characters"]) >= {"ALICE", "BORIS", "CLARA"}
    assert not any("no counterpart" in w for w in out["warnings"]), out["warnings"]
    assert [m["id"] for m in svc.list_media()] == [mid]


def test_a_screenplay_attached_later_is_used_and_can_be_detached(item, movie):
    home, svc, mid, _ = item
    res = svc.attach_script(mid, str(movie.screenplay_txt))
    assert svc.lib.media(mid)["script_id"] == res["script"]
    svc.analyze(mid)
    assert any(src and src.startswith("script") for src in _sources(svc, mid)), _sources(svc, mid)
    again = svc.attach_script(mid, res["script"])  # by id: the same stored screenplay
    assert again["script"] == res["script"] and len(svc.list_scripts()) == 1
    svc.attach_script(mid, None)
    assert svc.lib.media(mid)["script_id"] is None


def test_bad_files_and_wrong_moves_change_nothing(item, movie, tmp_path):
    home, svc, mid, _ = item
    before = svc.subtitle_tracks(mid)
    n_segments = len(svc.segments(mid))
    garbage = tmp_path / "garbage.srt"
    garbage.write_bytes(os.urandom(3000))
    wrong = tmp_path / "other-film.srt"  # cues past the end of this item
    wrong.write_text("1\n01:10:00,000 --> 01:10:02,000\nA line of a much longer film.\n")
    for path in (garbage, wrong, tmp_path / "missing.srt"):
        with pytest.raises(BadInputError):
            svc.add_subtitles(mid, str(path))
    with pytest.raises(BadInputError, match="already a subtitle track"):
        svc.add_subtitles(mid, str(movie.sdh_srt))
    primary = next(t for t in before if t["is_primary"])
    with pytest.raises(BadInputError, match="primary track"):
        svc.remove_subtitle_track(primary["id"])
    with pytest.raises(BadInputError):
        svc.attach_script(mid, str(garbage))
    assert svc.subtitle_tracks(mid) == before and len(svc.segments(mid)) == n_segments

    # the CLI: one clear line, then list / switch back / remove the other track
    r = weaver(home, "subs", "add", mid, garbage)
    assert r.returncode != 0 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    listing = weaver(home, "subs", "list", mid).stdout.splitlines()
    assert len(listing) == 2 and sum(ln.startswith("*") for ln in listing) == 1
    old = next(t for t in before if not t["is_primary"])
    r = weaver(home, "subs", "primary", old["id"], "--no-analyze")
    assert r.returncode == 0 and "weaver analyze" in r.stderr, r.stderr
    r = weaver(home, "subs", "rm", primary["id"])
    assert r.returncode == 0, r.stderr
    assert [t["id"] for t in svc.subtitle_tracks(mid)] == [old["id"]]


def test_edits_follow_their_line_into_another_release_by_text():
    """match_segments' second pass: a user's segment no new line overlaps (the new subtitles are 2.4 s earlier)
    goes to the new line with the same words; one whose words are nowhere stays unpaired (said as a warning)."""
    from pipeline.workflows.analysis import match_segments, user_owned

    old = [{"start": 3.65, "end": 5.68, "text": "You left the back door wide open again.", "line_id": 1, "user_text": 1},
           {"start": 6.87, "end": 9.10, "text": "I did not. The wind opens it on its own.", "line_id": 2},
           {"start": 60.0, "end": 62.0, "text": "A line only the old release has.", "line_id": 3, "attribution_source": "user"}]
    new = [{"start": 1.20, "end": 3.15, "text": "You left the back door open again.", "line_id": 11},
           {"start": 4.29, "end": 6.43, "text": "I did not. The wind opens it on its own.", "line_id": 12},
           {"start": 7.20, "end": 9.67, "text": "The wind does not leave muddy boots in the hall.", "line_id": 13}]
    pairs = match_segments(old, new)
    assert pairs[0] == 0  # by its words, although the times do not overlap
    assert all(k != 2 for k in pairs.values())
    assert [user_owned(o) for o in old] == [True, False, True]
