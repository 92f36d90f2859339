"""Diarization on real conversations: DER of the offline backend against reference RTTM, plus the backend contract.

DER is pyannote.metrics' DiarizationErrorRate with collar 0 (strict: boundary errors count) and overlapping
reference speech scored (a single-label diarizer cannot get overlaps right), inside each file's UEM.
Thresholds are a few points above what the backend measured when the tests were written (noted per case).
"""

from __future__ import annotations

import numpy as np
import pytest

from data_paths import ami_dir, pyannote_sample, read_rttm, read_uem
from pipeline import media
from pipeline.errors import BackendUnavailableError, BadInputError, Cancelled
from pipeline.progress import CancelToken
from pipeline.stages import get_backend
from pipeline.stages.diarize import PyannoteDiarizer, ResemblyzerDiarizer
from pipeline.types import Region

pytest.importorskip("resemblyzer")
pytest.importorskip("pyannote.metrics")


def der(turns, ref, uem, collar=0.0) -> float:
    from pyannote.core import Annotation, Segment, Timeline
    from pyannote.metrics.diarization import DiarizationErrorRate

    hyp, r = Annotation(), Annotation()
    for t in turns:
        hyp[Segment(t.start, t.end)] = t.speaker
    for s, e, spk in ref:
        r[Segment(s, e)] = spk
    return DiarizationErrorRate(collar=collar)(r, hyp, uem=Timeline([Segment(*uem)]))


def check_contract(d, duration):
    turns = d.turns
    assert turns, "no turns"
    assert all(0 <= t.start < t.end <= duration + 1e-6 for t in turns)
    assert all(a.end <= b.start + 1e-6 for a, b in zip(turns, turns[1:])), "offline turns must not overlap"
    first_seen = []
    for t in turns:
        if t.speaker not in first_seen:
            first_seen.append(t.speaker)
    assert first_seen == [f"SPEAKER_{i:02d}" for i in range(len(first_seen))]
    assert set(d.embeddings) == set(first_seen)
    for v in d.embeddings.values():
        assert len(v) == 256 and abs(np.linalg.norm(v) - 1) < 1e-4
    assert d.backend == "resemblyzer"


def assert_cancel_stops(dia, audio):
    """Cancelling from the progress hook once a fifth is done stops the diarizer with Cancelled."""
    tok = CancelToken()

    def progress(f, m=""):
        if f > 0.2:
            tok.cancel()

    with pytest.raises(Cancelled):
        dia.diarize(audio, 16000, progress=progress, cancel=tok)


def test_pyannote_sample_two_speakers_der():
    wav, rttm = pyannote_sample()
    audio = media.load_audio(wav)
    ref = read_rttm(rttm)["sample"]
    seen = []
    d = get_backend("diarize", "resemblyzer").diarize(audio, 16000, progress=lambda f, m="": seen.append(f))
    check_contract(d, len(audio) / 16000)
    assert len(d.speakers()) == 2
    value = der(d.turns, ref, (0.0, 30.0))
    assert value <= 0.22, f"DER {value:.3f} (measured 0.155)"
    assert seen == sorted(seen) and seen[-1] == 1.0


@pytest.mark.parametrize(
    "uri, limit, measured",
    [
        ("trn05", 0.20, 0.121),  # 4 reference speakers (one holds ~90 % of the speech): the issue's ≤ 20 % target
        ("trn03", 0.12, 0.064),  # 2 speakers
    ],
)
def test_ami_excerpt_der(uri, limit, measured):
    d = ami_dir()
    audio = media.load_audio(d / f"{uri}.wav")
    ref = read_rttm(d / "train.rttm")[uri]
    uem = read_uem(d / "train.uem")[uri]
    res = ResemblyzerDiarizer().diarize(audio, 16000)
    check_contract(res, len(audio) / 16000)
    value = der(res.turns, ref, uem)
    assert value <= limit, f"{uri}: DER {value:.3f} (measured {measured})"


