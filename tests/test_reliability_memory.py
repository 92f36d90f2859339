"""Long media in bounded memory: the streaming resampler, the one-pass decode, windowed analysis equal to whole-file
analysis, and a peak-RSS check of a real import + analysis that whole-file loading fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline import media
from pipeline.workflows import analysis
from pipeline.library import Library

REPO = Path(__file__).resolve().parents[1]


def _stream(rs: media.StreamResampler, x: np.ndarray, sizes) -> np.ndarray:
    out, i = [], 0
    for n in sizes:
        out.append(rs.push(x[i : i + n]))
        i += n
        if i >= len(x):
            break
    if i < len(x):
        out.append(rs.push(x[i:]))
    out.append(rs.flush())
    return np.concatenate(out)


@pytest.mark.parametrize("from_rate,channels", [(48000, 2), (44100, 1), (22050, 2)])
def test_stream_resampler_matches_whole_file_resample(from_rate, channels):
    rng = np.random.default_rng(1)
    n = int(3.3 * from_rate)
    t = np.arange(n) / from_rate
    tone = 0.4 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(n)
    x = np.stack([tone, 0.6 * tone], axis=1)[:, :channels].astype(np.float32)
    one = media.StreamResampler(from_rate, 16000, channels)
    ref = np.concatenate([one.push(x), one.flush()])
    sizes = rng.integers(1, 6000, size=10_000)
    got = _stream(media.StreamResampler(from_rate, 16000, channels), x, sizes)
    assert got.ndim == 1 and ref.ndim == 1
    assert abs(len(got) - len(ref)) <= 1 and abs(len(ref) - round(n * 16000 / from_rate)) <= 1
    m = min(len(got), len(ref))
    assert float(np.max(np.abs(got[:m] - ref[:m]))) < 1e-5
    # and it is a proper resampler: the band-limited tone matches scipy's polyphase resample away from the edges
    mono = x.mean(axis=1) if channels == 2 else x[:, 0]
    scipy_ref = media.resample(mono, from_rate, 16000)
    inner = slice(800, min(len(got), len(scipy_ref)) - 800)
    tone16 = 0.4 * np.sin(2 * np.pi * 440 * np.arange(len(got)) / 16000)
    assert np.corrcoef(got[inner], scipy_ref[inner])[0, 1] > 0.95
    assert np.corrcoef(got[inner], tone16[inner] * (0.8 if channels == 2 else 1))[0, 1] > 0.95


def test_stream_resampler_rejects_a_channel_mismatch():
    from pipeline.errors import BadInputError

    rs = media.StreamResampler(48000, 16000, 2)
    with pytest.raises(BadInputError):
        rs.push(np.zeros((100, 1), np.float32))


def test_one_pass_decode_writes_the_same_analysis_copy_as_resampling_the_dialogue(movie, tmp_path):
    """The 16 kHz copy made while decoding equals the old way: decode dialogue.flac again and resample it."""
    from tests.test_ingest_cli import last_line, weaver

    home = tmp_path / "home"
    item = int(last_line(weaver(home, "ingest", movie.movie, "--no-analysis")))
    lib = Library(home)
    m = lib.media(item)
    new, rate = media.read_audio_file(lib.abspath(m["analysis_path"]))
    assert rate == 16000
    old = media.load_audio(lib.abspath(m["dialogue_path"]), 16000)
    assert abs(len(new) - len(old)) <= 1
    k = min(len(new), len(old))
    assert float(np.max(np.abs(new[:k] - old[:k]))) < 2e-3  # int16 quantisation of both copies
    assert abs(len(new) / 16000 - m["duration"]) < 0.05


@pytest.mark.slow
def test_windowed_vad_and_diarization_equal_whole_file(movie, tmp_path, monkeypatch):
    """With 20 s windows (the movie is several times longer) the windowed VAD finds the same speech and the
    windowed diarizer the same turns as the stages running on the whole array."""
    from tests.test_ingest_cli import last_line, weaver

    pytest.importorskip("resemblyzer")
    from pipeline.stages import get_backend
    from pipeline.stages.diarize import VAD_PAD, VAD_THRESHOLD

    home = tmp_path / "home"
    item = int(last_line(weaver(home, "ingest", movie.movie, "--no-analysis")))
    lib = Library(home)
    whole = analysis.analysis_audio(lib, item)
    assert len(whole) / 16000 > 60
    vad = get_backend("vad", threshold=VAD_THRESHOLD)
    ref_regions = vad.speech_regions(whole, 16000, pad=VAD_PAD)
    dia = get_backend("diarize", "resemblyzer")
    ref = dia.diarize(whole, 16000, regions=None)
    monkeypatch.setattr(analysis, "ANALYSIS_WINDOW", 20.0)
    regions, rms = analysis.windowed_speech_regions(vad, lib, item, pad=VAD_PAD)
    assert abs(rms - float(np.sqrt(np.mean(np.square(whole, dtype=np.float64))))) < 1e-6
    assert len(regions) == pytest.approx(len(ref_regions), abs=2)
    speech = lambda rs: sum(r.end - r.start for r in rs)  # noqa: E731
    assert speech(regions) == pytest.approx(speech(ref_regions), rel=0.03)
    got = analysis.windowed_diarization(dia, lib, item)
    assert len(got.speakers()) == len(ref.speakers())

    def labels(d, t):
        return next((x.speaker for x in d.turns if x.start <= t < x.end), None)

    grid = np.arange(0, len(whole) / 16000, 0.1)
    pairs = [(labels(ref, t), labels(got, t)) for t in grid]
    pairs = [(a, b) for a, b in pairs if a or b]
    agree = sum(a == b for a, b in pairs) / len(pairs)
    assert agree > 0.95, f"windowed diarization agrees with the whole-file one on {agree:.0%} of speech"


def _silent_media(folder: Path, seconds: float) -> tuple[Path, Path]:
    """Mostly silent 48 kHz stereo FLAC-in-MKV (anullsrc, a 1 s tone at 30 s) and a one-line SRT."""
    media_path = folder / f"silent_{int(seconds)}.mkv"
    graph = f"anullsrc=r=48000:cl=stereo,atrim=0:{seconds}[s];sine=f=440:r=48000:d=1,adelay=30000|30000,aformat=channel_layouts=stereo[t];[s][t]amix=inputs=2:duration=first:normalize=0"
    r = subprocess.run(["ffmpeg", "-nostdin", "-y", "-loglevel", "error", "-filter_complex", graph, "-c:a", "flac",
                        "-sample_fmt", "s16", str(media_path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    srt = folder / "one.srt"
    srt.write_text("1\n00:00:30,000 --> 00:00:31,000\nHello there.\n")
    return media_path, srt


def peak_rss_of_ingest(media_path: Path, srt: Path, home: Path, code: Path = REPO) -> float:
    """Peak RSS (MB) of `python -m trayapp ingest` (import + the analysis chain) in a fresh library."""
    env = {**os.environ, "WEAVER_HOME": str(home), "PYTHONPATH": str(code)}
    p = subprocess.Popen([sys.executable, "-m", "trayapp", "ingest", str(media_path), "--subtitles", str(srt)],
                         cwd=code, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    assert p.returncode == 0, err.decode(errors="replace")[-500:]
    return usage.ru_maxrss / 1024


# Measured on this machine kind (2 shared cores, CPU torch), import + analysis with one subtitle line, peak RSS of
# 1-min -> 20-min file: whole-file code (before windowing) 473 -> 801 MB (+328), windowed code 480 -> 576 MB (+96:
# one 10-minute analysis window, the most it ever holds). The limit sits between the two growths.
RSS_LIMIT_MB = 200.0


@pytest.mark.slow
def test_twenty_minutes_of_media_import_and_analyse_in_bounded_memory(tmp_path):
    """Whole-file loading holds 20 min x 16 kHz x (4-8 B) several times over (decode, VAD, diarizer): ~330 MB
    more than a 1-minute file. Windowed analysis adds only what one 10-minute window needs (~100 MB)."""
    long_media, srt = _silent_media(tmp_path, 20 * 60)
    short_media, _ = _silent_media(tmp_path, 60)
    short = peak_rss_of_ingest(short_media, srt, tmp_path / "home-short")
    long = peak_rss_of_ingest(long_media, srt, tmp_path / "home-long")
    assert long - short < RSS_LIMIT_MB, f"20 min peaked at {long:.0f} MB, 1 min at {short:.0f} MB"


def test_silence_windows_cut_only_in_pauses_and_cover_the_file():
    from pipeline.types import Region

    regions = [Region(t, t + 5.0) for t in np.arange(3.0, 1500.0, 7.3)]
    windows = analysis.silence_windows(1500.0, regions, 600.0)
    assert windows[0][0] == 0.0 and windows[-1][1] == 1500.0
    assert all(a[1] == b[0] for a, b in zip(windows, windows[1:]))
    assert all(0 < b - a <= 600.0 for a, b in windows)
    for cut in [b for _, b in windows[:-1]]:
        assert not any(r.start < cut < r.end for r in regions), f"cut at {cut} splits speech"
    assert len(windows) == 3
    assert analysis.silence_windows(500.0, regions, 600.0) == [(0.0, 500.0)]
    # no speech at all: plain cuts, still within the window length
    assert all(b - a <= 600.0 for a, b in analysis.silence_windows(3600.0, [], 600.0))


def test_line_chunks_hold_every_line_with_its_margin_inside_one_window():
    from pipeline.types import Line

    lines = [Line(start=float(t), end=float(t) + 2.5, text="x", index=i) for i, t in enumerate(range(1, 2000, 9))]
    chunks = analysis.line_chunks(lines, 2005.0, 1.75, 600.0)
    assert [j for _, _, idx in chunks for j in idx] == list(range(len(lines)))
    for t0, t1, idx in chunks:
        assert t1 - t0 <= 600.0 + 0.01
        assert round(t0 * 100) == t0 * 100  # whole 10 ms: a whole number of samples
        assert all(t0 <= lines[j].start - 1.75 + 1e-9 or t0 == 0.0 for j in idx)
        assert all(lines[j].end + 1.75 <= t1 + 1e-9 or t1 == 2005.0 for j in idx)
    assert analysis.line_chunks(lines[:3], 100.0, 1.75, 600.0) == [(0.0, 100.0, [0, 1, 2])]
    moved = analysis.shift_line(lines[5], -10.0)
    assert moved.start == lines[5].start - 10.0 and lines[5].start == 46.0  # the input is not changed
