"""Voiceprints on real voices: enrol speakers from AMI meeting turns, recognise them in other turns (and another
meeting), reject voices nobody enrolled, and re-measure the threshold calibration behind DEFAULT_THRESHOLD."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from data_paths import ami_dir, pyannote_sample, read_rttm
from pipeline import media
from pipeline.errors import BadInputError
from pipeline.stages import get_backend
from pipeline.stages import voiceprint as vp

pytest.importorskip("resemblyzer")

RATE = 16000


def cut(path, start, end):
    return media.load_audio(path, start=start, end=end)


def test_calibrate_and_match_units():
    rng = np.random.default_rng(0)
    same = rng.normal(0.85, 0.04, 200)
    diff = rng.normal(0.60, 0.06, 800)
    t = vp.calibrate(same, diff)
    assert 0.70 < t < 0.78
    assert vp.equal_error_rate(same, diff) < 0.05
    assert 0.2 < vp.calibrate([0.9, 0.95], [0.1, 0.2]) < 0.9  # separable: anywhere in the gap
    with pytest.raises(BadInputError):
        vp.calibrate([], [0.1])
    a, b = np.array([1.0, 0, 0], np.float32), np.array([0, 1.0, 0], np.float32)
    assert vp.match(a, {"x": a, "y": b}) == ("x", pytest.approx(1.0))
    name, score = vp.match(np.array([0.6, 0.8, 0], np.float32), {"x": a, "y": b}, threshold=0.9)
    assert name is None and score == pytest.approx(0.8)
    assert vp.match(a, {}) == (None, 0.0)


def test_embed_contract():
    wav, _ = pyannote_sample()
    audio = media.load_audio(wav, start=22.0, end=27.0)
    e = vp.embed(audio, RATE)
    assert e.shape == (256,) and e.dtype == np.float32 and abs(np.linalg.norm(e) - 1) < 1e-5
    # the same speech at 44.1 kHz stereo goes through the shared resampler and lands on the same voice
    st = media.resample(np.stack([audio, audio * 0.5], axis=1), RATE, 44100)
    assert vp.cosine(e, vp.embed(st, 44100)) > 0.97
    with pytest.raises(BadInputError):
        vp.embed(audio[: RATE // 4], RATE)
    backend = get_backend("voiceprint")
    assert backend.name == "resemblyzer" and vp.cosine(backend.embed(audio, RATE), e) > 0.999


def test_enrol_and_recognise_ami_speakers():
    d = ami_dir()
    known = {  # enrolment: one clean stretch of each speaker
        "FEE083": vp.embed(cut(d / "trn06.wav", 13.6, 21.7), RATE),
        "MEE068": vp.embed(cut(d / "trn00.wav", 11.04, 15.63), RATE),
        "MEO069": vp.embed(cut(d / "trn03.wav", 2.0, 10.0), RATE),
    }
    same = [  # other turns of the same speakers; FEE083 also in another meeting (trn09)
        ("FEE083", "trn06", 22.4, 30.0),  # measured 0.912
        ("FEE083", "trn06", 0.0, 3.5),  # 0.845
        ("FEE083", "trn09", 6.1, 12.8),  # 0.908
        ("MEO069", "trn03", 15.0, 25.0),  # 0.897
    ]
    for who, uri, s, e in same:
        name, score = vp.match(vp.embed(cut(d / f"{uri}.wav", s, e), RATE), known)
        assert name == who, f"{who} in {uri} {s}-{e}: got {name} ({score:.3f})"
    strangers = [("trn05", 10.0, 19.0), ("trn04", 17.0, 21.0), ("trn07", 15.6, 18.4)]  # 0.749, 0.692, 0.707 best
    for uri, s, e in strangers:
        name, score = vp.match(vp.embed(cut(d / f"{uri}.wav", s, e), RATE), known)
        assert name is None and score < vp.DEFAULT_THRESHOLD, f"stranger in {uri} matched {name} ({score:.3f})"
    wav, _ = pyannote_sample()
    name, _ = vp.match(vp.embed(media.load_audio(wav, start=22.0, end=27.0), RATE), known)
    assert name is None


def clean_pieces(d, min_len=2.5, max_len=6.0):
    """(speaker, uri, turn, embedding) for stretches of reference turns where nobody else talks."""
    out = []
    refs = read_rttm(d / "train.rttm")
    for uri, turns in sorted(refs.items()):
        audio = media.load_audio(d / f"{uri}.wav")
        for i, (s, e, spk) in enumerate(turns):
            spans = [(s, e)]
            for a, b, other in turns:  # subtract everyone else's speech
                if other == spk:
                    continue
                spans = [p for x, y in spans for p in ((x, min(y, a)), (max(x, b), y)) if p[1] > p[0]]
            for x, y in spans:
                t = x
                while y - t >= min_len:
                    b = min(y, t + max_len)
                    if y - b < min_len:
                        b = y if y - t <= max_len + min_len else b
                    out.append((spk, uri, i, vp.embed(audio[int(t * RATE) : int(b * RATE)], RATE)))
                    t = b
    return out


def test_threshold_calibration_on_ami():
    d = ami_dir()
    pieces = clean_pieces(d)
    same, diff = [], []
    for a, b in itertools.combinations(pieces, 2):
        s = vp.cosine(a[3], b[3])
        if a[0] == b[0]:
            if a[1:3] != b[1:3]:
                same.append(s)
        else:
            diff.append(s)
    assert len(same) >= 8 and len(diff) >= 100
    same, diff = np.array(same), np.array(diff)
    assert same.mean() - diff.mean() > 0.15  # measured 0.857 vs 0.632
    t = vp.calibrate(same, diff)
    # the balanced-accuracy point of clean pairs (0.763) sits a little under the precision-first threshold (0.80,
    # set by cross-recording matching: test_cross_recording_precision_on_ami)
    assert 0.72 < t <= vp.DEFAULT_THRESHOLD, f"calibrated {t:.3f} drifted from DEFAULT_THRESHOLD"
    assert vp.equal_error_rate(same, diff) < 0.10  # measured 0.014
    assert (same >= vp.DEFAULT_THRESHOLD).mean() >= 0.7 and (diff < vp.DEFAULT_THRESHOLD).mean() >= 0.95


@pytest.mark.slow
def test_cross_recording_precision_on_ami():
    """Enrol each excerpt's speakers, match clean pieces of the other nine: precision >= 0.90 at recall >= 0.50
    at the shipped threshold (0.80; the threshold before, 0.76, gave precision 0.48)."""
    from ami_voiceprints import cross_recording, embeddings

    d = ami_dir()
    enr, probes = embeddings(d, lambda a: vp.embed(a, RATE))
    at = cross_recording(enr, probes, lambda e, m: m @ e, min_recall=0.0)
    assert at["enrolled_trials"] >= 12 and at["trials"] >= 150
    best = []
    for uri in sorted({u for u, _ in enr}):
        names = [s for u, s in enr if u == uri]
        mat = np.stack([enr[(uri, s)] for s in names])
        for spk, puri, e in probes:
            if puri != uri:
                sc = mat @ e
                i = int(np.argmax(sc))
                best.append((float(sc[i]), names[i] == spk, spk in names))
    accepted = [b for b in best if b[0] >= vp.DEFAULT_THRESHOLD]
    right = sum(1 for b in accepted if b[1])
    precision, recall = right / max(1, len(accepted)), right / sum(1 for b in best if b[2])
    assert precision >= 0.90 and recall >= 0.50, (precision, recall)  # measured 0.91, 0.63
    old = [b for b in best if b[0] >= 0.76]
    assert sum(1 for b in old if b[1]) / len(old) < 0.9  # what the old threshold gave (0.48): the test can fail
