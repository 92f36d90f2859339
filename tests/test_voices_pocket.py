"""Pocket TTS backend (pipeline.voices.pocket) on a random-initialised model built from a config in the wheel.

The real code runs: the hub-cache lookup at the pinned revisions, pocket-tts's own loader, voice cloning from
audio, the voice-state export / import, and streaming synthesis.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pocket_tts")

from pipeline.errors import BadInputError, ModelMissingError  # noqa: E402
from pipeline.voices import pocket  # noqa: E402
from tests.tiny_pocket import TEST_LANGUAGE, pocket_cache  # noqa: E402


@pytest.fixture()
def hub(monkeypatch):
    cache = pocket_cache()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    pocket.clear_models()
    yield cache
    pocket.clear_models()


def _speechlike(seconds: float = 4.0, rate: int = 24000, f0: float = 140.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 3.0 * t)  # syllable-rate envelope
    x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 8)) * env * 0.2
    return x.astype(np.float32)


def test_missing_weights_say_what_to_fetch_and_how_big(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    pocket.clear_models()
    with pytest.raises(ModelMissingError) as e:
        pocket.load_model("english")
    msg = str(e.value)
    assert "\n" not in msg
    assert "hf download kyutai/pocket-tts languages/english/model.safetensors --revision db04f0e6" in msg
    assert "hf download kyutai/pocket-tts-without-voice-cloning languages/english/tokenizer.json" in msg
    assert "440 MB" in msg and "hf auth login" in msg
    assert pocket.model_bytes("english") is None


def test_unknown_language_is_one_clear_line():
    with pytest.raises(BadInputError, match="no model 'klingon'"):
        pocket.config_dict("klingon")
    assert "english" in pocket.languages() and TEST_LANGUAGE in pocket.languages()


def test_load_from_hub_cache_once(hub):
    m = pocket.load_model(TEST_LANGUAGE)
    assert m.sample_rate == 24000
    assert pocket.load_model(TEST_LANGUAGE) is m  # loaded once per process
    files = pocket.resolve_files(TEST_LANGUAGE)
    assert all(str(p).startswith(str(hub)) for p in files.values())
    assert pocket.model_bytes(TEST_LANGUAGE) == sum(p.stat().st_size for p in files.values())


def test_clone_export_import_synthesize_round_trip(hub, tmp_path):
    import torch

    m = pocket.load_model(TEST_LANGUAGE)
    state = m.clone(_speechlike(), 24000)
    path = tmp_path / "v" / pocket.VOICE_STATE_NAME
    size = pocket.export_voice_state(state, path)
    assert size == path.stat().st_size > 10_000
    assert pocket.voice_state_bytes(path) == size
    loaded = m.load_voice_state(path)
    assert set(loaded) == set(state)
    for mod in state:  # the prompt part of every cache / offset comes back identical
        for key, t in state[mod].items():
            got = loaded[mod][key]
            if key == "cache":
                end = int(state[mod]["offset"].view(-1)[0])
                assert torch.equal(got[:, :, :end], t[:, :, :end])
            else:
                assert torch.equal(got, t)
    torch.manual_seed(7)
    a = m.synthesize(state, "Where did you put the keys?")
    torch.manual_seed(7)
    b = m.synthesize(loaded, "Where did you put the keys?")
    assert len(a) > 2400 and np.isfinite(a).all()
    np.testing.assert_allclose(a, b, atol=1e-5)  # the exported state speaks exactly like the fresh one


def test_clone_from_file_and_streaming_chunks(hub, tmp_path):
    import soundfile as sf

    m = pocket.load_model(TEST_LANGUAGE)
    wav = tmp_path / "ref.wav"
    sf.write(wav, _speechlike(3.0, 16000), 16000)  # another rate: resampled to 24 kHz
    state = m.clone(wav)
    voice = tmp_path / "voice"
    pocket.export_voice_state(state, voice / pocket.VOICE_STATE_NAME)
    stream = pocket.synthesize_stream(voice, "The quick brown fox. It jumps over the lazy dog again.", language=TEST_LANGUAGE)
    chunks = list(stream)
    assert len(chunks) >= 2  # streamed, not one block
    assert all(rate == 24000 and a.dtype == np.float32 and a.ndim == 1 for a, rate in chunks)
    assert sum(len(a) for a, _ in chunks) > 24000 * 0.3


def test_bad_reference_and_bad_state_are_refused(hub, tmp_path):
    m = pocket.load_model(TEST_LANGUAGE)
    with pytest.raises(BadInputError, match="0.5 s"):
        m.clone(np.zeros(24000, dtype=np.float32), 24000)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a tensor file")
    with pytest.raises(BadInputError, match="not a Pocket TTS voice state"):
        m.load_voice_state(junk)
    with pytest.raises(BadInputError, match="empty"):
        list(m.stream(m.clone(_speechlike(), 24000), "   "))


def test_models_report_says_what_to_fetch_for_pocket(tmp_path, monkeypatch):
    from pipeline.models import model_report

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    row = next(r for r in model_report() if r["backend"] == "pocket-tts")
    assert row["available"] is False and "440 MB" in row["reason"] and "hf auth login" in row["reason"]
    weights = next(m for m in row["models"] if m["name"].endswith("model.safetensors"))
    assert weights["size_mb"] == 440.0 and weights["fetch_command"].startswith("hf download kyutai/pocket-tts ")
    assert not weights["present"]
