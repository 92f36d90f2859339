"""Ollama provider (real `ollama` client) and the conversation loop, against the Ollama protocol fake."""

from __future__ import annotations

import sqlite3
import threading
import time

import numpy as np
import pytest
import sqlite_utils

from ollama_protocol_fake import OllamaProtocolFake
from pipeline.chat.conversation import MAX_USER_CHARS, Conversation
from pipeline.chat.persona import Persona
from pipeline.chat.providers import (
    ChatModelMissingError, OllamaProvider, ProviderStreamError, ProviderUnreachableError, describe_providers,
    get_provider,
)
from pipeline.library.chat import append_message, create_conversation, create_tables, history, save_persona
from pipeline.errors import BadInputError
from pipeline.progress import CancelToken

THREE_SENTENCES = "Hello there, traveller. The night is long and the road is cold. Sit down and rest a while!"


def sine_tts(text: str, rate: int = 16000):
    t = np.arange(int(0.05 * rate)) / rate
    return (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), rate


@pytest.fixture()
def fake():
    with OllamaProtocolFake(models=["tiny:latest"]) as f:
        yield f


@pytest.fixture()
def persona():
    return Persona(name="Rick", system_prompt="You are Rick from Casablanca.", model="tiny", provider="ollama",
                   temperature=0.3, options={"seed": 7, "top_p": 0.9})


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- provider -------------------------------------------------------------------------------------------
def test_list_reachable_and_options_mapping(fake):
    p = get_provider("ollama", host=fake.host)
    ok, msg = p.is_reachable()
    assert ok and "0.0.0-protocol-fake" in msg
    models = p.list_models()
    assert [m.name for m in models] == ["tiny:latest"] and models[0].family == "llama"
    deltas = list(p.stream_chat("tiny", [{"role": "user", "content": "hi", "partial": False}],
                                options={"temperature": 0.2, "num_predict": 30, "seed": 3, "stop": "END"}))
    assert len(deltas) > 3 and "".join(deltas) == fake.reply
    body = fake.chats[-1]
    assert body["stream"] is True and body["messages"] == [{"role": "user", "content": "hi"}]
    assert body["options"] == {"temperature": 0.2, "num_predict": 30, "seed": 3, "stop": ["END"]}


