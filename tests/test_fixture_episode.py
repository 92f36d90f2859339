"""The generated TV episode (tests.fixtures.episode) says what it claims: a short variant (1.5 minutes) checked."""

from __future__ import annotations

import json
import re

import av
import numpy as np
import pysubs2
import pytest

from pipeline.media import load_audio, read_audio_file
from tests.fixtures import episode as ep
from tests.fixtures.movie import speech_bounds

MINUTES = 1.5


@pytest.fixture(scope="module")
def episode():
    return ep.cached_episode(seed=0, minutes=MINUTES)


def _cues(path) -> list[pysubs2.SSAEvent]:
    return list(pysubs2.load(str(path), encoding="utf-8"))


def _rows(event: pysubs2.SSAEvent) -> list[str]:
    return event.plaintext.split("\n")


def test_mkv_streams_and_length(episode):
    with av.open(str(episode.movie)) as c:
        assert len(c.streams.video) == 1
        assert [a.codec_context.channels for a in c.streams.audio] == [6, 2]
        assert len(c.streams.subtitles) == 1
        assert c.metadata.get("title", c.metadata.get("TITLE")) == ep.TITLE.title()
    assert episode.duration >= MINUTES * 60
    assert episode.truth_json.is_file() and episode.release_srt.is_file()


def test_many_characters_one_dominant_two_rare_a_narrator(episode):
    truth = json.loads(episode.truth_json.read_text(encoding="utf-8"))
    assert [(t["character"], t["start"], t["end"], t["text"], t["overlap"]) for t in truth] == [
        (ln.character, ln.start, ln.end, ln.text, ln.overlap) for ln in episode.lines]
    per = {c: len(episode.lines_of(c)) for c in episode.characters}
    assert len([c for c, n in per.items() if n]) >= 8, per
    assert per[ep.DOMINANT] >= 4
    for rare in ep.RARE:
        assert 3 <= per[rare] <= 5, per
    narr = episode.lines_of(ep.NARRATOR)
    assert narr and all(ln.extension == "V.O." for ln in narr)
    assert len({ln.scene for ln in episode.lines}) == len(episode.scenes) >= 3
    engines = {v.split()[0] for v in episode.voices.values()}
    assert engines == ({"espeak-ng", "piper"} if ep._piper_here() else {"espeak-ng"})
    assert len(set(episode.voices.values())) == len(episode.voices)  # every character sounds different
    assert any(len(ln.text.split()) == 1 for ln in episode.lines)  # "What?", "No."


def test_interruptions_overlap_the_previous_line_and_are_marked(episode):
    lines = episode.lines
    marked = [i for i, ln in enumerate(lines) if ln.overlap]
    assert len(marked) >= 2
    for i, ln in enumerate(lines[1:], 1):
        prev_end = max(x.end for x in lines[:i])
        if ln.overlap:
            assert 0.3 - 1e-3 <= lines[i - 1].end - ln.start <= 1.0 + 1e-3
            assert ln.character != lines[i - 1].character
        else:
            assert ln.start >= prev_end  # nobody else talks over a line that is not marked


def test_truth_edges_are_where_the_speech_is(episode):
    clean, rate = read_audio_file(episode.dialogue_wav)
    assert rate == 16000
    lines = episode.lines
    assert lines[0].start > 0 and max(ln.end for ln in lines) < episode.duration
    checked = 0
    for i, ln in enumerate(lines):
        lo = max([x.end for x in lines[:i]] or [0.0]) + 0.02
        hi = min([x.start for x in lines[i + 1 :]] or [episode.duration]) - 0.02
        if ln.start - lo < 0.1 or hi - ln.end < 0.1:
            continue  # a neighbour too close (or overlapping) to look around the edges
        a, b = int((ln.start - 0.1) * rate), int((ln.end + 0.1) * rate)
        s, e = speech_bounds(clean[a:b], rate)
        assert abs((a + s) / rate - ln.start) < 0.02 and abs((a + e) / rate - ln.end) < 0.02, ln
        checked += 1
    assert checked >= len(lines) // 2


