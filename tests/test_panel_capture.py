"""The capture view in a real browser (headless Chromium, Playwright) against a real PanelServer: no sound server →
one sentence that goes when the user leaves the view; with a real PulseAudio null sink: Listen shows live lines while
a scene plays, a click keeps a line as a clip, Save says what it saved and links to the item."""

from __future__ import annotations

import os

import pytest

from tests.pulse_env import private_pulseaudio, pulseaudio_available
from tests.test_panel_browser import browser, open_panel, page, shot  # noqa: F401 - fixtures

pytestmark = [pytest.mark.timeout(400)]


@pytest.fixture
def server(tmp_path):
    from web_ui.server import PanelServer

    s = PanelServer(home=tmp_path / "lib").start()
    yield s
    s.stop()


def test_no_sound_server_banner_is_one_sentence_and_goes_with_the_view(server, page, artifacts_dir, tmp_path, monkeypatch):
    from pipeline.workflows.recordings import NO_SOUND_SERVER

    monkeypatch.setenv("PULSE_SERVER", f"unix:{tmp_path}/nothing/native")
    import sys

    if "soundcard" in sys.modules:
        from capture.devices import reset_backend

        try:
            reset_backend()
        except Exception:  # noqa: BLE001 - nothing to reconnect to: exactly the state under test
            pass
    open_panel(page, server.url)
    page.click("#tabs button[data-view=capture]")
    page.click("#cap-start")
    page.wait_for_selector("#error:not([hidden])", timeout=20000)
    text = page.inner_text("#error").strip()
    shot(page, artifacts_dir, "no-sound-server")
    assert text == NO_SOUND_SERVER
    assert "Error" not in text and "connection failed" not in text
    page.click("#tabs button[data-view=library]")
    assert page.is_hidden("#error")


@pytest.mark.audio
@pytest.mark.slow
def test_listen_shows_live_lines_keep_and_save_link(server, page, artifacts_dir, tmp_path):
    if not pulseaudio_available() and not os.environ.get("CI"):
        pytest.skip("pulseaudio not installed")
    from pipeline.media import write_audio
    from tests.live_scene import RATE, scene

    audio, truth = scene()
    wav = tmp_path / "scene.wav"
    write_audio(wav, audio, RATE)
    with private_pulseaudio(sinks=("vw_panel",), default="vw_panel") as pa:
        open_panel(page, server.url)
        page.click("#tabs button[data-view=capture]")
        page.fill("#cap-buffer", "2")
        page.click("#cap-start")
        page.wait_for_function("document.querySelector('#cap-state').dataset.state === 'listening'", timeout=20000)
        assert page.is_disabled("#cap-start") and page.is_enabled("#cap-record")
        proc = pa.play(wav, wait=False)
        page.wait_for_function("document.querySelectorAll('#live-lines li:not(.partial)').length >= 1",
                               timeout=int(len(audio) / RATE * 1000))
        assert proc.poll() is None, "live lines came only after playback ended"
        shot(page, artifacts_dir, "live-lines")
        first = page.locator("#live-lines li:not(.partial)").first
        first.click()
        page.wait_for_selector("#live-lines li.kept", timeout=30000)
        assert "Kept a line" in page.inner_text("#cap-saved")
        proc.wait(timeout=120)
        page.fill("#cap-last", "1")
        page.click("#cap-save")
        page.wait_for_function("document.querySelector('#cap-saved').innerText.includes('Saved')", timeout=60000)
        saved = page.inner_text("#cap-saved")
        assert "live line" in saved and "analysis queued" in saved, saved
        shot(page, artifacts_dir, "saved")
        page.click("#cap-saved a.saved-link")
        page.wait_for_selector("#view-transcript.active", timeout=10000)
        page.wait_for_function("document.querySelectorAll('#transcript tbody tr').length >= 1", timeout=30000)
        page.click("#tabs button[data-view=capture]")
        page.click("#cap-stop")
        page.wait_for_function("document.querySelector('#cap-state').dataset.state === 'off'", timeout=60000)
