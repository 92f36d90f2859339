"""The Transcript view in a real browser (headless Chromium, Playwright) against a real PanelServer: edit a line's
text and join two lines with the inline editors, a join of two characters' lines held back until confirmed,
Undo puts both edits back; an unsure subtitle encoding shows its readings and the user's pick re-reads the file.
Helpers and fixtures come from tests/test_panel_browser.py; screenshots go to tests/artifacts/<test>/."""

from __future__ import annotations

import pytest

from pipeline.service import Service
from tests.test_panel_browser import api, browser, open_panel, page, server, shot  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.timeout(300)]


def _open_transcript(page, server, media_id: int) -> None:
    open_panel(page, server.url)
    page.click("#notice-ok")
    page.wait_for_selector(f"#media tbody tr[data-id='{media_id}']", timeout=10000)
    page.locator(f"#media tbody tr[data-id='{media_id}'] button", has_text="Transcript").click()
    page.wait_for_selector("#transcript tbody tr[data-segment]", timeout=10000)


def _texts(server, media_id: int) -> list[tuple[int, str]]:
    return [(s["id"], s["text"]) for s in api(server, "GET", f"/api/media/{media_id}/segments")]


def test_edit_and_join_lines_then_undo_both(server, page, movie, tmp_path, artifacts_dir):
    svc = Service(home=tmp_path / "lib")
    mid = svc.ingest(str(movie.dialogue_wav), subtitles=str(movie.srt), analyze=False).result["media_id"]
    segs = api(server, "GET", f"/api/media/{mid}/segments")
    api(server, "POST", f"/api/segments/{segs[4]['id']}/reassign", json={"character": "Ann"})
    start = _texts(server, mid)
    _open_transcript(page, server, mid)

    # -- edit the first line's text inline: Enter applies, the row shows the new text marked as edited -------------
    row = page.locator(f"#transcript tbody tr[data-segment='{segs[0]['id']}']")
    row.locator("button.edit-text").click()
    editor = row.locator("input.line-text-input")
    assert editor.input_value() == segs[0]["text"]
    editor.fill("Well, I told you we should have left before the rain.")
    with page.expect_response(lambda r: r.url.endswith(f"/api/segments/{segs[0]['id']}/text") and r.request.method == "POST") as edited:
        editor.press("Enter")
    assert edited.value.ok
    page.wait_for_function(f"() => (document.querySelector('tr[data-segment=\"{segs[0]['id']}\"] .line-text') || {{}})"
                           ".textContent === 'Well, I told you we should have left before the rain.'", timeout=10000)
    assert row.locator(".edited").inner_text().strip() == "[edited]"

    # -- join needs confirmation across characters: nothing is sent until "join anyway" is ticked --------------------
    third = page.locator(f"#transcript tbody tr[data-segment='{segs[3]['id']}']")
    third.locator("button.join").click()
    third.locator("button.ok").click()
    assert "join anyway" in third.locator(".inline-error").inner_text()
    third.locator("button.cancel").click()
    assert len(api(server, "GET", f"/api/media/{mid}/segments")) == len(segs)

    # -- join lines 2 and 3 (same character): one row with both texts ------------------------------------------------
    second = page.locator(f"#transcript tbody tr[data-segment='{segs[1]['id']}']")
    second.locator("button.join").click()
    assert segs[2]["text"][:20] in second.inner_text()  # the editor names the line it joins with
    with page.expect_response(lambda r: r.url.endswith(f"/api/segments/{segs[1]['id']}/join") and r.request.method == "POST") as joined:
        second.locator("button.ok").click()
    assert joined.value.ok
    page.wait_for_function(f"() => document.querySelectorAll('#transcript tbody tr[data-segment]').length === {len(segs) - 1}",
                           timeout=10000)
    assert page.locator(f"tr[data-segment='{segs[1]['id']}'] .line-text").inner_text() == f"{segs[1]['text']} {segs[2]['text']}"
    assert page.locator(f"tr[data-segment='{segs[2]['id']}']").count() == 0
    shot(page, artifacts_dir, "01-edited-and-joined")

    # -- Undo twice: the join, then the edit; the reassignment made before stays -------------------------------------
    for op in ("join", "text"):
        with page.expect_response(lambda r: "/undo" in r.url and r.request.method == "POST") as undone:
            page.click("#tr-undo")
        assert undone.value.ok and undone.value.json()["undone"]["op"] == op
    page.wait_for_function(f"() => document.querySelectorAll('#transcript tbody tr[data-segment]').length === {len(segs)}",
                           timeout=10000)
    page.wait_for_function(f"() => (document.querySelector('tr[data-segment=\"{segs[0]['id']}\"] .line-text') || {{}})"
                           f".textContent === {segs[0]['text']!r}", timeout=10000)
    assert _texts(server, mid) == start
    assert api(server, "GET", f"/api/media/{mid}/segments")[4]["character"] == "Ann"
    assert page.locator("#transcript .edited").count() == 0
    assert not page.errors, page.errors  # no script error, no console error, no failed request