def test_stems_sum_to_the_stereo_mix(episode):
    clean, _ = read_audio_file(episode.dialogue_wav)
    bed, _ = read_audio_file(episode.music_wav)
    stereo = load_audio(episode.movie, 16000, audio_track=1, channels="native").mean(axis=1)
    n = min(len(clean), len(stereo))
    mix, want = stereo[:n], (clean + bed)[:n]
    err = np.sqrt(np.mean((mix - want) ** 2)) / np.sqrt(np.mean(want**2))
    print(f"stereo downmix vs dialogue + music: relative error {err:.3f}")
    assert err < 0.15
    # music beds and ambience are really there, well under the dialogue
    assert episode.music_scenes and 14 <= episode.music_db_under <= 26
    assert np.sqrt(np.mean(bed**2)) > 1e-4
    assert {e["name"] for e in episode.effects} <= set(ep.SOUNDS) and episode.effects


def test_release_subtitles_are_condensed_split_wrapped_and_dash_merged(episode):
    cues = _cues(episode.release_srt)
    counts = episode.release_counts
    assert counts["condensed"] >= 1 and counts["split"] >= 1 and counts["dash_merged"] >= 1
    assert len(cues) == counts["cues"]
    for c in cues:
        rows = _rows(c)
        assert len(rows) <= 2 and all(len(r) <= 42 + 2 for r in rows), rows
    dashed = [c for c in cues if all(r.startswith("- ") for r in _rows(c)) and len(_rows(c)) == 2]
    assert len(dashed) == counts["dash_merged"]
    spoken = {" ".join(ln.text.split()) for ln in episode.lines}
    assert sum(c.plaintext.replace("\n", " ") not in spoken for c in cues) >= counts["condensed"] + counts["split"]
    starts = [c.start for c in cues]
    assert starts == sorted(starts) and all(a.end <= b.start for a, b in zip(cues, cues[1:]))


def test_sdh_has_names_sounds_and_dashes(episode):
    text = episode.sdh_srt.read_text(encoding="utf-8")
    assert re.search(r"^\[[a-z ]+\]$", text, re.M)
    assert re.search(r"^NARRATOR: ", text, re.M)
    assert re.search(r"^- .+\n- ", text, re.M)


def test_shifted_subtitles_drift_and_jump_over_the_cut(episode):
    a, b = episode.cut["start"], episode.cut["end"]
    assert b - a >= 8.0
    kept = [ln for ln in episode.lines if not a <= ln.start < b]
    assert len(kept) < len(episode.lines)
    cues = _cues(episode.shifted_srt)
    assert len(cues) == len(kept)
    for c, ln in zip(cues, kept):
        assert abs(c.start / 1000 - episode.shifted(ln.start)) < 0.0015
        assert abs(c.end / 1000 - episode.shifted(ln.end)) < 0.0015
    before = [c for c, ln in zip(cues, kept) if ln.start < a][-1]
    after = [c for c, ln in zip(cues, kept) if ln.start >= b][0]
    i = kept.index(next(ln for ln in kept if ln.start >= b))
    media_gap, sub_gap = kept[i].start - kept[i - 1].start, (after.start - before.start) / 1000
    assert media_gap - sub_gap > 0.9 * (b - a)  # later cues jump back by the cut


def _screenplay_dialogue(text: str) -> list[dict]:
    """Dialogue blocks of the classic layout: cue at column 22, (parenthetical) at 16, dialogue at 10."""
    out, rows = [], text.split("\n")
    for i, row in enumerate(rows):
        m = re.fullmatch(r" {22}([A-Z][A-Z.' ]*?)(?: \(([A-Z.']+)\))?", row)
        if not m:
            continue
        words = []
        for nxt in rows[i + 1 :]:
            if not nxt.strip():
                break
            if not nxt.startswith(" " * 16 + "("):
                words.append(nxt.strip())
        out.append({"character": m.group(1), "extension": m.group(2), "text": " ".join(words)})
    return out


