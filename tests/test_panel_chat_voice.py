"""Hold-to-talk in the panel, in real Chromium with a fake microphone playing the default voice's speech:
pressing the button records, releasing it sends the recording to /api/chat/listen (Whisper tiny.en), and the
transcript becomes the user's message. Also: a click (press and release at once) records next to nothing and
sends no message; the hands-free toggle starts listening."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.desktop_env import need_modules, skip_or_fail
from tests.test_panel_browser import ARGS, CHROMIUM

TEXT = "Hello there. What is your name?"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory) -> Path:
    import soundfile as sf

    from pipeline.voices import default_voice

    audio, rate = default_voice.speak(TEXT, rate=48000)
    pad = np.zeros(int(0.3 * rate), dtype=np.float32)
    path = tmp_path_factory.mktemp("mic") / "speech.wav"
    sf.write(str(path), np.concatenate([pad, np.asarray(audio, dtype=np.float32), pad * 10]), rate, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def browser(speech_wav):
    if not Path(CHROMIUM).exists():
        skip_or_fail(f"Chromium not found at {CHROMIUM} (Debian: apt-get install chromium; or set WEAVER_CHROMIUM)")
    need_modules("playwright")
    pytest.importorskip("faster_whisper")
    from playwright.sync_api import sync_playwright

    args = [*ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={speech_wav}"]
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        yield b
        b.close()


@pytest.fixture
def server(tmp_path):
    from web_ui.server import PanelServer

    s = PanelServer(home=tmp_path / "lib").start()
    yield s
    s.stop()


def call(server, method: str, path: str, **kw):
    r = httpx.request(method, f"http://127.0.0.1:{server.port}{path}",
                      headers={"Authorization": f"Bearer {server.token}"}, timeout=30, **kw)
    r.raise_for_status()
    return r.json()


def test_hold_to_talk_records_while_pressed_and_sends_on_release(browser, server, artifacts_dir):
    card = {"spec": "chara_card_v2", "spec_version": "2.0",
            "data": {"name": "Rick", "description": "A sailor.", "first_mes": "Ahoy.", "system_prompt": "You are Rick."}}
    p = call(server, "POST", "/api/chat/personas/import", content=json.dumps(card).encode())
    call(server, "POST", f"/api/chat/personas/{p['id']}/conversations")  # the last persona: the view opens it
    ctx = browser.new_context(viewport={"width": 1100, "height": 800})
    page = ctx.new_page()
    try:
        page.goto(server.url + "#chat")
        page.wait_for_function("window.weaverReady === true", timeout=20000)
        page.wait_for_selector("#chat-ptt", timeout=20000)
        page.wait_for_function("document.querySelectorAll('#chat-log .msg').length >= 1", timeout=20000)
        page.uncheck("#chat-speak")
        btn = page.locator("#chat-ptt")
        box = btn.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)

        page.mouse.down()
        page.wait_for_function("document.querySelector('#chat-ptt').classList.contains('recording')", timeout=10000)
        page.wait_for_timeout(3500)  # holding: the fake microphone says the sentence
        assert "recording" in btn.get_attribute("class")  # still recording while held (not click-to-toggle)
        page.screenshot(path=str(artifacts_dir / "holding.png"))
        page.mouse.up()
        page.wait_for_function("!document.querySelector('#chat-ptt').classList.contains('recording')", timeout=5000)
        page.wait_for_selector("#chat-log .msg.user", timeout=120000)
        said = page.locator("#chat-log .msg.user .text").first.inner_text().lower()
        page.screenshot(path=str(artifacts_dir / "sent.png"))
        assert "hello" in said and "name" in said, said

        page.check("#chat-handsfree")
        page.wait_for_function("/listening|hearing/.test(document.querySelector('#chat-handsfree-state').textContent)",
                               timeout=10000)
    finally:
        ctx.close()