def test_unsure_encoding_shows_readings_and_the_pick_rereads_the_file(server, page, movie, tmp_path, artifacts_dir):
    from tests.test_subtitle_encodings import LITHUANIAN, srt

    sub = tmp_path / "lt.srt"
    sub.write_bytes(srt(LITHUANIAN).encode("cp1257"))
    svc = Service(home=tmp_path / "lib")
    mid = svc.ingest(str(movie.dialogue_wav), subtitles=str(sub), analyze=False).result["media_id"]
    _open_transcript(page, server, mid)
    banner = page.locator("#tr-encoding")
    banner.wait_for(state="visible", timeout=10000)
    assert "Subtitle encoding unsure" in banner.inner_text()
    options = banner.locator("select.encoding-pick option").evaluate_all("os => os.map(o => o.value)")
    assert "cp1257" in options
    banner.locator("select.encoding-pick").select_option("cp1257")
    assert "Ąžuolas žaliuoja, ačiū." in banner.locator(".encoding-sample").inner_text()
    shot(page, artifacts_dir, "02-encoding-unsure")
    with page.expect_response(lambda r: "/encoding" in r.url and r.request.method == "POST") as picked:
        banner.locator("button.encoding-use").click()
    assert picked.value.ok
    banner.wait_for(state="hidden", timeout=10000)
    page.wait_for_function("() => [...document.querySelectorAll('#transcript .line-text')].map(e => e.textContent)"
                           f".join('|') === {'|'.join(LITHUANIAN)!r}", timeout=10000)
    assert not page.errors, page.errors


def test_transcript_says_what_the_subtitle_sync_found(server, page, movie, tmp_path, artifacts_dir):
    """The primary track's stored sync (here: the estimate for the shifted subtitles with a 6 s cut after the
    middle) shows as one line above the transcript."""
    import numpy as np

    from pipeline.library.lines import set_track_sync
    from pipeline.media import load_audio
    from pipeline.text.sync import estimate_sync
    from pipeline.types import Line
    from tests.test_sync import _read_srt, _speech

    lines = [ln for ln in _read_srt(movie.shifted_srt) if ln.text.strip()]
    half = len(lines) // 2
    lines = [ln if i < half else Line(ln.start + 6.0, ln.end + 6.0, ln.text) for i, ln in enumerate(lines)]
    audio = np.asarray(load_audio(movie.dialogue_wav, 16000), dtype=np.float32).reshape(-1)
    res = estimate_sync(lines, speech=_speech(audio, 16000), duration=movie.duration)
    assert res.reliable and len(res.sections) == 2
    svc = Service(home=tmp_path / "lib")
    mid = svc.ingest(str(movie.dialogue_wav), subtitles=str(movie.srt), analyze=False).result["media_id"]
    track = svc.show_media(mid)["subtitle_tracks"][0]
    with svc.lib.atomic() as db:
        set_track_sync(db, track["id"], res.record(True))
    _open_transcript(page, server, mid)
    note = page.locator("#tr-sync")
    note.wait_for(state="visible", timeout=10000)
    text = " ".join(note.inner_text().split())
    assert text == f"Subtitle sync: {res.summary()}"
    assert "23.976→25 fps, 2 sections" in text
    shot(page, artifacts_dir, "03-sync-note")
    assert not page.errors, page.errors


