"""Local agreement (commit what two consecutive passes agree on) and the online speaker tracker: pure logic."""

from __future__ import annotations

import numpy as np

from pipeline.workflows.live import LiveWord, LocalAgreement, SpeakerTracker, lines_in_window, norm_word


def words(text: str, start: float = 0.0, step: float = 0.4) -> list[LiveWord]:
    return [LiveWord(start + i * step, start + i * step + 0.3, t) for i, t in enumerate(text.split())]


def test_first_pass_commits_nothing_then_the_agreed_prefix():
    la = LocalAgreement()
    assert la.insert(words("the old light")) == []
    new = la.insert(words("the old lighthouse keeper"))
    assert [w.text for w in new] == ["the", "old"]
    assert [w.text for w in la.pending] == ["lighthouse", "keeper"]
    new = la.insert(words("the old lighthouse keeper walked"))
    assert [w.text for w in new] == ["lighthouse", "keeper"]
    assert [w.text for w in la.committed] == ["the", "old", "lighthouse", "keeper"]


def test_punctuation_and_case_do_not_block_agreement():
    la = LocalAgreement()
    la.insert(words("Hello there, friend"))
    new = la.insert(words("hello There friend."))
    assert [norm_word(w.text) for w in new] == ["hello", "there", "friend"]


def test_a_disagreement_stops_the_commit_at_that_word():
    la = LocalAgreement()
    la.insert(words("she counted the boots"))
    new = la.insert(words("she counted the boats and"))
    assert [w.text for w in new] == ["she", "counted", "the"]
    assert [w.text for w in la.pending] == ["boats", "and"]


def test_committed_words_are_not_committed_twice_when_times_shift():
    la = LocalAgreement()
    la.insert(words("one two three four"))
    la.insert(words("one two three four five"))
    assert [w.text for w in la.committed] == ["one", "two", "three", "four"]
    # the next pass re-times the committed words a little later: the n-gram overlap removes them
    shifted = words("three four five six", start=0.8 + 0.15)
    new = la.insert(shifted)
    assert [w.text for w in new] == ["five"]
    assert [w.text for w in la.committed] == ["one", "two", "three", "four", "five"]


def test_flush_commits_a_final_pass_without_repeats():
    la = LocalAgreement()
    la.insert(words("nobody in the village"))
    la.insert(words("nobody in the village knew"))
    new = la.flush(words("nobody in the village knew why"))
    assert [w.text for w in new] == ["knew", "why"]
    assert la.pending == []


def test_speaker_tracker_clusters_and_names_known_voices():
    rng = np.random.default_rng(0)
    a, b, c = (v / np.linalg.norm(v) for v in rng.normal(size=(3, 256)))

    def near(v, s=0.02):
        x = v + rng.normal(size=256) * s
        return x / np.linalg.norm(x)

    tr = SpeakerTracker({"Alice": c}, threshold=0.8, cluster_threshold=0.7)
    s1 = tr.assign(near(a))
    s2 = tr.assign(near(b))
    assert s1.label != s2.label and s1.name is None
    assert tr.assign(near(a)).label == s1.label
    alice = tr.assign(near(c))
    assert alice.name == "Alice" and alice.label not in (s1.label, s2.label)
    assert tr.assign(near(c)).label == alice.label
    assert len(tr.speakers) == 3


def test_lines_in_window_rebases_times():
    lines = [{"id": 1, "start": 1.0, "end": 2.0, "words": [[1.0, 2.0, "x"]]},
             {"id": 2, "start": 10.0, "end": 11.0, "words": []}]
    got = lines_in_window(lines, 9.0, 20.0)
    assert [ln["id"] for ln in got] == [2] and got[0]["start"] == 1.0 and got[0]["end"] == 2.0
