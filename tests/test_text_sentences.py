"""The one sentence splitter serves both callers: chat replies (streamed) and text-to-speech chunks (packed)."""

from __future__ import annotations

import pytest

from pipeline.errors import BadInputError
from pipeline.text.sentences import cut_long, iter_sentences, pack_sentences, split_sentences
from pipeline.voices import synth

TEXT = ("Yes, I am fine now. Dr. Who is here today. He met Mr. J. R. Smith at 3.14 p.m. sharp! "
        "Was it No. 5? Well... maybe. They left at noon.")


def test_tts_chunks_never_break_inside_an_abbreviation():
    # the old TTS rule cut after every '.', so "Dr." ended one chunk and "Who is here today." began the next
    assert list(pack_sentences("Yes, I am fine now. Dr. Who is here today.", 24)) == [
        "Yes, I am fine now.", "Dr. Who is here today."]


def test_chunks_hold_whole_sentences_of_the_chat_splitter():
    sentences = split_sentences(TEXT)
    assert sentences[1] == "Dr. Who is here today." and sentences[3] == "Was it No. 5?"
    for limit in (45, 60, 80, 240):  # the longest sentence has 42 characters
        chunks = list(synth.split_text(TEXT, limit))
        assert all(len(c) <= limit for c in chunks)
        assert " ".join(chunks) == " ".join(sentences)  # nothing lost, nothing reordered
        # every chunk ends where a chat sentence ends (all sentences here are shorter than the limits)
        ends, pos = set(), 0
        for s in sentences:
            pos += len(s) + 1
            ends.add(pos - 1)
        pos = 0
        for c in chunks:
            pos += len(c) + 1
            assert pos - 1 in ends, (limit, c)


def test_whole_text_is_fed_in_slices_with_the_same_sentences():
    text = " ".join(f"Sentence number {i} ends here." for i in range(400))
    assert list(iter_sentences(text, step=7)) == split_sentences(text) == list(iter_sentences(text))


def test_cut_long_and_limits():
    assert list(cut_long("x" * 130, 50)) == ["x" * 50, "x" * 50, "x" * 30]
    parts = list(cut_long("alpha beta, gamma delta, epsilon zeta eta theta", 20))
    assert all(len(p) <= 20 for p in parts) and " ".join(parts).split() == "alpha beta, gamma delta, epsilon zeta eta theta".split()
    assert parts[0] == "alpha beta,"  # cut after the comma, not mid-clause
    with pytest.raises(BadInputError):
        list(pack_sentences("short.", 19))