def test_given_regions_fixed_count_and_bounds():
    wav, rttm = pyannote_sample()
    audio = media.load_audio(wav)
    regions = [Region(6.5, 15.0), Region(17.9, 30.0)]
    dia = ResemblyzerDiarizer()
    d = dia.diarize(audio, 16000, regions=regions, num_speakers=2)
    assert len(d.speakers()) == 2
    for t in d.turns:  # turns stay inside the regions the caller gave
        assert any(r.start - 1e-6 <= t.start and t.end <= r.end + 1e-6 for r in regions)
    one = dia.diarize(audio, 16000, regions=regions, max_speakers=1)
    assert one.speakers() == ["SPEAKER_00"]
    # stereo input at another rate goes through the shared resampler
    st = media.resample(np.stack([audio, audio], axis=1), 16000, 22050)
    d2 = dia.diarize(st, 22050, regions=regions, num_speakers=2)
    assert len(d2.speakers()) == 2
    with pytest.raises(BadInputError):
        dia.diarize(audio, 16000, regions=regions, min_speakers=3, max_speakers=2)


def test_segmentation_backend_on_the_sample_with_overlap_progress_and_cancel():
    """The overlap-aware 'segmentation' backend: DER measured 0.056 on the sample (window clustering: 0.155)."""
    from pipeline.stages import overlap

    if not overlap.available():
        pytest.skip("needs pyannote.audio and the whisperX wheel (pip install -e '.[all]')")
    wav, rttm = pyannote_sample()
    audio = media.load_audio(wav)
    seen = []
    dia = get_backend("diarize", "segmentation")
    d = dia.diarize(audio, 16000, progress=lambda f, m="": seen.append((f, m)))
    assert d.backend == "segmentation" and d.speakers() == ["SPEAKER_00", "SPEAKER_01"]
    assert all(0 <= t.start < t.end <= 30.0 + 1e-6 for t in d.turns)
    assert set(d.embeddings) == set(d.speakers())
    for v in d.embeddings.values():
        assert len(v) == 256 and abs(np.linalg.norm(v) - 1) < 1e-4
    value = der(d.turns, read_rttm(rttm)["sample"], (0.0, 30.0))
    assert value <= 0.10, f"DER {value:.3f} (measured 0.056)"
    fracs = [f for f, _ in seen]
    assert fracs == sorted(fracs) and fracs[-1] == 1.0
    assert {"finding who talks when", "grouping voices"} <= {m for _, m in seen}
    assert dia.diarize(audio, 16000, max_speakers=1).speakers() == ["SPEAKER_00"]
    assert dia.diarize(np.zeros(16000 * 3, np.float32), 16000).turns == []
    assert_cancel_stops(dia, audio)
    # not the default: the chain keeps the faster window-clustering backend unless settings name this one
    assert get_backend("diarize").name != "segmentation" or not ResemblyzerDiarizer.availability().ok


def test_silence_gives_no_turns_and_cancel_stops():
    dia = ResemblyzerDiarizer()
    silent = dia.diarize(np.zeros(16000 * 3, np.float32), 16000)
    assert silent.turns == [] and silent.embeddings == {}
    wav, _ = pyannote_sample()
    audio = media.load_audio(wav)
    assert_cancel_stops(dia, audio)


