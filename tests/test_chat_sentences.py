"""Incremental sentence splitter: abbreviations, decimals, ellipses, quotes, streaming deltas."""

from __future__ import annotations

import pytest

from pipeline.chat.conversation import speakable
from pipeline.text.sentences import SentenceSplitter, split_sentences

CASES = [
    ("Hello there. How are you?", ["Hello there.", "How are you?"]),
    ("Mr. Smith met Dr. Jones. They talked.", ["Mr. Smith met Dr. Jones.", "They talked."]),
    ("Pi is 3.14 or so. Yes!", ["Pi is 3.14 or so.", "Yes!"]),
    ("Well... maybe not. Fine.", ["Well... maybe not.", "Fine."]),
    ("Wait… What was that?", ["Wait…", "What was that?"]),
    ('He said "Stop." Then he left.', ['He said "Stop."', "Then he left."]),
    ('"Stop!" he said. Fine.', ['"Stop!" he said.', "Fine."]),
    ("Fruit, e.g. apples, i.e. red ones. Also pears.", ["Fruit, e.g. apples, i.e. red ones.", "Also pears."]),
    ("J. R. R. Tolkien wrote it. Good.", ["J. R. R. Tolkien wrote it.", "Good."]),
    ("Room No. 5 is empty. So do I. Go.", ["Room No. 5 is empty.", "So do I.", "Go."]),
    ("Really?! Yes!! Ok.", ["Really?!", "Yes!!", "Ok."]),
    ("Visit example.com today. Now.", ["Visit example.com today.", "Now."]),
    ("First line\nSecond line", ["First line", "Second line"]),
    ("1. Buy milk\n2. Sell cows", ["1. Buy milk", "2. Sell cows"]),
    ("no terminator at all", ["no terminator at all"]),
]


@pytest.mark.parametrize("text,expected", CASES)
def test_split_whole_text(text, expected):
    assert split_sentences(text) == expected


@pytest.mark.parametrize("text,expected", CASES)
def test_split_char_by_char_matches_whole(text, expected):
    s = SentenceSplitter()
    out = []
    for ch in text:
        out += s.feed(ch)
    assert out + s.flush() == expected


def test_sentence_is_released_as_soon_as_the_next_one_starts():
    s = SentenceSplitter()
    assert s.feed("Hello there.") == []  # could still be "Hello there.com" or an abbreviation
    assert s.feed(" ") == []  # next character unknown yet
    assert s.feed("How") == ["Hello there."]
    assert s.pending == "How"
    assert s.feed(" are you? I") == ["How are you?"]
    assert s.flush() == ["I"]
    assert s.flush() == []


def test_abbreviation_at_chunk_boundary_is_not_split():
    s = SentenceSplitter()
    out = s.feed("Ask Mr.") + s.feed(" Smith. He") + s.feed(" knows.")
    assert out == ["Ask Mr. Smith."]
    assert s.flush() == ["He knows."]


def test_run_on_text_is_cut_for_speech():
    s = SentenceSplitter(max_chars=60)
    out = s.feed("and then we walked, and walked, and walked along the endless grey road under the rain ")
    assert out and all(len(x) <= 60 for x in out)
    assert out[0].endswith(",")


def test_speakable_drops_actions_and_markup():
    assert speakable("*smiles* Hello **there**.") == "Hello there."
    assert speakable("*nods*") == ""
    assert speakable("See https://example.com now.") == "See now."
