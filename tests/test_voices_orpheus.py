"""Orpheus token layout: SNAC codes <-> 7-token frames, prompt layout, decode length."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import ModelMissingError
from pipeline.voices.orpheus import (
    OrpheusTokens,
    codes_to_tokens,
    inference_prompt,
    load_tokens_config,
    resolve_snac_dir,
    tokens_to_codes,
    training_sequence,
)


def _codes(n, seed=0):
    r = np.random.default_rng(seed)
    return [r.integers(0, 4096, (1, n)), r.integers(0, 4096, (1, 2 * n)), r.integers(0, 4096, (1, 4 * n))]


def test_real_orpheus_ids():
    c = OrpheusTokens()
    assert (c.start_of_speech, c.end_of_speech, c.start_of_human, c.end_of_human, c.start_of_ai, c.end_of_ai, c.pad) == (
        128257, 128258, 128259, 128260, 128261, 128262, 128263)
    assert c.audio_start == 128266 and c.vocab_size == 128266 + 7 * 4096


def test_frame_interleaving_matches_orpheus_layout_and_round_trips():
    c = OrpheusTokens()
    codes = _codes(5)
    toks = codes_to_tokens(codes, c, dedupe=False)
    assert len(toks) == 35
    i = 2
    f = toks[7 * i : 7 * i + 7]
    assert f[0] == 128266 + codes[0][0, i]
    assert f[1] == 128266 + 4096 + codes[1][0, 2 * i]
    assert f[2] == 128266 + 2 * 4096 + codes[2][0, 4 * i]
    assert f[3] == 128266 + 3 * 4096 + codes[2][0, 4 * i + 1]
    assert f[4] == 128266 + 4 * 4096 + codes[1][0, 2 * i + 1]
    assert f[5] == 128266 + 5 * 4096 + codes[2][0, 4 * i + 2]
    assert f[6] == 128266 + 6 * 4096 + codes[2][0, 4 * i + 3]
    back = tokens_to_codes([c.start_of_speech] + toks + [c.end_of_speech, 99], c)
    for a, b in zip(codes, back):
        assert np.array_equal(a, b)


def test_dedupe_and_invalid_frames():
    c = OrpheusTokens(text_vocab_size=320, bos=0, end_of_text=1)
    codes = _codes(4)
    codes[0][0, 2] = codes[0][0, 1]  # frame 2 repeats frame 1's coarse code
    assert len(codes_to_tokens(codes, c)) == 21
    toks = codes_to_tokens(codes, c, dedupe=False)
    bad = toks[:7] + [toks[8]] + toks[8:14] + toks[14:]  # frame 1 now starts with a codebook-1 token
    got = tokens_to_codes(bad + [5], c)
    assert got[0].shape == (1, 3)  # 4 frames given, the shifted one dropped, trailing partial ignored


def test_prompt_layout():
    class Tok:
        def __call__(self, text, add_special_tokens=True):
            return {"input_ids": [0] + [10 + (ord(ch) % 50) for ch in text]}

    c = OrpheusTokens(text_vocab_size=320, bos=0, end_of_text=1)
    seq = training_sequence(Tok(), "hi", [400, 401], c, speaker="ann")
    assert seq[0] == c.start_of_human and seq[1] == 0
    assert seq[-4:] == [400, 401, c.end_of_speech, c.end_of_ai]
    p = inference_prompt(Tok(), "hi", c, speaker="ann")
    assert p[-3:] == [c.end_of_human, c.start_of_ai, c.start_of_speech]
    assert p == seq[: len(p)]  # generation continues exactly where training audio starts
    assert p[-4] == c.end_of_text


def test_config_file_and_missing_snac(tmp_path, monkeypatch):
    c = OrpheusTokens(text_vocab_size=320, bos=0, end_of_text=1)
    c.save(tmp_path)
    assert load_tokens_config(tmp_path) == c
    assert load_tokens_config(tmp_path / "nothing") == OrpheusTokens()
    monkeypatch.delenv("WEAVER_SNAC_DIR", raising=False)
    with pytest.raises(ModelMissingError, match="hf download hubertsiuzdak/snac_24khz"):
        resolve_snac_dir(tmp_path / "no_snac")


def test_snac_decode_length_is_2048_per_frame(tmp_path):
    import torch

    torch.set_num_threads(2)
    from pipeline.voices.orpheus import decode_audio_tokens, encode_audio_tokens, load_snac
    from tiny_tts import build_snac

    snac = load_snac(build_snac(tmp_path / "snac"))
    c = OrpheusTokens(text_vocab_size=320, bos=0, end_of_text=1)
    audio = np.sin(np.linspace(0, 2000, 24000)).astype(np.float32) * 0.3
    toks = encode_audio_tokens(audio, snac, c, dedupe=False)
    assert len(toks) % 7 == 0 and len(toks) // 7 == int(np.ceil(24000 / 2048))
    y = decode_audio_tokens(toks, snac, c)
    assert y.dtype == np.float32 and len(y) == len(toks) // 7 * 2048
    assert decode_audio_tokens([], snac, c).shape == (0,)