def test_pull_reports_monotonic_progress(fake):
    p = OllamaProvider(fake.host)
    events = []
    p.pull("newmodel", lambda f, m: events.append((f, m)))
    fracs = [f for f, _ in events]
    assert fracs == sorted(fracs) and fracs[-1] == 1.0 and 0 < fracs[len(fracs) // 2] < 1
    assert any("pulling" in m for _, m in events) and events[-1][1].endswith("success")
    assert "newmodel:latest" in [m.name for m in p.list_models()]
    with pytest.raises(ChatModelMissingError, match="not in the Ollama library"):
        p.pull("no-such-model")


def test_missing_model_and_unreachable_messages(fake):
    p = OllamaProvider(fake.host)
    with pytest.raises(ChatModelMissingError) as ei:
        list(p.stream_chat("llama9", [{"role": "user", "content": "hi"}]))
    assert str(ei.value) == "model 'llama9' not found in Ollama; pull it with `ollama pull llama9`"
    assert ei.value.fetch_command == "ollama pull llama9"
    assert p.show("tiny")["model_info"]["llama.context_length"] == 8192
    with pytest.raises(ChatModelMissingError, match="ollama pull llama9"):
        p.show("llama9")
    dead = OllamaProvider(f"http://127.0.0.1:{_free_port()}")
    ok, msg = dead.is_reachable()
    assert not ok and msg == f"Ollama is not reachable at {dead.host}: start it with `ollama serve`"
    with pytest.raises(ProviderUnreachableError, match="ollama serve"):
        list(dead.stream_chat("tiny", [{"role": "user", "content": "hi"}]))
    with pytest.raises(ProviderUnreachableError):
        dead.list_models()


@pytest.mark.parametrize("switch", ["die_after_chunks", "error_after_chunks"])
def test_provider_dies_mid_stream_raises_with_partial(fake, switch):
    setattr(fake, switch, 4)
    got = []
    with pytest.raises(ProviderStreamError) as ei:
        for d in OllamaProvider(fake.host).stream_chat("tiny", [{"role": "user", "content": "hi"}]):
            got.append(d)
    assert ei.value.partial == "".join(got) == "Hello there. I am "


def test_describe_providers_reports_each(fake, tmp_path):
    rows = describe_providers({"ollama_host": fake.host, "openai_base_url": f"http://127.0.0.1:{_free_port()}/v1",
                               "chat_model_path": str(tmp_path / "absent.gguf"), "ollama_models_dir": str(tmp_path)})
    by = {r["provider"]: r for r in rows}
    assert set(by) == {"ollama", "openai", "embedded"}
    assert by["ollama"]["reachable"] and by["ollama"]["models"][0]["name"] == "tiny:latest"
    assert not by["openai"]["reachable"] and "not reachable" in by["openai"]["message"] and by["openai"]["models"] == []
    assert not by["embedded"]["reachable"] and by["embedded"]["models"] == []
    with pytest.raises(BadInputError, match="unknown chat provider"):
        get_provider("gpt-cloud")


# -- conversation ---------------------------------------------------------------------------------------
def test_streaming_and_history_across_turns(fake, persona):
    fake.reply = lambda body: f"You said {body['messages'][-1]['content']}. Noted."
    conv = Conversation(OllamaProvider(fake.host), persona)
    deltas = []
    r1 = conv.send("hello", on_delta=deltas.append)
    assert r1.error is None and not r1.partial and r1.text == "You said hello. Noted." == "".join(deltas)
    assert r1.sentences == ["You said hello.", "Noted."]
    assert r1.t_first_token is not None and r1.t_first_token <= r1.t_done
    r2 = conv.send("and again")
    assert r2.text == "You said and again. Noted."
    sent = fake.chats[-1]["messages"]
    assert sent == [{"role": "system", "content": "You are Rick from Casablanca."},
                    {"role": "user", "content": "hello"}, {"role": "assistant", "content": r1.text},
                    {"role": "user", "content": "and again"}]
    assert fake.chats[-1]["options"]["temperature"] == 0.3 and fake.chats[-1]["options"]["seed"] == 7
    assert [m["role"] for m in conv.history] == ["user", "assistant", "user", "assistant"]


def test_first_sentence_audio_arrives_before_the_stream_finishes(fake, persona):
    fake.reply = THREE_SENTENCES
    fake.chunk_delay = 0.03  # ≈ 0.5 s for the whole reply
    delta_times, audio = [], []
    t0 = time.perf_counter()

    def on_audio(i, sentence, samples, rate):
        audio.append((time.perf_counter() - t0, i, sentence, samples.size, rate))

    conv = Conversation(OllamaProvider(fake.host), persona, tts=sine_tts)
    r = conv.send("hi", on_delta=lambda d: delta_times.append(time.perf_counter() - t0), on_sentence_audio=on_audio)
    assert r.error is None
    assert [a[1] for a in audio] == [0, 1, 2]
    assert [a[2] for a in audio] == r.sentences == ["Hello there, traveller.", "The night is long and the road is cold.",
                                                     "Sit down and rest a while!"]
    assert all(a[3] == 800 and a[4] == 16000 for a in audio)
    assert audio[0][0] < delta_times[-1]  # first audio before the last delta arrived
    assert r.t_first_audio is not None and r.t_first_audio < r.t_done
    assert r.t_audio_done >= r.t_done


def test_player_plays_every_sentence_in_order(fake, persona):
    fake.reply = THREE_SENTENCES
    played = []
    lock = threading.Lock()

    def player(samples, rate):
        with lock:
            played.append((samples.size, rate))
        time.sleep(0.01)

    r = Conversation(OllamaProvider(fake.host), persona, tts=lambda s: sine_tts(s, 8000), player=player).send("hi")
    assert played == [(400, 8000)] * 3 and not r.audio_errors


def test_mid_stream_death_keeps_partial_and_next_turn_works(fake, persona):
    fake.reply = THREE_SENTENCES
    fake.die_after_chunks = 6
    spoken = []
    conv = Conversation(OllamaProvider(fake.host), persona, tts=sine_tts)
    r = conv.send("hi", on_sentence_audio=lambda i, s, a, rate: spoken.append(s))
    assert r.partial and r.error and "mid-reply" in r.error
    assert r.text == "Hello there, traveller. The night is "
    assert conv.history[-1] == {"role": "assistant", "content": r.text, "partial": True}
    assert spoken == ["Hello there, traveller."]  # the cut fragment is not spoken
    fake.die_after_chunks = None
    r2 = conv.send("are you there?")
    assert r2.error is None and not r2.partial
    assert fake.chats[-1]["messages"][2] == {"role": "assistant", "content": "Hello there, traveller. The night is "}


def test_provider_down_before_reply_leaves_history_untouched(persona):
    conv = Conversation(OllamaProvider(f"http://127.0.0.1:{_free_port()}"), persona, history=[])
    r = conv.send("hi")
    assert r.text == "" and r.partial and "not reachable" in r.error and "ollama serve" in r.error
    assert conv.history == []


def test_missing_model_reply_error(fake, persona):
    persona.model = "llama9"
    r = Conversation(OllamaProvider(fake.host), persona).send("hi")
    assert r.error == "model 'llama9' not found in Ollama; pull it with `ollama pull llama9`"


def test_one_megabyte_prompt_is_refused_before_sending(fake, persona):
    conv = Conversation(OllamaProvider(fake.host), persona)
    with pytest.raises(BadInputError) as ei:
        conv.send("x" * (1 << 20))
    assert "1,048,576 characters" in str(ei.value) and f"{MAX_USER_CHARS:,}" in str(ei.value)
    assert fake.chats == [] and conv.history == []
    with pytest.raises(BadInputError, match="empty"):
        conv.send("   ")


def test_history_is_trimmed_to_the_token_budget(fake, persona):
    old = []
    for i in range(40):
        old += [{"role": "user", "content": f"question {i} " + "blah " * 30},
                {"role": "assistant", "content": f"answer {i} " + "meh " * 30}]
    conv = Conversation(OllamaProvider(fake.host), persona, history=old, max_history_tokens=300)
    r = conv.send("latest")
    sent = fake.chats[-1]["messages"]
    assert sent[0]["role"] == "system" and sent[-1] == {"role": "user", "content": "latest"}
    assert 1 <= len(sent) - 2 < 10 and sent[-2]["content"].startswith("answer 39")
    assert r.dropped_messages == 80 - (len(sent) - 2)
    assert sum(len(m["content"]) for m in sent[1:-1]) / 3.5 <= 300
    assert len(conv.history) == 82  # trimming only affects what is sent


def test_context_too_small_for_message_is_refused(fake, persona):
    persona.options = {"num_ctx": 256, "max_tokens": 200}
    with pytest.raises(BadInputError, match="context"):
        Conversation(OllamaProvider(fake.host), persona).send("word " * 200)
    assert fake.chats == []


def test_cancel_mid_reply(fake, persona):
    fake.reply = THREE_SENTENCES
    fake.chunk_delay = 0.01
    cancel = CancelToken()
    spoken = []
    n = [0]

    def on_delta(d):
        n[0] += 1
        if n[0] == 5:
            cancel.cancel()

    conv = Conversation(OllamaProvider(fake.host), persona, tts=sine_tts)
    r = conv.send("hi", on_delta=on_delta, cancel=cancel, on_sentence_audio=lambda i, s, a, rate: spoken.append(s))
    assert r.cancelled and r.partial and r.error is None
    assert r.text == "Hello there, traveller. The night "
    assert conv.history[-1]["partial"] is True and conv.history[-1]["content"] == r.text
    assert len(spoken) <= 1


def test_greeting_and_persistence_through_on_message(fake, persona, tmp_path):
    conn = sqlite3.connect(str(tmp_path / "chat.db"))
    db = sqlite_utils.Database(conn)
    create_tables(db)
    persona.greeting = "Of all the gin joints..."
    pid = save_persona(db, persona)
    cid = create_conversation(db, pid)
    conv = Conversation(OllamaProvider(fake.host), persona, history=history(db, cid),
                        on_message=lambda m: append_message(db, cid, m["role"], m["content"], partial=m["partial"]))
    assert conv.greet() == "Of all the gin joints..."
    assert conv.greet() is None
    fake.die_after_chunks = 2
    conv.send("hi")
    fake.die_after_chunks = None
    conv.send("hello?")
    stored = history(db, cid)
    assert stored == conv.history and len(stored) == 5
    assert [m["partial"] for m in stored] == [False, False, True, False, False]
    # a reloaded conversation sends the stored history, greeting included
    conv2 = Conversation(OllamaProvider(fake.host), persona, history=history(db, cid))
    conv2.send("again")
    assert [m["role"] for m in fake.chats[-1]["messages"]] == ["system", "assistant", "user", "assistant", "user", "assistant", "user"]
    conn.close()


def test_failing_tts_does_not_break_the_chat(fake, persona):
    fake.reply = THREE_SENTENCES

    def bad_tts(text):
        if "night" in text:
            raise RuntimeError("voice model crashed")
        return sine_tts(text)

    got = []
    r = Conversation(OllamaProvider(fake.host), persona, tts=bad_tts).send("hi", on_sentence_audio=lambda i, s, a, rate: got.append(i))
    assert r.error is None and got == [0, 2] and len(r.audio_errors) == 1 and "crashed" in r.audio_errors[0]
