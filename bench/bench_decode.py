"""Decode speed of the import path, as "x realtime": the fixture movie and a long generated file.

Times `pipeline.media.iter_audio` (PyAV decode of the 5.1 track, centre channel, native rate — what the import's
decode stage does) and the same decode by the raw PyAV loop, and prints ours / raw.
Run: .venv/bin/python bench/bench_decode.py [--minutes 30]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline import media  # noqa: E402


def ours(path: Path) -> tuple[float, int]:
    t = time.perf_counter()
    n = sum(len(b) for b in media.iter_audio(path, sample_rate=None, audio_track=0, channels="centre"))
    return time.perf_counter() - t, n


def raw(path: Path) -> float:
    """The bare library loop: demux + decode every frame of the first audio stream."""
    import av

    t = time.perf_counter()
    with av.open(str(path)) as c:
        s = c.streams.audio[0]
        for packet in c.demux(s):
            for frame in packet.decode():
                frame.to_ndarray()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=30.0)
    a = ap.parse_args()
    from tests.fixtures.movie import generate_long_media, generate_movie

    with tempfile.TemporaryDirectory() as tmp:
        fx = generate_movie(Path(tmp) / "movie")
        long_file = generate_long_media(Path(tmp) / "long.mkv", a.minutes, source=fx)
        print(f"{'file':24s} {'media s':>8s} {'ours s':>8s} {'x realtime':>11s} {'raw s':>7s} {'ours/raw':>9s}")
        for name, path in (("fixture movie", fx.movie), (f"{a.minutes:g}-min generated", long_file)):
            dur = media.probe(path).duration
            r = raw(path)
            o, n = ours(path)
            print(f"{name:24s} {dur:8.1f} {o:8.2f} {dur / o:10.0f}x {r:7.2f} {o / r:8.2f}x")


if __name__ == "__main__":
    main()
