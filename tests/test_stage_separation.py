"""Dialogue isolation backends: spectral gating measured on speech + music, demucs chunking on a tiny random-weight
HTDemucs (pretrained weights cannot be fetched here), missing weights, and the ElevenLabs adapter kept offline."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from pipeline import media
from pipeline.errors import BackendUnavailableError, Cancelled, ModelMissingError
from pipeline.progress import CancelToken
from pipeline.stages import get_backend
from pipeline.stages.separation import (
    DEMUCS_FETCH,
    DemucsSeparator,
    DenoiseSeparator,
    ElevenLabsSeparator,
    process_in_chunks,
)

RATE = 16000


def si_sdr(est: np.ndarray, ref: np.ndarray) -> float:
    a = float(est @ ref) / float(ref @ ref)
    target = a * ref
    err = est - target
    return 10 * np.log10(float(target @ target) / float(err @ err))


@pytest.fixture(scope="module")
def speech_and_music(tmp_path_factory):
    if not shutil.which("espeak-ng") or not shutil.which("sox"):
        pytest.skip("espeak-ng and sox are needed to make the fixture")
    d = tmp_path_factory.mktemp("sep")
    subprocess.run(["espeak-ng", "-v", "en+m3", "-s", "150", "-w", str(d / "speech.wav"),
                    "The quick brown fox jumps over the lazy dog. Meanwhile, the orchestra keeps playing in the "
                    "background, and nobody seems to mind at all."], check=True)
    # a sustained chord with tremolo, like a film-score pad
    subprocess.run(["sox", "-n", "-r", "16000", "-c", "4", str(d / "music.wav"), "synth", "8", "sine", "220",
                    "sine", "277.2", "sine", "329.6", "sine", "110", "tremolo", "3", "40", "remix", "-"], check=True)
    speech = media.load_audio(d / "speech.wav", RATE)
    music = media.load_audio(d / "music.wav", RATE)
    n = min(len(speech), len(music))
    speech, music = speech[:n], music[:n]
    music = music * float(np.sqrt(np.mean(speech**2) / np.mean(music**2)))  # 0 dB speech-to-music
    return speech, music


def test_chunking_crossfade_is_exact():
    x = np.random.default_rng(0).standard_normal((10_000, 2)).astype(np.float32)
    seen = []
    y = process_in_chunks(x, lambda b: b * 2, chunk=3000, overlap=500, progress=lambda f, m="": seen.append(f))
    assert y.shape == x.shape and np.allclose(y, 2 * x, atol=1e-5)
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) == 4
    short = process_in_chunks(x[:100, 0], lambda b: b, chunk=3000, overlap=500)
    assert np.allclose(short, x[:100, 0])


def test_denoise_improves_speech_in_music(speech_and_music):
    speech, music = speech_and_music
    mix = speech + music
    seen = []
    out = get_backend("separation", "denoise").isolate(mix, RATE, progress=lambda f, m="": seen.append(f))
    assert out.shape == mix.shape and out.dtype == np.float32 and np.isfinite(out).all()
    before, after = si_sdr(mix, speech), si_sdr(out, speech)
    assert after >= before + 3.0, f"SI-SDR {before:.2f} -> {after:.2f} dB (measured -0.03 -> +4.93)"
    assert seen[-1] == 1.0
    # stereo at 44.1 kHz: mono out, same length and rate
    st = media.resample(np.stack([mix, mix], axis=1), RATE, 44100)
    out2 = DenoiseSeparator().isolate(st, 44100)
    assert out2.shape == (len(st),)


def tiny_htdemucs():
    import torch
    from demucs.htdemucs import HTDemucs

    torch.manual_seed(0)
    # shrunk so a 2 s chunk runs in well under a second on CPU; random weights (pretrained ones need the hub)
    return HTDemucs(sources=["drums", "bass", "other", "vocals"], samplerate=8000, segment=2, channels=8, depth=2,
                    t_layers=1, t_heads=2, nfft=512).eval()


def test_demucs_chunks_progress_and_cancel():
    pytest.importorskip("demucs")
    model = tiny_htdemucs()
    sep = get_backend("separation", "demucs", model=model, overlap_seconds=0.5)
    rng = np.random.default_rng(1)
    audio = (0.1 * rng.standard_normal((5 * RATE + 123, 2))).astype(np.float32)  # 5 s stereo at 16 kHz
    seen = []
    out = sep.isolate(audio, RATE, progress=lambda f, m="": seen.append(f))
    assert out.shape == (len(audio),) and out.dtype == np.float32 and np.isfinite(out).all()
    assert len(seen) >= 3 and seen == sorted(seen) and seen[-1] == 1.0  # 2 s chunks, 0.5 s overlap
    mono = sep.isolate(audio[:, 0], RATE)
    assert mono.shape == (len(audio),)
    tok = CancelToken()

    def progress(f, m=""):
        tok.cancel()  # cancel after the first chunk

    with pytest.raises(Cancelled):
        sep.isolate(audio, RATE, progress=progress, cancel=tok)


def test_demucs_missing_weights(tmp_path, monkeypatch):
    pytest.importorskip("demucs")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    spec = DemucsSeparator.models()[0]
    assert not spec.present and spec.fetch_command == DEMUCS_FETCH and str(tmp_path) in spec.path
    av = DemucsSeparator.availability()
    assert not av.ok and av.fix == DEMUCS_FETCH
    with pytest.raises(ModelMissingError) as e:
        get_backend("separation", "demucs")
    assert "get_model('htdemucs')" in str(e.value) and e.value.fetch_command == DEMUCS_FETCH
    with pytest.raises(ModelMissingError):
        DemucsSeparator().isolate(np.zeros(RATE, np.float32), RATE)
    monkeypatch.delenv("ELEVENLABS_API_KEY", raising=False)
    assert get_backend("separation").name == "denoise"  # best available without weights or cloud


def test_elevenlabs_off_by_default_and_request_shape(tmp_path, monkeypatch):
    monkeypatch.setenv("WEAVER_HOME", str(tmp_path))  # default settings: cloud off
    monkeypatch.delenv("ELEVENLABS_API_KEY", raising=False)
    assert not ElevenLabsSeparator.availability().ok
    monkeypatch.setenv("ELEVENLABS_API_KEY", "test-key")
    av = ElevenLabsSeparator.availability()
    assert not av.ok and "cloud" in av.reason
    with pytest.raises(BackendUnavailableError):
        get_backend("separation", "elevenlabs")
    from pipeline.config import Settings

    Settings(cloud_enabled=True).save(tmp_path)
    assert ElevenLabsSeparator.availability().ok
    sep = ElevenLabsSeparator()
    audio = np.zeros((2 * 44100, 2), np.float32)
    req = sep.build_request(audio, 44100)  # built, never sent
    body = req.read()
    assert req.method == "POST" and str(req.url) == "https://api.elevenlabs.io/v1/audio-isolation"
    assert req.headers["xi-api-key"] == "test-key"
    assert req.headers["content-type"].startswith("multipart/form-data")
    assert b'name="audio"' in body and b'name="file_format"' in body and b"pcm_s16le_16" in body
    assert len(body) > 2 * 16000 * 2  # 2 s of 16 kHz 16-bit mono PCM
