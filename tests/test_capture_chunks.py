"""Chunk folders: writer + gaps + concat round trip, recovery after a crash, and a real disk-full (tiny tmpfs)."""

import errno
import json

import numpy as np
import pytest
import soundfile as sf

from capture.chunks import ChunkWriter, concat_chunks, read_manifest, recover
from tests.desktop_env import skip_or_fail

RATE = 8000


def noise(seconds, ch=2, seed=0, amp=0.3):
    return (amp * np.random.default_rng(seed).uniform(-1, 1, (int(seconds * RATE), ch))).astype(np.float32)


def feed(w, audio, block=800, gap=False):
    for i in range(0, len(audio), block):
        w.add(audio[i:i + block], gap=gap)


def test_writer_gaps_and_concat_keep_the_timeline(tmp_path):
    w = ChunkWriter(tmp_path / "rec", rate=RATE, channels=2, source="loopback", chunk_seconds=1.0)
    a, b = noise(2.5, seed=1), noise(1.2, seed=2)
    feed(w, a)
    feed(w, np.zeros((int(3 * RATE), 2), np.float32), gap=True)  # silence not stored
    feed(w, b)
    info = w.close()
    assert info.closed and info.duration == pytest.approx(6.7)
    assert info.audio_seconds == pytest.approx(3.7)
    assert [c.start for c in info.chunks] == [0, 8000, 16000, 44000, 52000]  # partial chunk flushed before the gap
    assert info.gaps == [(2.5, 5.5)]
    files = sorted(p.name for p in (tmp_path / "rec").iterdir())
    assert files == ["chunk_000001.flac", "chunk_000002.flac", "chunk_000003.flac", "chunk_000004.flac",
                     "chunk_000005.flac", "manifest.json"]
    out = concat_chunks(tmp_path / "rec", tmp_path / "all.flac")
    data, rate = sf.read(out, dtype="float32")
    assert rate == RATE and data.shape == (int(6.7 * RATE), 2)
    q = 1 / 32768 + 1e-6  # 16-bit quantisation
    assert np.abs(data[:len(a)] - a).max() <= q
    assert np.abs(data[len(a):len(a) + 3 * RATE]).max() == 0
    assert np.abs(data[len(a) + 3 * RATE:] - b).max() <= q
    m = read_manifest(tmp_path / "rec")
    assert m["closed"] and m["rate"] == RATE and m["gaps"] == [{"start": 20000, "end": 44000}]


def test_recover_after_crash_adds_unlisted_chunks_and_drops_part(tmp_path):
    folder = tmp_path / "rec"
    w = ChunkWriter(folder, rate=RATE, channels=2, chunk_seconds=1.0)
    audio = noise(5.0, seed=3)
    feed(w, audio[:3 * RATE])
    stale = (folder / "manifest.json").read_bytes()  # the manifest as of chunk 3
    feed(w, audio[3 * RATE:])
    # the state a kill -9 can leave: chunks 4-5 renamed but the manifest not yet rewritten, a chunk in flight
    (folder / "manifest.json").write_bytes(stale)
    (folder / "chunk_000006.flac.part").write_bytes(b"fLaC half written")
    (folder / "frames").mkdir()
    (folder / "frames" / "frame_000001.500.jpg").write_bytes(b"\xff\xd8jpeg")
    assert not read_manifest(folder)["closed"]
    info = recover(folder)
    assert info.closed and len(info.chunks) == 5
    assert [c.start for c in info.chunks] == [0, 8000, 16000, 24000, 32000]
    assert info.duration == pytest.approx(5.0)
    assert [(f.file, f.t) for f in info.frames] == [("frames/frame_000001.500.jpg", 1.5)]
    assert not list(folder.glob("*.part"))
    assert recover(folder).duration == pytest.approx(5.0)  # idempotent
    data, _ = sf.read(concat_chunks(folder, tmp_path / "r.flac"), dtype="float32")
    assert np.abs(data - audio).max() <= 1 / 32768 + 1e-6


