"""Voice registry, synthesis with a trained (tiny) adapter, the espeak-ng default voice, long text, encoding, schema."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import BackendUnavailableError, BadInputError, ModelMissingError, NotFoundError
from pipeline.voices import default_voice, synth
from pipeline.voices.train import TrainConfig, train_voice
from tiny_tts import build_all, tiny_dataset


@pytest.fixture(scope="module")
def voices(tmp_path_factory):
    import torch

    torch.set_num_threads(2)
    root = tmp_path_factory.mktemp("synth")
    base, snac = build_all(root)
    ds = tiny_dataset(root, 2)
    r = train_voice(ds.out_dir, TrainConfig(base_model=str(base), backend="cpu", snac_dir=str(snac), out_dir=str(root / "run"), steps=2,
                                            grad_accum=1, save_every=10, dedupe_frames=False))
    vdir = root / "voices"
    synth.register_voice(vdir, "hero", r.adapter_dir, base_model=str(base), character="Hero", snac_dir=str(snac))
    return {"dir": vdir, "base": base, "snac": snac, "adapter": r.adapter_dir}


def test_registry(voices):
    names = [v.name for v in synth.list_voices(voices["dir"])]
    assert names == ["default", "hero"]
    hero = synth.get_voice("hero", voices["dir"])
    assert hero.character == "Hero" and hero.adapter_bytes > 0 and hero.rate == 24000 and not hero.builtin
    assert [v.name for v in synth.list_voices(None)] == ["default"]
    with pytest.raises(BadInputError, match="already exists"):
        synth.register_voice(voices["dir"], "hero", voices["adapter"], base_model="x")
    with pytest.raises(BadInputError, match="invalid voice name"):
        synth.register_voice(voices["dir"], "../evil", voices["adapter"], base_model="x")


def test_unknown_voice_lists_available(voices):
    with pytest.raises(NotFoundError, match="no voice named 'villain'; available: default, hero"):
        synth.synthesize("villain", "Hello.", voices_dir=voices["dir"])
    with pytest.raises(NotFoundError):  # raised by the call itself, before any chunk is requested
        synth.synthesize_stream("villain", "Hello.", voices_dir=voices["dir"])


def test_synthesize_with_adapter_length_matches_tokens(voices):
    audio, rate = synth.synthesize("hero", "Hello there, general.", voices_dir=voices["dir"], max_new_tokens=42, seed=3)
    assert rate == 24000 and audio.dtype == np.float32 and audio.ndim == 1
    engine = next(iter(synth._ENGINES.values()))
    toks = engine.last_tokens
    n_frames = sum(1 for t in toks if t != engine.cfg.end_of_speech) // 7
    assert 0 < n_frames <= 6 and len(toks) <= 42
    assert len(audio) == n_frames * 2048  # SNAC: 2048 samples per 7-token frame
    assert np.isfinite(audio).all()


def test_stream_two_chunks_with_adapter(voices):
    text = "First sentence is here. " * 6 + "And a second group follows after it."
    chunks = list(synth.synthesize_stream("hero", text, voices_dir=voices["dir"], max_chunk_chars=100, max_new_tokens=14, seed=1))
    assert len(chunks) == len(list(synth.split_text(text, 100))) == 2
    assert all(r == 24000 and 0 < len(a) <= 2 * 2048 for a, r in chunks)


def test_missing_base_model_for_voice(voices, tmp_path):
    vdir = tmp_path / "v"
    synth.register_voice(vdir, "lost", voices["adapter"], base_model="unsloth/orpheus-3b-0.1-ft")
    with pytest.raises(ModelMissingError, match="orpheus-3b-0.1-ft"):
        synth.synthesize("lost", "Hi there.", voices_dir=vdir)


def test_default_voice_says_text(voices):
    audio, rate = synth.synthesize("default", "The default voice needs no training.", voices_dir=voices["dir"])
    assert rate == 24000 and audio.dtype == np.float32
    assert 1.5 < len(audio) / rate < 5.0
    assert np.sqrt(np.mean(audio**2)) > 0.01
    short, _ = default_voice.speak("Hi.")
    assert len(short) < len(audio)


def test_default_voice_missing_espeak(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(BackendUnavailableError, match="apt-get install espeak-ng"):
        default_voice.speak("hello")


def test_hundred_thousand_characters(voices):
    sentence = "This is a fairly ordinary sentence for a very long reading. "
    text = (sentence * (100_000 // len(sentence) + 1))[:100_000]
    # one-shot synthesis refuses above the documented cap ...
    with pytest.raises(BadInputError, match=r"100000 characters; the limit for one request is 4096"):
        synth.synthesize("default", text, voices_dir=voices["dir"])
    # ... streaming splits it into bounded chunks, lazily
    chunks = list(synth.split_text(text, 240))
    assert all(len(c) <= 240 for c in chunks) and len(chunks) > 400
    assert " ".join(chunks).split() == text.split()
    stream = synth.synthesize_stream("default", text, voices_dir=voices["dir"])
    first = [next(stream) for _ in range(2)]
    stream.close()
    assert all(r == 24000 and 0 < len(a) < 24000 * 30 for a, r in first)


def test_split_text_long_sentence_and_words():
    s = "word, " * 100 + "end."
    parts = list(synth.split_text(s, 50))
    assert all(len(p) <= 50 for p in parts) and " ".join(parts).split() == s.split()
    blob = "x" * 130
    assert list(synth.split_text(blob, 50)) == ["x" * 50, "x" * 50, "x" * 30]
    with pytest.raises(BadInputError):
        synth.synthesize("default", "   ", voices_dir=None)


@pytest.mark.parametrize("fmt", ["wav", "mp3", "flac", "opus", "aac", "pcm"])
def test_encode_audio_formats_decode_back(fmt, tmp_path):
    import av

    rate = 24000
    t = np.arange(rate) / rate
    audio = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    data = synth.encode_audio(audio, rate, fmt)
    if fmt == "pcm":
        assert len(data) == 2 * rate
        return
    p = tmp_path / f"x.{ {'aac': 'aac', 'opus': 'ogg'}.get(fmt, fmt) }"
    p.write_bytes(data)
    with av.open(str(p)) as c:
        n = sum(f.samples for f in c.decode(audio=0))
        dec_rate = c.streams.audio[0].rate
    assert abs(n / dec_rate - 1.0) < 0.1


def test_encode_audio_rejects_unknown_format():
    with pytest.raises(BadInputError, match="unsupported audio format 'ogg'"):
        synth.encode_audio(np.zeros(10, np.float32), 24000, "ogg")


def test_schema_tables(tmp_path):
    from pipeline.library import Library
    from pipeline.library.voices import create_tables

    lib = Library(tmp_path / "lib")
    create_tables(lib.db)
    create_tables(lib.db)  # idempotent
    assert {"voices", "datasets", "training_runs"} <= set(lib.db.table_names())
    lib.db["voices"].insert({"name": "hero", "base_model": "b", "created_at": 1.0, "status": "ready"})
    with pytest.raises(Exception):
        lib.db["voices"].insert({"name": "hero", "base_model": "b", "created_at": 2.0})
    vid = lib.db.execute("select id from voices where name='hero'").fetchone()[0]
    lib.db["training_runs"].insert({"voice_id": vid, "job_id": 7, "state": "running"})
    lib.db.execute("delete from voices where id=?", [vid])
    assert lib.db.execute("select count(*) from training_runs").fetchone()[0] == 0  # cascades
    lib.close()