def test_subtitles_and_screenplay_are_swapped_in_from_the_transcript_view(server, page, movie, tmp_path, artifacts_dir):
    """Re-import (issue #12) in the panel: add SDH subtitles as the primary track of an item imported with the
    wrong release, and attach its screenplay; each is applied by analysing again, the item and its edits stay."""
    svc = Service(home=tmp_path / "lib")
    mid = svc.ingest(str(movie.dialogue_wav), subtitles=str(movie.shifted_srt), analyze=False).result["media_id"]
    first = svc.segments(mid)[0]
    svc.edit_line_text(first["id"], "You left the back door wide open again.")
    _open_transcript(page, server, mid)
    page.click("#tr-sources summary")
    page.fill("#tr-sources .subs-path", str(movie.sdh_srt))
    page.click("#tr-sources .subs-add")
    note = page.locator("#tr-sources .sources-note")
    note.wait_for(state="visible", timeout=10000)
    page.wait_for_function("() => /analysing again \\(job \\d+\\)/.test(document.querySelector('#tr-sources .sources-note').textContent)",
                           timeout=10000)
    job = int(note.text_content().split("job ")[1].split(")")[0])
    from tests.desktop_env import wait_until

    wait_until(lambda: api(server, "GET", f"/api/jobs/{job}")["state"] in ("done", "failed"), 240, "the analysis job", interval=0.5)
    assert api(server, "GET", f"/api/jobs/{job}")["state"] == "done"
    # the view shows the new lines once the job is done: two tracks, the SDH one primary, the edit kept
    page.wait_for_function("() => document.querySelectorAll('#tr-sources li[data-track]').length === 2", timeout=15000)
    page.wait_for_function("() => /analysed again/.test(document.querySelector('#tr-sources .sources-note').textContent)",
                           timeout=15000)
    assert "movie.sdh.srt" in page.inner_text("#tr-sources li:has(strong)")
    assert "(sdh)" in page.inner_text("#transcript tbody")
    tracks = api(server, "GET", f"/api/media/{mid}/subtitle-tracks")
    assert len(tracks) == 2 and tracks[1]["is_primary"] and tracks[1]["path"].endswith("movie.sdh.srt")
    segs = svc.segments(mid)
    assert "sdh" in {s["attribution_source"] for s in segs}
    assert [s["text"] for s in segs if s["user_text"]] == ["You left the back door wide open again."]

    page.fill("#tr-sources .script-path", str(movie.screenplay_txt))
    page.click("#tr-sources .script-attach")
    page.wait_for_function("() => /screenplay attached: analysing again/.test(document.querySelector('#tr-sources .sources-note').textContent)",
                           timeout=10000)
    assert svc.lib.media(mid)["script_id"]
    page.fill("#tr-sources .subs-path", str(tmp_path / "missing.srt"))
    page.click("#tr-sources .subs-add")
    page.wait_for_function("() => /no subtitle file/.test(document.querySelector('#tr-sources .inline-error').textContent)", timeout=10000)
    shot(page, artifacts_dir, "subtitles-and-screenplay")
    page.errors[:] = [e for e in page.errors if "http 400" not in e and "status of 400" not in e]  # the refused file
    assert not page.errors, page.errors
    assert len(api(server, "GET", f"/api/media/{mid}/subtitle-tracks")) == 2
