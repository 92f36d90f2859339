"""The generated fixture movie is what every later test measures itself on: check that it says what it claims."""

from __future__ import annotations

import json
import re
from pathlib import Path

import av
import numpy as np
import pytest

from pipeline.media import load_audio, read_audio_file
from tests.fixtures.movie import GENERATOR_VERSION, MovieFixture, _cached, generate_long_media, long_media_paths, speech_bounds


def _envelope(x: np.ndarray, hop: int = 160) -> np.ndarray:
    n = len(x) // hop
    return np.sqrt(np.mean(x[: n * hop].reshape(n, hop) ** 2, axis=1))


def _lag(audio: np.ndarray, ref: np.ndarray, at: int, search: int = 400) -> int:
    """Offset (samples) at which ``ref`` best matches ``audio`` around index ``at``."""
    return max(range(-search, search + 1), key=lambda lag: float(np.dot(audio[at + lag : at + lag + len(ref)], ref)))


def test_mkv_has_video_two_audio_tracks_and_english_subtitles(movie):
    with av.open(str(movie.movie)) as c:
        assert len(c.streams.video) == 1 and c.streams.video[0].codec_context.width == 320
        audio = list(c.streams.audio)
        assert [a.codec_context.channels for a in audio] == [6, 2]
        assert [a.codec_context.sample_rate for a in audio] == [48000, 48000]
        assert [ch.name for ch in audio[0].layout.channels] == ["FL", "FR", "FC", "LFE", "SL", "SR"]
        assert len(c.streams.subtitles) == 1
        sub = c.streams.subtitles[0]
        assert sub.codec_context.name in ("subrip", "srt") and sub.metadata.get("language") == "eng"
        # the embedded cues carry the measured timing (within the container's 1 ms resolution)
        cues = [(float(p.pts * p.time_base), float((p.pts + p.duration) * p.time_base)) for p in c.demux(sub) if p.size]
    assert len(cues) == len(movie.lines)
    for (s, e), ln in zip(cues, movie.lines):
        assert abs(s - ln.start) < 0.0015 and abs(e - ln.end) < 0.0015
    assert movie.movie.stat().st_size < 5_000_000
    assert 60 <= movie.duration <= 80


def test_centre_channel_carries_the_dialogue_and_only_it(movie):
    clean, rate = read_audio_file(movie.dialogue_wav)
    assert rate == 16000 and clean.ndim == 1
    surround = load_audio(movie.movie, 16000, audio_track=0, channels="native")
    assert surround.shape[1] == 6
    n = min(len(clean), len(surround))
    ref = _envelope(clean[:n])
    corr = [np.corrcoef(_envelope(surround[:n, ch]), ref)[0, 1] for ch in range(6)]
    print("envelope correlation with dialogue.wav per channel FL FR FC LFE SL SR:", np.round(corr, 3))
    assert corr[2] > 0.95
    assert max(corr[:2] + corr[3:]) < 0.3
    # sample-exact: decoded FC sample i is dialogue sample i (the encoder's priming is compensated)
    centre = load_audio(movie.movie, 16000, audio_track=0, channels="centre")
    for ln in (movie.lines[0], movie.lines[-1]):
        a, b = int(ln.start * 16000), int(ln.end * 16000)
        assert abs(_lag(centre, clean[a:b], a)) <= 1
    # the stereo downmix holds the dialogue too, with the music about 20 dB under it
    stereo = load_audio(movie.movie, 16000, audio_track=1, channels="mono")
    assert np.corrcoef(_envelope(stereo[:n]), ref)[0, 1] > 0.9
    assert 17 <= movie.music_db_under <= 23


