"""RingBuffer and level meter: exact contents after wrap-around, fixed memory, dBFS values."""

import numpy as np
import pytest

from capture.ring import FLOOR_DB, RingBuffer, levels


def pcm16(x) -> np.ndarray:
    """What 16-bit storage (the ring, the FLAC chunks) gives back for float samples."""
    return (np.rint(np.clip(np.asarray(x, np.float32), -1, 1) * 32767) / 32767).astype(np.float32)


def test_ring_keeps_exactly_the_newest_audio_across_wraps():
    rng = np.random.default_rng(0)
    ring = RingBuffer(seconds=1.0, rate=1000, channels=2)
    nbytes = ring.nbytes
    assert nbytes == 1000 * 2 * 2  # 16-bit samples
    ref = []
    for _ in range(200):  # ~20 capacities of random-sized blocks (some louder than full scale: clipped)
        b = (0.4 * rng.standard_normal((int(rng.integers(1, 180)), 2))).astype(np.float32)
        ring.append(b)
        ref.append(pcm16(b))
    allref = np.concatenate(ref)
    assert np.abs(allref).max() == 1.0
    assert ring.total_frames == len(allref)
    assert ring.fill == 1.0
    np.testing.assert_array_equal(ring.last(), allref[-1000:])
    np.testing.assert_array_equal(ring.last(0.25), allref[-250:])
    data, first = ring.last_frames(300)
    np.testing.assert_array_equal(data, allref[-300:])
    assert first == len(allref) - 300
    assert ring.nbytes == nbytes  # memory fixed however long it runs


def test_ring_block_longer_than_capacity_and_partial_fill():
    ring = RingBuffer(seconds=0.1, rate=100, channels=1)  # 10 frames
    ring.append(np.arange(4, dtype=np.float32) / 32767)
    assert ring.fill == pytest.approx(0.4)
    np.testing.assert_array_equal(ring.last(10.0)[:, 0], pcm16(np.arange(4) / 32767))  # asks more than held
    ring.append(np.arange(100, 125, dtype=np.float32) / 32767)
    np.testing.assert_array_equal(ring.last()[:, 0], pcm16(np.arange(115, 125) / 32767))
    assert ring.total_frames == 29
    with pytest.raises(ValueError):
        ring.append(np.zeros((3, 2), np.float32))


def test_levels_of_sine_and_silence():
    t = np.arange(48000) / 48000
    sine = 0.5 * np.sin(2 * np.pi * 440 * t)
    block = np.stack([sine, np.zeros_like(sine)], axis=1)
    rms, peak = levels(block)
    assert peak[0] == pytest.approx(-6.0, abs=0.1)
    assert rms[0] == pytest.approx(-9.0, abs=0.1)
    assert rms[1] == FLOOR_DB and peak[1] == FLOOR_DB