def test_screenplay_has_extensions_cuts_adlibs_and_rewordings(episode):
    text = episode.screenplay_txt.read_text(encoding="utf-8")
    got = _screenplay_dialogue(text)
    assert got == [{k: d[k] for k in ("character", "extension", "text")} for d in episode.script_dialogue]
    assert {"V.O.", "O.S.", "CONT'D"} <= {d["extension"] for d in got}
    assert len(re.findall(r"^(INT|EXT)\. ", text, re.M)) == len(episode.scenes)
    cut = [d for d in episode.script_dialogue if d["line"] is None]
    adlib = [ln for ln in episode.lines if ln.kind == "ad-lib"]
    reworded = [ln for ln in episode.lines if ln.kind == "reworded"]
    assert cut and adlib and reworded
    spoken = [" ".join(ln.text.split()) for ln in episode.lines]
    assert all(d["text"] not in spoken for d in cut)
    in_script = {i for i, d in enumerate(episode.script_dialogue) if d["line"] is not None}
    assert len(in_script) + len(adlib) == len(episode.lines)
    for ln in reworded:
        assert ln.script_text != ln.text and ln.script_text in [d["text"] for d in episode.script_dialogue]


@pytest.mark.slow  # loads the speaker-embedding model (~10 s)
def test_voices_are_distinct_to_a_speaker_embedding(episode):
    from pipeline.stages.voiceprint import cosine, embed

    clean, rate = read_audio_file(episode.dialogue_wav)
    lines = episode.lines

    def alone(i: int) -> bool:
        ln = lines[i]
        return ln.end - ln.start >= 1.2 and all(min(ln.end, x.end) <= max(ln.start, x.start) for x in lines if x is not ln)

    emb: dict[str, list] = {}
    for i, ln in enumerate(lines):
        if alone(i) and len(emb.setdefault(ln.character, [])) < 2:
            emb[ln.character].append(embed(clean[int(ln.start * rate) : int(ln.end * rate)], rate))
    pairs = [c for c, v in emb.items() if len(v) == 2]
    assert len(pairs) >= 3 and len(emb) >= 6
    for c in pairs:
        within = cosine(*emb[c])
        between = max(cosine(emb[c][0], v[0]) for o, v in emb.items() if o != c)
        print(f"{c}: within {within:.2f}, closest other {between:.2f}")
        assert within > between


@pytest.mark.slow  # builds (once, then cached) the full 8-minute episode that bench/bench_episode.py measures
def test_the_full_episode_keeps_its_proportions():
    full = ep.cached_episode(seed=0, minutes=8.0)
    n = len(full.lines)
    per = {c: len(full.lines_of(c)) for c in full.characters}
    print(per, sum(ln.overlap for ln in full.lines), "interruptions")
    assert n >= 150 and full.duration >= 8 * 60 and len(full.scenes) >= 8
    assert 0.25 <= per[ep.DOMINANT] / n <= 0.4 and max(per, key=per.get) == ep.DOMINANT
    assert all(3 <= per[c] <= 5 for c in ep.RARE)
    assert 0.07 <= sum(ln.overlap for ln in full.lines) / n <= 0.15
    assert any(ln.end - ln.start >= 8.0 for ln in full.lines)  # a few ~10 s speeches
    assert sum(ln.end - ln.start < 0.6 for ln in full.lines) >= 10  # and many "What?"s
    assert len(full.music_scenes) < len(full.scenes) and full.effects


def test_script_is_deterministic_for_a_seed():
    def plan(seed):
        rng = np.random.default_rng(seed)
        cycle = list(rng.permutation(ep.REGULARS))
        return [repr(ep._plan_scene(k, rng, cycle, set())) for k in range(4)]

    assert plan(3) == plan(3) != plan(4)


def test_bad_length_is_refused(tmp_path):
    with pytest.raises(ValueError, match="minutes must be positive"):
        ep.generate_episode(tmp_path, minutes=0)
