"""build_dataset: quality filter reasons, loudness, layouts, split, warnings, empty input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import BadInputError
from pipeline.media import read_audio_file
from pipeline.voices.dataset import ClipSample, build_dataset, measure, normalize_text, read_dataset
from tiny_tts import SENTENCES, espeak_clip, sox, speech_clips


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    clean = speech_clips(d, 5)
    short = espeak_clip(d / "short.wav", "Yes.")
    clipped = d / "clipped.wav"
    sox(str(clean[0][0]), str(clipped), "gain", "20")
    sox("-n", "-r", "22050", "-c", "1", str(d / "chord.wav"), "synth", "6", "sine", "C4", "sine", "E4", "sine", "G4", "gain", "-10")
    music = d / "music.wav"
    sox("-m", str(clean[1][0]), str(d / "chord.wav"), str(music), "trim", "0", "3")
    sox("-n", "-r", "22050", "-c", "1", str(d / "noise.wav"), "synth", "6", "pinknoise", "gain", "-8")
    noisy = d / "noisy.wav"
    sox("-m", str(clean[2][0]), str(d / "noise.wav"), str(noisy), "trim", "0", "3")
    distorted = d / "distorted.wav"  # clean by level, SNR and background: only DNSMOS hears the distortion
    sox(str(espeak_clip(d / "plain.wav", SENTENCES[5])), str(distorted), "overdrive", "60")
    other = espeak_clip(d / "other.wav", SENTENCES[6], "en+f3")  # a line of another voice attributed to this one
    return {"dir": d, "clean": clean, "short": short, "clipped": clipped, "music": music, "noisy": noisy,
            "distorted": distorted, "other": other}


def test_filter_reasons_layouts_and_loudness(clips, tmp_path):
    clean = clips["clean"]
    samples = [ClipSample(p, t, clip_id=i) for i, (p, t) in enumerate(clean)]
    samples += [
        ClipSample(clips["short"], "Yes."),
        ClipSample(clips["clipped"], "A clipped line that is too loud."),
        ClipSample(clips["music"], "Speech under loud music."),
        ClipSample(clips["noisy"], "Speech under loud noise."),
        ClipSample(clean[3][0], clean[3][1].upper() + "!!"),  # same words, different case/punctuation
        ClipSample(clean[4][0], "Low confidence attribution.", confidence=0.3),
        ClipSample(clean[4][0], "Two people at once.", overlap=True),
        ClipSample(clean[4][0], "Words nobody could confirm.", check_text=True),
        ClipSample(clips["distorted"], SENTENCES[5], clip_id=90),
        ClipSample(clips["other"], SENTENCES[6], clip_id=91),
    ]
    out = tmp_path / "ds"
    s = build_dataset(samples, out, val_fraction=0.2)
    assert s.kept == 5
    assert s.rejected == {"too_short": 1, "clipping": 1, "music": 1, "low_snr": 1, "duplicate_text": 1, "low_confidence": 1,
                          "overlap": 1, "check_text": 1, "low_dnsmos": 1, "other_voice": 1}
    reasons = dict((Path(p.split("@")[0]).name, r) for p, r in s.rejected_items if "clean" not in p)
    assert reasons == {"short.wav": "too_short", "clipped.wav": "clipping", "music.wav": "music", "noisy.wav": "low_snr",
                       "distorted.wav": "low_dnsmos", "other.wav": "other_voice"}
    by_clip = {c["clip_id"]: c for c in s.rejected_clips if c["clip_id"] is not None}
    assert "DNSMOS" in by_clip[90]["detail"] and "similarity" in by_clip[91]["detail"], by_clip
    print("\n" + "\n".join(f"rejected {c['reason']}: {c['detail']}" for c in s.rejected_clips if c["detail"]))
    # every kept clip is scored: DNSMOS, and similarity to the character's centroid above the match threshold
    assert all(k["dnsmos"] is not None and k["similarity"] >= 0.8 for k in s.items), s.items
    assert s.dnsmos == "scored" and s.dnsmos_mean and s.speaker_check.startswith("centroid of 6 clips")
    assert not (out / "wavs" / "clip000090.wav").exists() and not (out / "wavs" / "clip000091.wav").exists()
    assert s.train + s.val == 5 and s.val == 1
    assert s.warning and "min of clean speech" in s.warning and "≥ 10 min" in s.warning
    assert s.loudness == "ebu_r128"  # pyloudnorm is installed in the dev venv
    assert 0.1 < s.minutes_kept < 0.5

    # LJSpeech layout
    lines = (out / "metadata.csv").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 5
    ids = [ln.split("|")[0] for ln in lines]
    assert all(ln.count("|") == 2 for ln in lines)
    for i in ids:
        audio, rate = read_audio_file(out / "wavs" / f"{i}.wav")
        assert rate == 24000
        # loudness normalised: every clip's RMS within a few dB of the others, peak below -1 dBFS (+ PCM rounding)
        assert np.max(np.abs(audio)) <= 10 ** (-1 / 20) + 1e-3
    rms = [20 * np.log10(np.sqrt(np.mean(read_audio_file(out / "wavs" / f"{i}.wav")[0] ** 2))) for i in ids]
    assert max(rms) - min(rms) < 4.0

    # audiofolder layout
    rows = {}
    for split in ("train", "validation"):
        with open(out / "audiofolder" / split / "metadata.csv", newline="", encoding="utf-8") as f:
            r = list(csv.DictReader(f))
        assert all((out / "audiofolder" / split / row["file_name"]).is_file() for row in r)
        rows[split] = r
    assert len(rows["train"]) == 4 and len(rows["validation"]) == 1
    assert {row["transcription"] for row in rows["train"] + rows["validation"]} == {t for _, t in clean}
    assert json.loads((out / "summary.json").read_text())["kept"] == 5
    assert len(read_dataset(out, "train")) == 4


def test_measure_separates_music_from_speech_and_noise(clips):
    from pipeline.media import load_audio

    clean = measure(load_audio(clips["clean"][0][0], sample_rate=24000), 24000)
    music = measure(load_audio(clips["music"], sample_rate=24000), 24000)
    noisy = measure(load_audio(clips["noisy"], sample_rate=24000), 24000)
    assert clean.snr_db > 25 and clean.clip_fraction < 0.001
    assert music.background_flatness < 0.1 < noisy.background_flatness
    assert noisy.snr_db < 15


def test_window_of_a_long_file_and_too_long(clips, tmp_path):
    long = tmp_path / "long.wav"
    sox(*[str(p) for p, _ in clips["clean"]], str(long))  # ~14 s
    samples = [ClipSample(long, SENTENCES[0], start=0.0, end=3.0), ClipSample(long, "everything at once", start=0.0, end=None)]
    s = build_dataset(samples, tmp_path / "ds", max_s=10.0, val_fraction=0)
    assert s.kept == 1 and s.rejected == {"too_long": 1}
    assert abs(s.items[0]["duration"] - 3.0) < 0.05


def test_empty_and_all_rejected(clips, tmp_path):
    with pytest.raises(BadInputError, match="no clips"):
        build_dataset([], tmp_path / "a")
    with pytest.raises(BadInputError, match="all 2 were rejected"):
        build_dataset([ClipSample(clips["short"], "Yes."), ClipSample(clips["clipped"], "x", confidence=0.1)], tmp_path / "b")
    assert not (tmp_path / "b").exists() and not (tmp_path / "b.building").exists()


def test_cancel_leaves_nothing(clips, tmp_path):
    from pipeline.errors import Cancelled
    from pipeline.progress import CancelToken

    tok = CancelToken()
    seen = []

    def progress(f, msg):
        seen.append(f)
        if len(seen) == 2:
            tok.cancel()

    with pytest.raises(Cancelled):
        build_dataset([ClipSample(p, t) for p, t in clips["clean"]], tmp_path / "ds", progress=progress, cancel=tok)
    assert len(seen) == 2 and not list(tmp_path.iterdir())


def test_rebuild_replaces_previous_dataset(clips, tmp_path):
    out = tmp_path / "ds"
    build_dataset([ClipSample(p, t) for p, t in clips["clean"][:3]], out, val_fraction=0)
    s = build_dataset([ClipSample(p, t) for p, t in clips["clean"][:2]], out, val_fraction=0)
    assert s.kept == 2 and len(list((out / "wavs").glob("*.wav"))) == 2


def test_normalize_text():
    assert normalize_text("  Hello, World!! ") == normalize_text("hello world") == "hello world"
    assert normalize_text("Café") == "cafe"


def test_isolation_is_kept_only_where_it_sounds_better(clips, tmp_path):
    """The separator runs on every clip; its output is used where DNSMOS rates it at least as high as the raw clip."""
    from scipy.signal import lfilter

    clean = clips["clean"]
    samples = [ClipSample(p, t, clip_id=i) for i, (p, t) in enumerate(clean)]
    calls = []

    def crushing(audio, rate):  # a separator that ruins speech: hard clipping at -30 dBFS, then made loud again
        calls.append(len(audio))
        return (np.clip(audio, -0.03, 0.03) * 20).astype(np.float32)

    s = build_dataset(samples, tmp_path / "a", val_fraction=0, isolate=crushing, isolation_name="crusher")
    assert len(calls) == len(clean) and s.isolation == "crusher"
    assert s.kept == len(clean) and s.isolated == 0 and not any(k["isolated"] for k in s.items)

    def gentle(audio, rate):  # a slight smoothing: sounds the same or better
        return lfilter([0.9, 0.1], [1.0], audio).astype(np.float32)

    s = build_dataset(samples, tmp_path / "b", val_fraction=0, isolate=gentle, isolation_name="gentle")
    assert s.isolated >= 1 and all(k["dnsmos"] is not None for k in s.items)

    s = build_dataset(samples, tmp_path / "c", val_fraction=0, score=False)
    assert s.dnsmos == "off" and s.speaker_check == "off" and all(k["dnsmos"] is None for k in s.items)


def test_check_text_lines_are_left_out_unless_asked(clips, tmp_path):
    clean = clips["clean"]
    samples = [ClipSample(p, t, clip_id=i, check_text=(i == 0)) for i, (p, t) in enumerate(clean)]
    s = build_dataset(samples, tmp_path / "a", val_fraction=0, score=False)
    assert s.kept == len(clean) - 1 and s.rejected == {"check_text": 1}
    assert s.rejected_clips[0]["clip_id"] == 0 and s.rejected_clips[0]["text"] == clean[0][1]
    s = build_dataset(samples, tmp_path / "b", val_fraction=0, score=False, include_check_text=True)
    assert s.kept == len(clean)


def test_a_missing_dnsmos_model_is_said_once_and_the_build_goes_on(clips, tmp_path, monkeypatch):
    from pipeline.errors import BackendUnavailableError
    from pipeline.voices import check

    calls = []

    def missing(audio, rate):
        calls.append(1)
        raise BackendUnavailableError("DNSMOS needs speechmos and librosa (speechmos is missing)")

    monkeypatch.setattr(check, "dnsmos", missing)
    clean = clips["clean"]
    s = build_dataset([ClipSample(p, t) for p, t in clean], tmp_path / "ds", val_fraction=0)
    assert s.kept == len(clean) and s.dnsmos.startswith("unavailable: DNSMOS needs speechmos") and len(calls) == 1
    assert s.dnsmos_mean is None and s.speaker_check.startswith("centroid of")
