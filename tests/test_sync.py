"""Subtitle timing sync: synthetic dialogue with known offset/drift, and the generated fixture movie."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.text.sync import SyncResult, apply_sync, estimate_sync
from pipeline.types import Line, Region, Word

NTSC = 24000 / 1001
STOP = "i you the a to and it is that what we he she no yes not this on in me my do your be have".split()


# ------------------------------------------------------------------------------------------ synthetic dialogue


def _vocab(rng: np.random.Generator, n: int = 1500) -> list[str]:
    cons, vows = list("bcdfghjklmnprstvwz"), list("aeiou")
    out: set[str] = set()
    while len(out) < n:
        out.add("".join(str(rng.choice(cons)) + str(rng.choice(vows)) for _ in range(int(rng.integers(2, 4)))))
    return sorted(out)


def dialogue(seed: int, duration: float) -> list[tuple[float, float, list[str]]]:
    """Utterances (start, end, words) with dialogue-like durations and gaps: quick exchanges and long pauses."""
    rng = np.random.default_rng(seed)
    vocab = _vocab(rng)
    t, out = 5.0, []
    while True:
        d = float(np.clip(rng.lognormal(0.6, 0.5), 0.5, 6.0))
        if t + d > duration - 2:
            return out
        words = [str(rng.choice(STOP)) if rng.random() < 0.4 else str(rng.choice(vocab)) for _ in range(max(1, int(d * 2.6)))]
        out.append((t, t + d, words))
        t += d + (rng.uniform(0.15, 0.8) if rng.random() < 0.75 else rng.uniform(2.0, 15.0))


def subtitles(utts, seed: int, scale: float, offset: float) -> tuple[list[Line], np.ndarray]:
    """Cues in a wrong clock (truth = scale * t + offset); cue ends linger 0-0.5 s after the speech."""
    rng = np.random.default_rng(seed + 1)
    lines, truth = [], []
    for i, (s, e, w) in enumerate(utts):
        nxt = utts[i + 1][0] if i + 1 < len(utts) else e + 2
        ce = min(e + rng.uniform(0.0, 0.5), nxt - 0.05)
        truth.append(s)
        lines.append(Line((s - offset) / scale, (ce - offset) / scale, " ".join(w).capitalize() + ".", index=i))
    return lines, np.array(truth)


def speech_regions(utts, seed: int, duration: float, *, pad=0.05, jitter=0.04, drop=0.05, extra=0.1) -> list[Region]:
    """What a VAD would say: padded, jittered, some lines missed, some non-dialogue sounds detected, merged."""
    rng = np.random.default_rng(seed + 2)
    regs = [[s - pad + rng.normal(0, jitter), e + pad + rng.normal(0, jitter)] for s, e, _ in utts if rng.random() >= drop]
    for _ in range(int(extra * len(utts))):
        a = rng.uniform(0, duration - 3)
        regs.append([a, a + rng.uniform(0.3, 2.5)])
    merged: list[list[float]] = []
    for a, b in sorted(regs):
        if merged and a <= merged[-1][1] + 0.1:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([max(0.0, a), b])
    return [Region(a, b) for a, b in merged]


def asr_words(utts, seed: int, *, drop=0.1, sub=0.05) -> list[Word]:
    """What an ASR would say, in media time: some words missed, some misheard."""
    rng = np.random.default_rng(seed + 3)
    out = []
    for s, e, ws in utts:
        step = (e - s) / len(ws)
        for k, w in enumerate(ws):
            if rng.random() < drop:
                continue
            w = w[::-1] if rng.random() < sub else w
            t = s + k * step + rng.normal(0, 0.03)
            out.append(Word(t, t + 0.8 * step, w))
    return out


def start_errors(lines: list[Line], res: SyncResult, truth: np.ndarray) -> np.ndarray:
    return np.abs(np.array([ln.start for ln in apply_sync(lines, res)]) - truth)


DURATION = 900.0


@pytest.fixture(scope="module")
def utts():
    return dialogue(1, DURATION)


CASES = [
    ("offset", 1.0, 2.4),
    ("negative offset", 1.0, -7.3),
    ("offset + 25->23.976 drift", 25 / NTSC, -3.1),
    ("offset + 1.001 drift", 1.001, 1.5),
    ("off-grid drift 0.97", 0.97, 4.0),
]


@pytest.mark.parametrize("name,scale,offset", CASES, ids=[c[0] for c in CASES])
def test_speech_regions_recover_offset_and_drift(utts, name, scale, offset):
    regions = speech_regions(utts, 1, DURATION)
    lines, truth = subtitles(utts, 1, scale, offset)
    before = np.abs(np.array([ln.start for ln in lines]) - truth)
    res = estimate_sync(lines, speech=regions, duration=DURATION)
    err = start_errors(lines, res, truth)
    print(f"{name}: {res.describe()} | start error max {err.max() * 1000:.0f} ms (before {before.max():.2f} s)")
    assert res.method == "speech" and res.reliable
    assert abs(res.scale - scale) < 2e-4
    assert err.max() < 0.1


@pytest.mark.parametrize("name,scale,offset", CASES, ids=[c[0] for c in CASES])
def test_asr_words_recover_offset_and_drift(utts, name, scale, offset):
    lines, truth = subtitles(utts, 1, scale, offset)
    res = estimate_sync(lines, asr_words=asr_words(utts, 1), speech=speech_regions(utts, 1, DURATION), duration=DURATION)
    err = start_errors(lines, res, truth)
    print(f"{name}: {res.describe()} | start error max {err.max() * 1000:.0f} ms")
    assert res.method == "asr+speech" and res.reliable and res.n_anchors > 50
    assert err.max() < 0.1


def test_noisy_vad_and_large_offset(utts):
    regions = speech_regions(utts, 2, DURATION, pad=0.03, jitter=0.08, drop=0.3, extra=0.5)
    lines, truth = subtitles(utts, 1, NTSC / 25, 95.0)
    res = estimate_sync(lines, speech=regions, duration=DURATION)
    err = start_errors(lines, res, truth)
    print(res.describe(), f"p95 {np.percentile(err, 95) * 1000:.0f} ms")
    assert res.framerate_label() == "23.976→25 fps"
    assert np.mean(err < 0.1) >= 0.95


def test_unrelated_speech_scores_low(utts):
    lines, _ = subtitles(utts, 1, 1.0, 3.0)
    other = dialogue(7, DURATION)
    wrong = estimate_sync(lines, speech=speech_regions(other, 7, DURATION), asr_words=asr_words(other, 7), duration=DURATION)
    right = estimate_sync(lines, speech=speech_regions(utts, 1, DURATION), duration=DURATION)
    print("wrong:", wrong.describe(), "| right:", right.describe())
    assert wrong.method == "speech"  # the transcript shares no text, so the ASR path declines
    assert not wrong.reliable and right.score > wrong.score + 0.3


def test_in_sync_and_nothing_to_compare(utts):
    lines, truth = subtitles(utts, 1, 1.0, 0.0)
    res = estimate_sync(lines, asr_words=asr_words(utts, 1))
    assert res.method == "asr" and start_errors(lines, res, truth).max() < 0.02
    assert res.is_identity() and res.describe().startswith("already in sync")
    none = estimate_sync(lines)
    assert none.method == "none" and none.score == 0 and "not checked" in none.describe()
    assert estimate_sync(lines[:1], speech=[Region(0, 1)]).method == "none"


def test_apply_and_describe():
    ln = Line(10.0, 12.0, "Hello there.", words=[Word(10.0, 10.5, "Hello"), Word(10.6, 11.2, "there.")], tags=["x"])
    res = SyncResult(scale=25 / NTSC, offset=-2.4, score=0.8, method="speech", n_anchors=40)
    (out,) = apply_sync([ln], res)
    assert out is not ln and ln.start == 10.0  # input untouched
    assert out.start == pytest.approx(10.0 * 25 / NTSC - 2.4) and out.words[1].end == pytest.approx(11.2 * 25 / NTSC - 2.4)
    assert out.tags == ["x"] and out.tags is not ln.tags
    assert res.describe().startswith("shifted −2.40 s, drift ×1.0427 (25→23.976 fps)")
    assert SyncResult(1.0, 1.25, 0.5, "asr", 9).describe().startswith("shifted +1.25 s, no drift")
    assert "low confidence" in SyncResult(1.0, 1.25, 0.05, "speech", 9).describe()
    (early,) = apply_sync([Line(1.0, 2.0, "x")], SyncResult(1.0, -5.0, 1.0, "speech"))
    assert early.start == 0.0 and early.end == 0.0


def test_sdh_only_cues_are_ignored(utts):
    lines, truth = subtitles(utts, 1, 1.0, 2.0)
    # sound-effect cues in long silent stretches must not pull the fit
    noise = [Line(t, t + 3.0, "[door slams]", tags=["door slams"]) for t in np.arange(3.0, DURATION, 37.0)]
    res = estimate_sync(sorted(lines + noise, key=lambda x: x.start), speech=speech_regions(utts, 1, DURATION), duration=DURATION)
    assert res.n_anchors == len(lines)
    assert start_errors(lines, res, truth).max() < 0.1


# ------------------------------------------------------------------------------------------------ fixture movie


def _movie():
    try:
        from tests.fixtures.movie import cached_movie
    except ImportError as exc:  # pragma: no cover - the fixture module is written by another issue
        pytest.skip(f"fixture movie not available: {exc}")
    return cached_movie()


def _read_srt(path: Path) -> list[Line]:
    try:
        from pipeline.text.subtitles import read_subtitle_file

        return list(read_subtitle_file(path).lines)
    except ImportError:
        import pysubs2

        subs = pysubs2.load(str(path))
        return [Line(ev.start / 1000, ev.end / 1000, ev.plaintext, index=i) for i, ev in enumerate(subs) if not ev.is_comment]


def _speech(audio: np.ndarray, rate: int) -> list[Region]:
    try:
        from pipeline.stages import get_backend

        return list(get_backend("vad").speech_regions(audio, rate))
    except Exception as exc:  # the VAD stage is another issue's; fall back to an energy gate
        print(f"VAD backend unavailable ({exc}); using an energy threshold")
        hop = rate // 100
        n = len(audio) // hop
        rms = np.sqrt(np.mean(audio[: n * hop].reshape(n, hop) ** 2, axis=1) + 1e-12)
        on = 20 * np.log10(rms) > 20 * np.log10(rms.max()) - 35
        regs, start = [], None
        for i, v in enumerate(np.append(on, False)):
            if v and start is None:
                start = i
            elif not v and start is not None:
                regs.append(Region(start / 100, i / 100))
                start = None
        merged: list[Region] = []
        for r in regs:
            if merged and r.start - merged[-1].end < 0.25:
                merged[-1].end = r.end
            else:
                merged.append(r)
        return merged


@pytest.mark.parametrize("source", ["dialogue_wav", "movie_centre"])
def test_fixture_movie_shifted_srt(source):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    fx = _movie()
    from pipeline.media import load_audio

    if source == "dialogue_wav":
        audio = load_audio(fx.dialogue_wav, 16000)
    else:
        audio = load_audio(fx.movie, 16000, audio_track=0, channels="centre")
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    regions = _speech(audio, 16000)
    lines = [ln for ln in _read_srt(fx.shifted_srt) if ln.text.strip()]
    truth = json.loads(Path(fx.truth_json).read_text())
    assert len(lines) == len(truth)
    res = estimate_sync(lines, speech=regions, duration=fx.duration)
    starts = np.array([ln.start for ln in apply_sync(lines, res)])
    err = np.abs(starts - np.array([t["start"] for t in truth]))
    print(f"{source}: {len(regions)} regions; {res.describe()}; true drift 1/{fx.shift_drift:.4f}, "
          f"offset {-fx.shift_offset / fx.shift_drift:.3f}; start error median {np.median(err) * 1000:.0f} ms, "
          f"max {err.max() * 1000:.0f} ms, within 100 ms {np.mean(err < 0.1):.0%}")
    assert res.reliable
    assert np.mean(err < 0.1) >= 0.95


def test_fixture_movie_shifted_srt_with_transcript():
    """The ASR stage's words (Whisper tiny.en) fit the line; the VAD's regions fine-tune the offset."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(2)
    fx = _movie()
    from pipeline.media import load_audio

    try:
        from pipeline.stages import get_backend

        asr = get_backend("asr")
    except Exception as exc:  # the ASR stage is another issue's
        pytest.skip(f"no ASR backend: {exc}")
    audio = np.asarray(load_audio(fx.dialogue_wav, 16000), dtype=np.float32)
    words = [w for ln in asr.transcribe(audio, 16000).lines for w in ln.words]
    lines = [ln for ln in _read_srt(fx.shifted_srt) if ln.text.strip()]
    truth = np.array([t["start"] for t in json.loads(Path(fx.truth_json).read_text())])
    for speech in (None, _speech(audio, 16000)):
        res = estimate_sync(lines, asr_words=words, speech=speech, duration=fx.duration)
        err = np.abs(np.array([ln.start for ln in apply_sync(lines, res)]) - truth)
        print(f"{len(words)} ASR words, speech {'yes' if speech else 'no'}: {res.describe()}; "
              f"start error median {np.median(err) * 1000:.0f} ms, max {err.max() * 1000:.0f} ms")
        assert res.method.startswith("asr") and res.reliable
        # over these 73 s 23.976→25 and 24→25 differ by 54 ms at the far end, about what tiny.en's word times are
        # off by: which of the two the anchors fit best changes with the machine (one measured ×0.95978, nearer
        # 24→25); the times the sync gives are what must be right
        assert res.framerate_label() in ("23.976→25 fps", "24→25 fps")
        assert np.mean(err < (0.15 if speech is None else 0.1)) >= 0.95