def test_truth_is_ordered_inside_the_media_and_measured_from_the_audio(movie):
    truth = json.loads(movie.truth_json.read_text(encoding="utf-8"))
    assert [{k: t[k] for k in ("character", "start", "end", "text", "scene")} for t in truth] == [
        {"character": ln.character, "start": ln.start, "end": ln.end, "text": ln.text, "scene": ln.scene} for ln in movie.lines
    ]
    assert 18 <= len(truth) <= 24
    assert {t["character"] for t in truth} == set(movie.characters) == {"ALICE", "BORIS", "CLARA"}
    assert sorted({t["scene"] for t in truth}) == list(range(1, len(movie.scenes) + 1))
    assert truth[0]["start"] > 0 and truth[-1]["end"] < movie.duration
    for a, b in zip(truth, truth[1:]):
        assert a["start"] < a["end"] <= b["start"] - 0.49  # ordered, with at least ~0.5 s of gap
    assert {ln.extension for ln in movie.lines} >= {"V.O.", "O.S.", "CONT'D"}
    # start/end are where speech really is: silence just outside, speech right inside
    clean, rate = read_audio_file(movie.dialogue_wav)
    for ln in movie.lines:
        a, b = int(round(ln.start * rate)), int(round(ln.end * rate))
        seg = clean[a - int(0.2 * rate) : b + int(0.2 * rate)]
        s, e = speech_bounds(seg, rate)
        assert abs(s - int(0.2 * rate)) <= 0.01 * rate and abs(e - (len(seg) - int(0.2 * rate))) <= 0.01 * rate, ln
        assert np.abs(clean[a - int(0.3 * rate) : a - int(0.005 * rate)]).max() < 1e-3


def _srt_times(path: Path) -> list[tuple[float, float]]:
    import pysubs2

    return [(ev.start / 1000, ev.end / 1000) for ev in pysubs2.load(str(path), encoding="utf-8")]


def test_subtitle_sidecars(movie):
    accurate = _srt_times(movie.srt)
    assert len(accurate) == len(movie.lines)
    assert all(abs(s - ln.start) < 0.0011 and abs(e - ln.end) < 0.0011 for (s, e), ln in zip(accurate, movie.lines))
    shifted = _srt_times(movie.shifted_srt)
    assert len(shifted) == len(movie.lines)
    for (s, e), ln in zip(shifted, movie.lines):
        assert abs(s - (movie.shift_offset + movie.shift_drift * ln.start)) < 0.0015
        assert abs(e - movie.shifted(ln.end)) < 0.0015
    assert movie.shifted(movie.lines[-1].start) - movie.lines[-1].start > 4.0  # several seconds off at the end
    assert movie.shift_offset > 1.0 and movie.shift_drift != 1.0
    sdh = movie.sdh_srt.read_text(encoding="utf-8")
    assert "[door slams]" in sdh and re.search(r"\[[a-z ]*music[a-z ]*\]", sdh)
    assert re.search(r"^- .+\n- .+$", sdh, re.M)  # two speakers in one cue, dialogue dashes
    assert re.search(r"^(ALICE|BORIS|CLARA): ", sdh, re.M) and "<i>" in sdh


def test_screenplay_files(movie):
    txt = movie.screenplay_txt.read_text(encoding="utf-8")
    fountain = movie.fountain.read_text(encoding="utf-8")
    for heading in movie.scenes:
        assert f"\n{heading}\n" in txt and f"\n{heading}\n" in fountain
    for cue in ("CLARA (O.S.)", "ALICE (V.O.)", "CLARA (CONT'D)", "(not looking up)"):
        assert cue in txt and cue in fountain
    assert re.search(r"^ {15,30}BORIS$", txt, re.M)  # character cues indented towards the centre
    flat = " ".join(txt.split())
    for ln in movie.lines:
        assert ln.text in flat


@pytest.mark.slow
def test_voices_are_distinct_to_a_speaker_embedding_model(movie):
    pytest.importorskip("resemblyzer")
    import torch
    from resemblyzer import VoiceEncoder

    torch.set_num_threads(2)
    clean, rate = read_audio_file(movie.dialogue_wav)
    enc = VoiceEncoder("cpu", verbose=False)
    emb = np.array([enc.embed_utterance(clean[int(ln.start * rate) : int(ln.end * rate)]) for ln in movie.lines])
    names = np.array([ln.character for ln in movie.lines])
    centroids = {c: emb[names == c].mean(axis=0) for c in movie.characters}
    # nearest character centroid (leave-one-out for the line's own character) recovers every line's speaker
    for i, c in enumerate(names):
        scores = {}
        for other, cen in centroids.items():
            if other == c:
                cen = (cen * (names == c).sum() - emb[i]) / ((names == c).sum() - 1)
            scores[other] = float(emb[i] @ cen / np.linalg.norm(cen))
        assert max(scores, key=scores.get) == c, (i, scores)


