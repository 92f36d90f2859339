"""Chat through the service, the panel API (SSE) and the CLI, on a real llama.cpp engine (tiny GGUF built here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

pytest.importorskip("xllamacpp")

from pipeline.config import Settings  # noqa: E402
from pipeline.service import Service  # noqa: E402
from tests.tiny_gguf import build_tiny_llama_gguf  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def library(movie, tmp_path_factory):
    home = tmp_path_factory.mktemp("chat-home")
    gguf = build_tiny_llama_gguf(home / "tiny.gguf")
    Settings(chat_provider="embedded", chat_model_path=str(gguf)).save(home)
    svc = Service(home=home)
    mid = svc.ingest(str(movie.movie), script=str(movie.screenplay_txt)).result["media_id"]
    return home, mid


def test_persona_is_drafted_from_the_characters_own_lines_and_editable(library, movie):
    home, mid = library
    svc = Service(home=home)
    p = svc.persona_for(mid, "ALICE")
    assert p["name"].upper() == "ALICE" and "ALICE" in p["system_prompt"].upper()
    own = [t.text for t in movie.lines_of("ALICE")]
    assert any(line[:20] in p["system_prompt"] for line in own)
    assert not any(t.text[:25] in p["system_prompt"] for t in movie.lines_of("BORIS"))
    assert svc.persona_for(mid, "alice")["id"] == p["id"]  # drafted once, then reused
    edited = svc.update_persona(p["id"], {"temperature": 0.3, "system_prompt": p["system_prompt"] + "\nStay brief."})
    assert edited["temperature"] == 0.3 and svc.persona(p["id"]).system_prompt.endswith("Stay brief.")
    with pytest.raises(Exception):
        svc.update_persona(p["id"], {"temperature": 9})


def test_send_streams_stores_history_and_voices_sentences(library):
    home, mid = library
    svc = Service(home=home)
    pid = svc.persona_for(mid, "BORIS")["id"]
    cid = svc.start_conversation(pid)
    deltas, audio = [], []
    reply = svc.chat_send(cid, "Where is the lantern?", speak=True, on_delta=deltas.append,
                          on_sentence_audio=lambda i, s, a, r: audio.append((i, len(a), r)))
    assert reply.error is None and reply.text and "".join(deltas) == reply.text
    assert audio and all(n > 0 and r > 0 for _, n, r in audio)
    assert reply.t_first_audio is not None and reply.t_first_audio <= reply.t_audio_done
    msgs = svc.conversation(cid)
    assert [m["role"] for m in msgs][-2:] == ["user", "assistant"] and msgs[-1]["content"] == reply.text
    again = svc.chat_send(cid, "And the soup?")
    assert again.error is None and len(svc.conversation(cid)) == len(msgs) + 2
    assert Settings.load(home).last_persona_id == pid  # Quick chat reopens this character


def test_panel_api_streams_the_reply_as_sse(library):
    from web_ui.server import PanelServer

    home, mid = library
    server = PanelServer(home=home).start()
    try:
        auth = {"Authorization": f"Bearer {server.token}"}
        base = f"http://127.0.0.1:{server.port}"
        p = httpx.post(f"{base}/api/chat/personas", json={"media_id": mid, "character": "CLARA"}, headers=auth).json()
        cid = httpx.post(f"{base}/api/chat/personas/{p['id']}/conversations", headers=auth).json()["id"]
        events = []
        with httpx.stream("POST", f"{base}/api/chat/conversations/{cid}/send", json={"text": "Hello Clara", "speak": True},
                          headers=auth, timeout=120) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            for line in r.iter_lines():
                if line.startswith("event: "):
                    events.append(line[7:])
        assert events.count("delta") >= 1 and "audio" in events and events[-1] == "done"
        assert events.index("audio") < len(events) - 1
        card = httpx.get(f"{base}/api/chat/personas/{p['id']}/card", headers=auth).json()
        assert card["spec"] == "chara_card_v2" and card["data"]["name"].upper() == "CLARA"
        bad = httpx.post(f"{base}/api/chat/personas/import", content=b"{not json", headers=auth)
        assert bad.status_code == 400 and "\n" not in bad.json()["error"]
        models = httpx.get(f"{base}/api/chat/models", headers=auth).json()
        assert {m["provider"] for m in models} == {"ollama", "openai", "embedded"}
        assert next(m for m in models if m["provider"] == "embedded")["reachable"]
    finally:
        server.stop()


def test_cli_chat_and_chat_models(library):
    home, mid = library
    env = {**os.environ, "WEAVER_HOME": str(home)}
    r = subprocess.run([sys.executable, "-m", "trayapp", "chat", "ALICE", "--item", str(mid)], input="Hi Alice\nHow are you?\n",
                       capture_output=True, text=True, timeout=300, env=env, cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("Alice: ") >= 2 and r.stdout.strip().splitlines()[-1].isdigit()
    models = json.loads(subprocess.run([sys.executable, "-m", "trayapp", "chat-models", "--json"], capture_output=True,
                                       text=True, env=env, cwd=REPO, timeout=120).stdout)
    ollama = next(m for m in models if m["provider"] == "ollama")
    assert ollama["reachable"] is False and "ollama serve" in ollama["message"]


def test_push_to_talk_upload_is_transcribed(library, tmp_path):
    """The panel's recorder posts any container ffmpeg reads; the ASR stage turns it into the message text."""
    from web_ui.server import PanelServer

    wav = tmp_path / "ptt.wav"
    subprocess.run(["espeak-ng", "-v", "en+m3", "-w", str(wav), "Where is the lantern tonight?"], check=True)
    ogg = tmp_path / "ptt.ogg"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(wav), "-c:a", "libopus", str(ogg)], check=True)
    server = PanelServer(home=library[0]).start()
    try:
        auth = {"Authorization": f"Bearer {server.token}"}
        r = httpx.post(f"http://127.0.0.1:{server.port}/api/chat/listen", content=ogg.read_bytes(), headers=auth, timeout=120)
        assert r.status_code == 200 and "lantern" in r.json()["text"].lower()
        empty = httpx.post(f"http://127.0.0.1:{server.port}/api/chat/listen", content=b"", headers=auth)
        assert empty.status_code == 400
    finally:
        server.stop()
