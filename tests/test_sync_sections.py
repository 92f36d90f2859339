"""Piecewise subtitle sync on generated releases: shift, fps drift, a cut scene, an ad break, all combined, and
another film's subtitles; measured as the share of cue starts within 100 ms of the true speech start."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.text.sync import SyncResult, apply_sync, estimate_sync
from pipeline.text.sync_sections import segment
from pipeline.types import Line, Word
from tests.sync_variants import VARIANTS, make

EVIDENCE = ["speech", "asr+speech", "asr"]  # VAD regions; ASR words + regions; ASR words only


def run(name: str, evidence: str, seed: int = 1):
    v = make(name, seed)
    res = estimate_sync(v.lines, speech=None if evidence == "asr" else v.regions,
                        asr_words=None if evidence == "speech" else v.words, duration=v.duration)
    return v, res


def within(v, res: SyncResult, tol: float = 0.1) -> tuple[float, float]:
    """(share of cues with a true start that land within ``tol``, median error) after applying ``res``."""
    ok = ~np.isnan(v.truth)
    starts = np.array([ln.start for ln in apply_sync(v.lines, res)])
    err = np.abs(starts[ok] - v.truth[ok])
    return float(np.mean(err < tol)), float(np.median(err))


@pytest.mark.parametrize("evidence", EVIDENCE)
@pytest.mark.parametrize("name", [n for n in VARIANTS if n != "other-film"])
def test_variant_synced(name, evidence):
    v, res = run(name, evidence)
    share, med = within(v, res)
    print(f"{name:9s} {evidence:10s}: {share:.1%} within 100 ms, median {med * 1000:.0f} ms | {res.summary()} | {res.describe()}")
    assert res.reliable
    assert share >= 0.95
    assert len(res.sections or [None]) == v.sections
    if v.sections > 1:
        assert f"{v.sections} sections" in res.summary()
    if name in ("fps", "combined"):
        assert res.framerate_label() == "25→23.976 fps" and "25→23.976 fps" in res.summary()


@pytest.mark.parametrize("seed", [2, 3, 5, 6])
def test_other_seeds_and_noisy_vad(seed):
    """No false sections when the VAD misses 15% of the lines and hears 30% extra sounds; cuts still found."""
    from tests import sync_variants
    from tests.test_sync import dialogue, speech_regions

    for name in ("shift", "cut", "combined"):
        v = make(name, seed)
        noisy = speech_regions(dialogue(seed, sync_variants.DURATION), seed + 10, v.duration, jitter=0.06, drop=0.15, extra=0.3)
        res = estimate_sync(v.lines, speech=noisy, duration=v.duration)
        share, med = within(v, res)
        print(f"seed {seed} {name}: {share:.1%} within 100 ms, median {med * 1000:.0f} ms, {res.summary()}")
        assert res.reliable and share >= 0.95 and len(res.sections or [None]) == v.sections


@pytest.mark.parametrize("evidence", ["speech", "asr+speech"])
def test_other_film_is_not_applied(evidence):
    v, res = run("other-film", evidence)
    print(f"other film, {evidence}: {res.describe()}")
    assert not res.reliable and len(res.sections) <= 1
    assert "not applied" in res.summary()


def test_sections_apply_per_line_and_describe():
    res = SyncResult(scale=1.0, offset=2.0, score=0.8, method="speech", n_anchors=50,
                     sections=[(0.0, 2.0), (300.0, -18.0)])
    ln = Line(310.0, 312.0, "Later.", words=[Word(310.0, 310.5, "Later.")])
    before, after = apply_sync([Line(299.0, 301.5, "Across the cut."), ln], res)
    assert before.start == pytest.approx(301.0) and before.end == pytest.approx(303.5)  # a line moves as one
    assert after.start == pytest.approx(292.0) and after.words[0].end == pytest.approx(292.5)
    assert res.offset_at(-5.0) == 2.0 and res.apply(300.0) == pytest.approx(282.0)
    assert res.summary() == "shifted +2.0 s, 2 sections"
    assert "2 sections (from 5:00 −18.00 s)" in res.describe()
    assert SyncResult(25 / (24000 / 1001), -2.3, 0.8, "speech", 9, [(0.0, -2.3), (600.0, 20.0)]).summary() == \
        "shifted −2.3 s, 25→23.976 fps, 2 sections"
    assert SyncResult(1.0, 0.0, 0.8, "asr").summary() == "in sync"
    assert SyncResult().summary() == "not checked"


def test_segment_dp():
    """Segmented fit over rows: a jump of column is taken only when it pays more than the penalty."""
    v = np.zeros((30, 2))
    v[:, 0] = 1.0
    v[12:, 0], v[12:, 1] = -1.0, 1.0
    assert segment(v, 3.0, 5) == [(0, 0), (12, 1)]
    v2 = np.ones((30, 2)) * [1.0, 0.0]
    v2[10:13] = [0.0, 1.0]  # three rows prefer another column: shorter than the minimum section
    assert segment(v2, 3.0, 5) == [(0, 0)]
    assert segment(v[:6], 3.0, 5) == [(0, 0)]


# ------------------------------------------------------------------------------------------------ fixture movie


@pytest.mark.parametrize("at,jump", [(None, 6.0), (None, 20.0), (9, -2.0)])
def test_fixture_movie_cut(at, jump):
    """The generated movie's shifted + drifting subtitles with the cues from ``at`` on (default: the later half)
    moved by ``jump`` seconds (a scene cut from or added to the subtitles' edit), against the VAD of the movie's
    centre channel."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    import json
    from pathlib import Path

    from pipeline.media import load_audio
    from tests.test_sync import _movie, _read_srt, _speech

    fx = _movie()
    audio = np.asarray(load_audio(fx.movie, 16000, audio_track=0, channels="centre"), dtype=np.float32).reshape(-1)
    regions = _speech(audio, 16000)
    lines = [ln for ln in _read_srt(fx.shifted_srt) if ln.text.strip()]
    truth = np.array([t["start"] for t in json.loads(Path(fx.truth_json).read_text())])
    half = at or len(lines) // 2
    gap = lines[half].start - lines[half - 1].end
    cut = [ln if i < half else Line(ln.start + jump, ln.end + jump, ln.text, index=ln.index) for i, ln in enumerate(lines)]
    assert gap + jump > 0  # the cues stay in order
    res = estimate_sync(cut, speech=regions, duration=fx.duration)
    err = np.abs(np.array([ln.start for ln in apply_sync(cut, res)]) - truth)
    print(f"cut {jump:+.0f} s after cue {half}: {res.describe()} | within 100 ms {np.mean(err < 0.1):.0%}, "
          f"median {np.median(err) * 1000:.0f} ms")
    assert res.reliable and len(res.sections) == 2 and res.framerate_label() == "23.976→25 fps"
    assert np.mean(err < 0.1) >= 0.95


def _segment_reference(values: np.ndarray, penalty: float, min_len: int) -> float:
    """Best total by the O(n² k) segmented least squares recursion."""
    n, _ = values.shape
    cum = np.vstack([np.zeros((1, values.shape[1])), np.cumsum(values, axis=0)])
    best = np.full(n + 1, -np.inf)
    best[0] = 0.0
    for j in range(min_len, n + 1):
        for i in range(0, j - min_len + 1):
            if np.isfinite(best[i]):
                best[j] = max(best[j], best[i] + float((cum[j] - cum[i]).max()) - (penalty if i else 0.0))
    return float(best[n])


def test_segment_matches_reference():
    rng = np.random.default_rng(0)
    for trial in range(40):
        n, k = int(rng.integers(10, 40)), int(rng.integers(2, 5))
        v = rng.normal(0, 1, (n, k))
        v[int(rng.integers(0, n)):, int(rng.integers(0, k))] += 1.5
        runs = segment(v, 2.0, 5)
        bounds = [r[0] for r in runs] + [n]
        assert runs[0][0] == 0 and all(b - a >= 5 for a, b in zip(bounds, bounds[1:])), runs
        total = sum(v[a:b, c].sum() for (a, c), b in zip(runs, bounds[1:])) - 2.0 * (len(runs) - 1)
        assert total == pytest.approx(_segment_reference(v, 2.0, 5)), (trial, runs)


def test_a_later_section_alone_is_not_identity():
    """In sync up to an ad break and 90 s late after it: still a correction to apply."""
    res = SyncResult(1.0, 0.01, 0.7, "asr", 60, [(0.0, 0.01), (450.0, 90.0)])
    assert not res.is_identity() and SyncResult(1.0, 0.01, 0.7, "asr", 60).is_identity()