def test_pyannote_backend_gated_and_optional(monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGINGFACE_TOKEN", raising=False)
    av = PyannoteDiarizer.availability()
    assert not av.ok
    # either the library is missing (install hint) or the token is (where to get one and which conditions to accept)
    assert 'voice-weaver[pyannote]' in av.fix or ("HF_TOKEN" in av.fix and "hf.co/pyannote/" in av.fix)
    with pytest.raises(BackendUnavailableError):
        get_backend("diarize", "pyannote")
    assert get_backend("diarize").name == "resemblyzer"  # best available falls back to the offline backend
    msg = PyannoteDiarizer.token_message()
    assert "set HF_TOKEN" in msg and "accept the model's conditions" in msg


@pytest.fixture(scope="module")
def random_pyannote_folder(tmp_path_factory):
    """A community-1-shaped pyannote pipeline folder with random weights (built once per module)."""
    pytest.importorskip("pyannote.audio", reason="the pyannote extra is not installed")
    import tiny_models

    return tiny_models.build_tiny_pyannote_pipeline(tmp_path_factory.mktemp("pyannote") / "community-1-random")


def test_pyannote_adapter_runs_a_random_weight_pipeline(random_pyannote_folder, monkeypatch):
    """The real pyannote.audio loading + segmentation + embedding + VBx code path, on random weights: no token is
    needed for a local pipeline folder, progress names pyannote's steps, turns and voiceprints have our shapes,
    and no telemetry is enabled."""
    monkeypatch.delenv("HF_TOKEN", raising=False)
    wav, _ = pyannote_sample()
    audio = media.load_audio(wav)[: 16000 * 12]
    dia = get_backend("diarize", "pyannote", model=str(random_pyannote_folder))  # registry + require(): no token
    seen = []
    d = dia.diarize(audio, 16000, progress=lambda f, m="": seen.append((f, m)))
    assert d.backend == "pyannote"
    assert d.turns, "the seeded random pipeline finds speech in the sample"
    assert all(0 <= t.start < t.end <= 12.0 + 1e-6 for t in d.turns)
    assert [t.start for t in d.turns] == sorted(t.start for t in d.turns)
    labels = sorted(d.speakers())
    assert labels == [f"SPEAKER_{i:02d}" for i in range(len(labels))]
    for v in d.embeddings.values():  # Resemblyzer voiceprints, comparable with enrolled ones
        assert len(v) == 256 and abs(np.linalg.norm(v) - 1) < 1e-4
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert {"segmentation", "embeddings"} <= {m for _, m in seen}
    from pyannote.audio.telemetry.metrics import is_metrics_enabled

    assert is_metrics_enabled() is False


def test_pyannote_adapter_cancel_and_broken_folder(random_pyannote_folder, tmp_path):
    """Cancel stops the pyannote pipeline at its next step; a pipeline folder missing a model is one clear error."""
    import shutil

    wav, _ = pyannote_sample()
    audio = media.load_audio(wav)[: 16000 * 12]
    tok = CancelToken()
    tok.cancel()
    with pytest.raises(Cancelled):
        PyannoteDiarizer(model=str(random_pyannote_folder)).diarize(audio, 16000, cancel=tok)

    broken = tmp_path / "broken"
    shutil.copytree(random_pyannote_folder, broken)
    shutil.rmtree(broken / "embedding")
    with pytest.raises(BackendUnavailableError, match=r"cannot be loaded .*config.yaml"):
        PyannoteDiarizer(model=str(broken)).diarize(audio, 16000)


def test_pyannote_pipeline_on_sample():
    """Real pretrained pipeline: needs a token with the model's conditions accepted (and the hub reachable)."""
    import os

    pytest.importorskip("pyannote.audio", reason="the pyannote extra is not installed")
    if not os.environ.get("HF_TOKEN"):
        pytest.skip("HF_TOKEN not set (gated pyannote model)")
    wav, rttm = pyannote_sample()
    audio = media.load_audio(wav)
    d = PyannoteDiarizer().diarize(audio, 16000)
    assert der(d.turns, read_rttm(rttm)["sample"], (0.0, 30.0)) <= 0.15


def test_long_media_may_hold_more_than_eight_voices():
    """The speaker-count bound grows with the speech (pipeline.stages.diarize.max_speakers_for): eleven voices of
    40 s each are eleven clusters, where the fixed bound of 8 folded them into eight; a minute of a meeting keeps 8."""
    from pipeline.stages.diarize import MAX_SPEAKERS, MOST_SPEAKERS, max_speakers_for

    assert max_speakers_for([Region(0.0, 60.0)]) == MAX_SPEAKERS
    assert max_speakers_for([Region(0.0, 7200.0)]) == MOST_SPEAKERS
    rng = np.random.default_rng(0)
    voices = rng.normal(size=(11, 256))
    regions = [Region(i * 45.0, i * 45.0 + 40.0) for i in range(11)]
    dia = ResemblyzerDiarizer(hop=1.0)  # 440 windows instead of 1760: the same clustering, a quarter of the work
    starts = dia.window_starts(regions, 11 * 45.0)
    who = np.array([int(s // 45.0) for s in starts])
    x = voices[who] + rng.normal(scale=0.8, size=(len(starts), 256))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    bound = max_speakers_for(regions)
    assert bound >= 11
    d = dia.diarize_embedded(11 * 45.0, regions, starts, x, max_speakers=bound)
    assert len(d.speakers()) == 11
    # each voice's region is one speaker, and no two voices share one
    owner = {}
    for t in d.turns:
        owner.setdefault(t.speaker, set()).add(int(t.start // 45.0))
    assert sorted(len(v) for v in owner.values()) == [1] * 11
    capped = dia.diarize_embedded(11 * 45.0, regions, starts, x, max_speakers=MAX_SPEAKERS)
    assert len(capped.speakers()) <= MAX_SPEAKERS
