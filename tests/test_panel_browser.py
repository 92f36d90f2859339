"""The panel page in a real browser (headless Chromium driven by Playwright) against a real PanelServer:
first-run notice, import of the fixture movie through the form, the SSE-driven jobs table, characters with
waveform/frame/trim/play, speaker naming in the transcript, persistence across reloads. Screenshots of every step
go to tests/artifacts/<test>/; a few are copied to docs/screenshots/ for the README."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import pytest

from tests.desktop_env import REPO, need_modules, skip_or_fail

CHROMIUM = os.environ.get("WEAVER_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
        "--disable-component-update", "--autoplay-policy=no-user-gesture-required", "--mute-audio"]
DOC_SHOTS = REPO / "docs" / "screenshots"

pytestmark = [pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        skip_or_fail(f"Chromium not found at {CHROMIUM} (Debian: apt-get install chromium; or set WEAVER_CHROMIUM)")
    need_modules("playwright")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def server(tmp_path):
    from web_ui.server import PanelServer

    s = PanelServer(home=tmp_path / "lib").start()
    yield s
    s.stop()


@pytest.fixture
def page(browser, artifacts_dir):
    ctx = browser.new_context(viewport={"width": 1200, "height": 860})
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    pg.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    pg.on("response", lambda r: errors.append(f"http {r.status} {r.request.method} {r.url.split('?')[0]}")
          if r.status >= 400 else None)
    pg.errors = errors
    yield pg
    (artifacts_dir / "console.txt").write_text("\n".join(errors))
    ctx.close()


def api(server, method: str, path: str, **kw):
    r = httpx.request(method, f"http://127.0.0.1:{server.port}{path}", headers={"Authorization": f"Bearer {server.token}"},
                      timeout=30, **kw)
    r.raise_for_status()
    return r.json()


def open_panel(page, url: str) -> None:
    """Load the page and wait until its modules ran (app.js sets window.weaverReady last)."""
    page.goto(url)
    page.wait_for_function("window.weaverReady === true", timeout=20000)


def shot(page, folder: Path, name: str, *, doc: str | None = None) -> Path:
    """Screenshot into the artifacts folder; `doc`: also keep a small copy as docs/screenshots/<doc>.png
    (written when missing, or refreshed with WEAVER_UPDATE_SCREENSHOTS=1, so test runs leave the docs alone)."""
    path = folder / f"{name}.png"
    page.screenshot(path=str(path))
    target = DOC_SHOTS / f"{doc}.png" if doc else None
    if target and (not target.exists() or os.environ.get("WEAVER_UPDATE_SCREENSHOTS")):
        DOC_SHOTS.mkdir(parents=True, exist_ok=True)
        _small_png(path, target)
    return path


def _small_png(src: Path, dest: Path, limit: int = 200_000) -> None:
    from PIL import Image

    img = Image.open(src).convert("RGB")
    for width in (1200, 1000, 800, 640):
        im = img if img.width <= width else img.resize((width, round(img.height * width / img.width)))
        im.quantize(colors=128).save(dest, optimize=True)
        if dest.stat().st_size < limit:
            return
    shutil.copyfile(src, dest)


def test_first_run_notice(server, page, artifacts_dir):
    """The personal-use notice shows on first load, hides after 'I understand', and stays hidden after reload."""
    open_panel(page, server.url)
    notice = page.locator("#notice")
    notice.wait_for(state="visible", timeout=10000)
    assert "Personal, local use" in notice.inner_text()
    shot(page, artifacts_dir, "01-notice")
    with page.expect_response(lambda r: r.url.endswith("/api/settings") and r.request.method == "PUT") as put:
        page.click("#notice-ok")
    assert put.value.ok
    notice.wait_for(state="hidden", timeout=5000)
    assert api(server, "GET", "/api/settings")["notice_accepted"] is True
    with page.expect_response(lambda r: r.url.endswith("/api/settings") and r.request.method == "GET"):
        page.reload()
    page.wait_for_function("window.weaverReady === true", timeout=20000)
    assert notice.is_hidden()
    assert not page.errors, page.errors  # no script error, no console error, no failed request


def test_import_review_trim_play_and_name(server, page, movie, artifacts_dir):
    """Import through the form → job done via SSE → characters, clips (waveform, frame), trim, play → name a speaker."""
    open_panel(page, server.url)
    page.click("#notice-ok")

    # -- import through the form; the jobs table follows the job over server-sent events -------------------
    page.fill("#import-path", str(movie.movie))
    page.fill("#import-script", str(movie.screenplay_txt))
    page.click("#import-form button[type=submit]")
    page.wait_for_function("document.querySelector('#import-path').value === ''", timeout=10000)  # accepted, form reset
    page.wait_for_selector("#jobs tbody tr[data-state=running], #jobs tbody tr[data-state=done]", timeout=30000)
    shot(page, artifacts_dir, "02-import-running")
    page.wait_for_function(
        "document.querySelector('#jobs tbody tr[data-state=done], #jobs tbody tr[data-state=failed]')", timeout=240000)
    row = page.locator("#jobs tbody tr").first
    assert row.get_attribute("data-state") == "done", row.inner_text()
    assert row.inner_text().count("100%") == 1
    page.wait_for_selector("#media tbody tr[data-id]", timeout=10000)  # the 'done' event refreshed the items
    (item,) = api(server, "GET", "/api/media")
    media_id = item["id"]
    assert page.locator("#media tbody tr").first.get_attribute("data-id") == str(media_id)
    shot(page, artifacts_dir, "03-library", doc="library")

    # -- characters: list, pick one, clips with waveform + frame ---------------------------------------------
    page.locator(f"#media tbody tr[data-id='{media_id}'] button", has_text="Characters").click()
    page.wait_for_selector("#character-list li[data-character]", timeout=10000)
    names = page.locator("#character-list li[data-character]").evaluate_all("els => els.map(e => e.dataset.character)")
    assert sorted(names) == sorted(movie.characters)
    who = "BORIS"
    page.click(f"#character-list li[data-character='{who}']")
    segs = api(server, "GET", f"/api/media/{media_id}/segments", params={"character": who})
    assert len(segs) >= 3
    page.wait_for_function(f"document.querySelectorAll('#clips .clip').length === {len(segs)}", timeout=10000)
    assert page.inner_text("#clips-title") == f"{who}: {len(segs)} clips"
    first = page.locator("#clips .clip").first
    clip_id = int(first.get_attribute("data-clip"))
    assert clip_id == segs[0]["clip_id"]
    first.locator(".wave canvas").wait_for(timeout=10000)
    first.locator(".edge[data-edge=end]").wait_for(timeout=10000)
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=first.locator("img").element_handle(),
                           timeout=10000)
    assert first.locator("img").evaluate("img => img.naturalWidth") >= 160  # a real JPEG frame of the movie
    painted = first.locator(".wave canvas").evaluate(
        "c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; }")
    assert painted > 500  # the waveform was drawn (peaks of the real audio)
    shot(page, artifacts_dir, "04-characters", doc="characters")

    # -- drag the end edge to the left (snap off): the PATCH persists the new end -------------------------------
    before = api(server, "GET", f"/api/clips/{clip_id}")
    wave = api(server, "GET", f"/api/clips/{clip_id}/waveform", params={"points": 300, "pad": 1})
    first.locator("input.snap").uncheck()
    edge = first.locator(".edge[data-edge=end]").bounding_box()
    box = first.locator(".wave").bounding_box()
    x0, y = edge["x"] + edge["width"] / 2, edge["y"] + edge["height"] / 2
    x1 = x0 - box["width"] * 0.25 * (before["end"] - before["start"]) / (wave["end"] - wave["start"])
    with page.expect_response(lambda r: r.url.endswith(f"/api/clips/{clip_id}") and r.request.method == "PATCH") as patch:
        page.mouse.move(x0, y)
        page.mouse.down()
        page.mouse.move((x0 + x1) / 2, y, steps=4)
        page.mouse.move(x1, y, steps=4)
        page.mouse.up()
    assert patch.value.ok
    after = api(server, "GET", f"/api/clips/{clip_id}")
    expected = wave["start"] + (x1 - box["x"]) / box["width"] * (wave["end"] - wave["start"])
    assert after["start"] == pytest.approx(before["start"], abs=1e-6)
    assert after["end"] == pytest.approx(expected, abs=0.05), (before, after, expected)
    assert after["end"] < before["end"] - 0.1
    page.wait_for_function("([el, t]) => el.textContent.endsWith(t)",
                           arg=[first.locator(".times").element_handle(), _fmt(after["end"])], timeout=5000)
    shot(page, artifacts_dir, "05-trimmed")

    # -- play: the <audio> element gets the clip's URL (with the token) and plays it ---------------------------
    first.locator("button.play").click()
    page.wait_for_function("() => { const p = document.getElementById('player');"
                           " return p.error || (p.readyState >= 2 && p.currentTime > 0) || p.ended; }", timeout=15000)
    player = page.evaluate("() => { const p = document.getElementById('player');"
                           " return {src: p.src, error: p.error && p.error.message, ready: p.readyState,"
                           " duration: p.duration, t: p.currentTime}; }")
    assert player["error"] is None, player
    assert f"/api/clips/{clip_id}/audio" in player["src"] and "token=" in player["src"]
    assert player["ready"] >= 2 and player["t"] > 0
    assert player["duration"] == pytest.approx(after["end"] - after["start"], abs=0.1)  # the trimmed clip

    # -- transcript: name a speaker; reload; the name is on its lines ---------------------------------------------
    page.click("#tabs button[data-view=transcript]")
    page.wait_for_selector("#speakers .speaker[data-speaker]", timeout=10000)
    speakers = api(server, "GET", f"/api/media/{media_id}/speakers")
    target = max(speakers, key=lambda s: len(s["segments"]))
    new_name = "Uncle Boris"
    box_ = page.locator(f"#speakers div.speaker[data-speaker='{target['speaker']}']")
    box_.locator("input").fill(new_name)
    shot(page, artifacts_dir, "06-transcript-before")
    with page.expect_response(lambda r: "/label" in r.url and r.request.method == "POST") as labelled:
        box_.locator("button.name-speaker").click()
    assert labelled.value.ok
    rows_of_speaker = len(target["segments"])
    page.reload()  # the hash keeps the Transcript view
    page.wait_for_function("window.weaverReady === true", timeout=20000)
    page.wait_for_selector("#transcript tbody tr[data-segment]", timeout=10000)
    cells = page.locator("#transcript tbody tr td.character").all_inner_texts()
    named = [c for c in cells if c.startswith(new_name)]
    assert len(named) == rows_of_speaker, cells
    assert page.locator(f"#speakers input[data-speaker='{target['speaker']}']").input_value() == new_name
    shot(page, artifacts_dir, "07-transcript-named", doc="transcript")

    # -- transcript: reassign one line and split another with the inline editors; Undo puts both back ----------------
    before = api(server, "GET", f"/api/media/{media_id}/segments")
    first_row = page.locator("#transcript tbody tr[data-segment]").first
    seg_id = int(first_row.get_attribute("data-segment"))
    first_row.locator("button.reassign").click()
    editor = first_row.locator("input.reassign-name")
    assert editor.get_attribute("list") == "tr-characters"  # suggests the item's characters
    editor.fill("Aunt Mabel")
    with page.expect_response(lambda r: "/reassign" in r.url and r.request.method == "POST") as reassigned:
        editor.press("Enter")
    assert reassigned.value.ok
    page.wait_for_function(f"() => (document.querySelector('tr[data-segment=\"{seg_id}\"] td.character') || {{}})"
                           f".textContent?.startsWith('Aunt Mabel')", timeout=10000)
    longest = max(before, key=lambda x: x["end"] - x["start"])
    row = page.locator(f"#transcript tbody tr[data-segment='{longest['id']}']")
    row.locator("button.split").click()
    at = row.locator("input.split-at")
    at.fill(f"{longest['end'] + 5:.2f}")  # outside the line: refused in place, nothing sent
    row.locator("button.ok").click()
    assert "pick a time inside" in row.locator(".inline-error").inner_text()
    at.fill(f"{(longest['start'] + longest['end']) / 2:.2f}")
    with page.expect_response(lambda r: "/split" in r.url and r.request.method == "POST") as split:
        row.locator("button.ok").click()
    assert split.value.ok
    page.wait_for_function(f"() => document.querySelectorAll('#transcript tbody tr[data-segment]').length === {len(before) + 1}",
                           timeout=10000)
    shot(page, artifacts_dir, "08-transcript-split")
    for _ in range(2):
        with page.expect_response(lambda r: "/undo" in r.url and r.request.method == "POST") as undone:
            page.click("#tr-undo")
        assert undone.value.ok
    after_undo = api(server, "GET", f"/api/media/{media_id}/segments")
    assert [(x["start"], x["end"], x["character"]) for x in after_undo] == [(x["start"], x["end"], x["character"]) for x in before]
    assert not page.errors, page.errors  # no script error, no console error, no failed request


def _fmt(t: float) -> str:
    """The page's time format (mm:ss.ss)."""
    m = int(t // 60)
    return f"{m:02d}:{t - m * 60:05.2f}"