def test_recover_closes_an_open_gap_and_skips_a_broken_chunk(tmp_path):
    folder = tmp_path / "rec"
    w = ChunkWriter(folder, rate=RATE, channels=1, chunk_seconds=1.0)
    feed(w, noise(2.0, ch=1))
    feed(w, np.zeros((RATE * 2, 1), np.float32), gap=True)  # killed during a silent stretch
    (folder / "chunk_000002.flac").write_bytes(b"garbage")  # corrupt a listed chunk
    info = recover(folder)
    assert [c.file for c in info.chunks] == ["chunk_000001.flac"]
    assert info.gaps and info.gaps[0][0] == pytest.approx(2.0)
    assert read_manifest(folder)["closed"] is True


@pytest.fixture
def tiny_disk():
    """A real 256 KiB tmpfs (needs root / CAP_SYS_ADMIN)."""
    from tests.pulse_env import tiny_tmpfs

    try:
        with tiny_tmpfs("256k") as mnt:
            yield mnt
    except PermissionError as e:
        skip_or_fail(str(e))


def test_disk_full_raises_enospc_and_keeps_what_was_written(tiny_disk, tmp_path):
    w = ChunkWriter(tiny_disk / "rec", rate=RATE, channels=2, chunk_seconds=0.5)
    audio = noise(60.0, seed=5, amp=0.9)  # incompressible: ~8 KiB per 0.5 s chunk
    with pytest.raises(OSError) as e:
        feed(w, audio)
    assert e.value.errno == errno.ENOSPC
    info = w.abort(f"disk full: {e.value.strerror}")
    assert not list((tiny_disk / "rec").glob("*.part"))
    info = recover(tiny_disk / "rec")
    assert len(info.chunks) >= 3
    for c in info.chunks:
        assert sf.info(str(tiny_disk / "rec" / c.file)).frames == c.frames
    data, _ = sf.read(concat_chunks(tiny_disk / "rec", tmp_path / "out.flac"), dtype="float32")
    n = len(info.chunks) * RATE // 2
    assert len(data) == n and np.abs(data - audio[:n]).max() <= 1 / 32768 + 1e-6


def test_open_recording_appends_to_its_events_log_instead_of_rewriting_the_manifest(tmp_path):
    """Each chunk costs one appended line (not a manifest rewrite that grows with the recording); a line torn by a
    crash is skipped; close folds the log into manifest.json and removes it."""
    folder = tmp_path / "rec"
    w = ChunkWriter(folder, rate=RATE, channels=1, chunk_seconds=0.25)
    header = (folder / "manifest.json").read_bytes()
    audio = noise(6.0, ch=1, seed=5)
    feed(w, audio[:RATE * 3])
    feed(w, np.zeros((RATE, 1), np.float32), gap=True)
    w.add_frame("frames/frame_000003.500.jpg", 3.5)
    feed(w, audio[RATE * 3:])
    assert (folder / "manifest.json").read_bytes() == header  # never rewritten while recording
    events = (folder / "events.jsonl").read_text().splitlines()
    assert len(events) == len(w.manifest["chunks"]) + 3  # chunks, gap start, gap end, frame
    live = read_manifest(folder)
    assert not live["closed"] and live["chunks"] == w.manifest["chunks"] and live["gaps"] == w.manifest["gaps"]
    assert live["frames"] == [{"file": "frames/frame_000003.500.jpg", "t": 3.5}]

    with open(folder / "events.jsonl", "ab") as f:  # what kill -9 in the middle of an append leaves
        f.write(b'{"e":"chunk","file":"chunk_0000')
    assert read_manifest(folder)["chunks"] == w.manifest["chunks"]
    info = recover(folder)
    assert info.closed and info.duration == pytest.approx(7.0)
    assert not (folder / "events.jsonl").exists()
    assert json.loads((folder / "manifest.json").read_text())["chunks"] == w.manifest["chunks"]

    w2 = ChunkWriter(tmp_path / "rec2", rate=RATE, channels=1, chunk_seconds=0.25)
    feed(w2, audio[:RATE])
    w2.close()
    assert sorted(p.name for p in (tmp_path / "rec2").iterdir() if not p.name.startswith("chunk_")) == ["manifest.json"]
    assert len(read_manifest(tmp_path / "rec2")["chunks"]) == 4
