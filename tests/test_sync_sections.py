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
