"""Screen frames on a private Xvfb: colours grabbed by mss, regions, formats, and frames on the audio clock."""

import io
import json
import os
import shutil
import subprocess
import time

import numpy as np
import pytest

from tests.desktop_env import need_binaries
from PIL import Image

from capture.frames import FrameGrabber, grab_once


need = need_binaries


@pytest.fixture(scope="module")
def display():
    need("Xvfb", "display")
    from tests.pulse_env import xvfb_display

    with xvfb_display(640, 480) as d:
        yield d


def root(colour, tmp=[]):
    """Paint the root window one colour (ImageMagick `display -window root`; xsetroot paints nothing on Xvfb here)."""
    import tempfile

    path = os.path.join(tempfile.gettempdir(), f"vw-root-{os.getpid()}-{colour.strip('#')}.png")
    Image.new("RGB", (64, 64), colour).save(path)
    subprocess.run(["display", "-window", "root", path], timeout=20, capture_output=True)  # exits 1 even when it worked


def mean_rgb(data):
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float32).reshape(-1, 3).mean(axis=0)


def test_grab_whole_screen_region_and_webp(display):
    root("red")
    f = grab_once()
    assert (f.width, f.height, f.ext) == (640, 480, "jpg")
    r, g, b = mean_rgb(f.data)
    assert r > 230 and g < 25 and b < 25
    root("blue")
    g2 = FrameGrabber((10, 20, 100, 50), fmt="webp")
    try:
        f2 = g2.grab()
    finally:
        g2.close()
    assert (f2.width, f2.height, f2.ext) == (100, 50, "webp")
    assert Image.open(io.BytesIO(f2.data)).format == "WEBP"
    r, g, b = mean_rgb(f2.data)
    assert b > 230 and r < 25 and g < 25


def test_frames_are_stamped_on_the_audio_clock(display, tmp_path):
    need("pulseaudio", "pactl", "paplay")
    from tests.pulse_env import private_pulseaudio
    from capture.session import CaptureSession

    root("red")
    with private_pulseaudio(sinks=("vw_frames",)):
        s = CaptureSession("loopback", out_root=tmp_path, buffer_seconds=20, frames=True, frame_interval=0.25)
        s.start()
        try:
            assert s.wait_for_audio(10)
            folder = s.start_recording()
            deadline = time.monotonic() + 10
            while s.status().elapsed < 1.5 and time.monotonic() < deadline:
                time.sleep(0.05)
            switch_at = s.status().elapsed  # audio-clock time of the colour change
            root("blue")
            while s.status().elapsed < switch_at + 1.5 and time.monotonic() < deadline:
                time.sleep(0.05)
            info = s.stop_recording()
            saved = s.save_last(2.0, tmp_path / "saved")  # the frame ring follows the audio ring
        finally:
            s.close()
    assert 5 <= len(saved.frames) <= 10 and all(0 <= f.t <= 2.0 for f in saved.frames)
    assert all((saved.folder / f.file).stat().st_size > 0 for f in saved.frames)
    assert info.frames and len(info.frames) >= 8
    ts = [f.t for f in info.frames]
    assert ts == sorted(ts) and 0 <= ts[0] and ts[-1] <= info.duration + 0.3
    assert all(0.15 < b - a < 0.4 for a, b in zip(ts, ts[1:]))
    for f in info.frames:
        r, g, b = mean_rgb((folder / f.file).read_bytes())
        if f.t < switch_at - 0.3:
            assert r > 200 and b < 60, f
        elif f.t > switch_at + 0.3:
            assert b > 200 and r < 60, f
    m = json.loads((folder / "manifest.json").read_text())
    assert [f["t"] for f in m["frames"]] == ts