def test_cache_never_reuses_a_killed_generation(tmp_path):
    calls = []

    def build(folder: Path):
        calls.append(folder)
        (folder / "half.bin").write_bytes(b"x")
        if len(calls) == 1:
            raise KeyboardInterrupt  # killed mid-way: nothing may be left behind as "done"

    target = tmp_path / GENERATOR_VERSION / "thing"
    with pytest.raises(KeyboardInterrupt):
        _cached(target, build)
    assert not target.exists()
    assert _cached(target, build) == target and len(calls) == 2
    assert (target / ".done").read_text().strip() == GENERATOR_VERSION
    _cached(target, build)
    assert len(calls) == 2  # reused
    (target / ".done").unlink()  # incomplete (marker missing) -> rebuilt
    _cached(target, build)
    assert len(calls) == 3


def test_manifest_round_trips(movie):
    again = MovieFixture.load(movie.root)
    assert again == movie
    assert all(getattr(movie, k).is_file() for k in ("movie", "srt", "sdh_srt", "shifted_srt", "screenplay_txt",
                                                   "fountain", "truth_json", "dialogue_wav", "music_wav"))


def test_long_media_loops_exactly(movie, tmp_path):
    import time

    t0 = time.perf_counter()
    long = generate_long_media(tmp_path / "long.mkv", 3.0, source=movie)
    took = time.perf_counter() - t0
    srt, truth_path = long_media_paths(long)
    truth = json.loads(truth_path.read_text(encoding="utf-8"))
    print(f"3 min long media in {took:.2f} s, {long.stat().st_size / 1e6:.1f} MB, {len(truth)} lines")
    assert took < 10
    with av.open(str(long)) as c:
        assert abs(float(c.duration / av.time_base) - 180) < 0.1
        assert [a.codec_context.channels for a in c.streams.audio] == [6, 2]
    loops = int(np.ceil(180 / movie.duration))
    assert len(truth) == len(_srt_times(srt)) == sum(ln.end + k * movie.duration <= 180 for k in range(loops) for ln in movie.lines)
    assert all(a["end"] <= b["start"] for a, b in zip(truth, truth[1:])) and truth[-1]["end"] <= 180
    # a line in the last loop sits exactly where truth says, by decoded position and by seeking (packet times)
    clean, rate = read_audio_file(movie.dialogue_wav)
    last = truth[-1]
    src = next(ln for ln in movie.lines if ln.text == last["text"])
    ref = clean[int(src.start * rate) : int(src.end * rate)]
    whole = load_audio(long, rate, audio_track=0, channels="centre")
    assert abs(_lag(whole, ref, int(last["start"] * rate))) <= 2
    window = load_audio(long, rate, audio_track=0, channels="centre", start=last["start"] - 1.0, end=last["end"] + 1.0)
    assert abs(_lag(window, ref, rate)) <= 0.003 * rate


def test_bad_inputs(bad_inputs, movie):
    import charset_normalizer
    import pypdf
    from rapidfuzz import fuzz

    b = bad_inputs
    assert b.empty_mkv.stat().st_size == 0
    full = movie.movie.read_bytes()
    assert b.truncated_mkv.read_bytes() == full[: int(len(full) * 0.3)]
    with pytest.raises(av.error.FFmpegError):
        av.open(str(b.text_as_mp4)).close()
    timing = re.compile(r"^\d\d:\d\d:\d\d,\d\d\d --> \d\d:\d\d:\d\d,\d\d\d$", re.M)
    assert not timing.search(b.malformed_srt.read_text(encoding="utf-8"))
    raw = b.cp1252_srt.read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    text = str(charset_normalizer.from_bytes(raw).best())
    assert "caf\u00e9" in text and "na\u00efve" in text and "\u2019" in text and "\u201c" in text
    other = b.other_movie_srt.read_text(encoding="utf-8")
    assert len(timing.findall(other)) >= 10
    assert max(fuzz.partial_ratio(ln.text, other) for ln in movie.lines) < 70
    assert not re.search(r"^(INT|EXT)\.", b.unknown_layout_txt.read_text(encoding="utf-8"), re.M)
    scanned = pypdf.PdfReader(b.image_only_pdf)
    assert len(scanned.pages) >= 1 and not "".join(p.extract_text() or "" for p in scanned.pages).strip()
    pdf_text = "".join(p.extract_text() for p in pypdf.PdfReader(b.text_pdf).pages)
    assert "INT. KITCHEN - NIGHT" in pdf_text and "CLARA (O.S.)" in pdf_text and "caf\u00e9" in pdf_text
