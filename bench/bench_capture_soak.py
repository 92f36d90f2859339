"""Loopback capture soak: N minutes of CaptureSession recording while paplay loops speech, vs a bare soundcard loop.

Runs its own private PulseAudio (null sink) unless --use-current is given. Prints dropped frames, CPU % of
one core (process CPU time / wall; the player runs in other processes), RSS at start / after the ring filled /
at the end, bytes written per minute, and the same CPU figure for a bare `recorder.record()` loop at the
same read size, measured in the same run, with the ratio ours/bare.

    .venv/bin/python bench/bench_capture_soak.py --minutes 1
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import nullcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Player:
    """paplay the speech file over and over until stopped."""

    def __init__(self, wav: Path, device: str | None, env: dict):
        self.wav, self.device, self.env = wav, device, env
        self.stop_event = threading.Event()
        self.proc = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        cmd = ["paplay"] + ([f"--device={self.device}"] if self.device else []) + [str(self.wav)]
        while not self.stop_event.is_set():
            self.proc = subprocess.Popen(cmd, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.proc.wait()

    def stop(self):
        self.stop_event.set()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        self.thread.join(timeout=5)


def bare_loop(seconds: float, device_id: str, rate: int, read_frames: int, device_block: int) -> dict:
    from capture.devices import soundcard_module

    sc = soundcard_module()
    mic = sc.get_microphone(device_id, include_loopback=True)
    with mic.recorder(samplerate=rate, channels=2, blocksize=device_block) as r:
        r.record(read_frames)
        c0, t0, n = cpu_s(), time.monotonic(), 0
        while time.monotonic() - t0 < seconds:
            n += len(r.record(read_frames))
        wall, cpu = time.monotonic() - t0, cpu_s() - c0
    return {"wall": wall, "cpu_pct": 100 * cpu / wall, "frames": n, "deficit_s": wall - n / rate}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--bare-seconds", type=float, default=None, help="bare loop length (default: min(60, soak))")
    ap.add_argument("--buffer-seconds", type=float, default=60.0, help="ring length (short, so it fills in the soak)")
    ap.add_argument("--use-current", action="store_true", help="use the running sound server's default output")
    ap.add_argument("--out", default=None, help="folder for the recording (default: a temp dir, removed)")
    a = ap.parse_args()

    from tests.pulse_env import private_pulseaudio, speech_wav
    from capture.session import CaptureSession

    tmp = Path(tempfile.mkdtemp(prefix="vw-soak-"))
    out_root = Path(a.out) if a.out else tmp / "caps"
    wav = speech_wav(tmp / "speech.wav", "This is a long running capture test. The quick brown fox jumps over the lazy "
                     "dog, again and again, while the recorder keeps writing small chunks to the disk.")
    ctx = nullcontext(None) if a.use_current else private_pulseaudio(sinks=("vw_soak",))
    soak_s = a.minutes * 60
    bare_s = a.bare_seconds if a.bare_seconds is not None else min(60.0, soak_s)
    try:
        with ctx as pa:
            env = pa.env if pa else dict(os.environ)
            player = Player(wav, "vw_soak" if pa else None, env)
            try:
                s = CaptureSession("loopback", out_root=out_root, buffer_seconds=a.buffer_seconds)
                s.start()
                assert s.wait_for_audio(10), s.status().error
                device_id = s._devices[0].id
                folder = s.start_recording()
                rss0, c0, t0 = rss_mb(), cpu_s(), time.monotonic()
                rss_full = None
                while time.monotonic() - t0 < soak_s:
                    time.sleep(1.0)
                    st = s.status()
                    if rss_full is None and st.buffer_fill >= 1.0:
                        rss_full = rss_mb()
                    if st.error:
                        print("error:", st.error)
                        break
                wall, cpu = time.monotonic() - t0, cpu_s() - c0
                st = s.status()
                info = s.stop_recording()
                rss1 = rss_mb()
                s.close()
                bare = bare_loop(bare_s, device_id, s.rate, s.block_frames, s.device_block)
            finally:
                player.stop()
    finally:
        if not a.out:
            shutil.rmtree(tmp, ignore_errors=True)
    ours = 100 * cpu / wall
    print(f"soak: {wall / 60:.2f} min loopback @ {s.rate} Hz x{s.channels}, read {s.block_frames} frames "
          f"(device fragment {s.device_block}), chunks {s.chunk_seconds:g} s, ring {a.buffer_seconds:g} s")
    print(f"recorded: {info.duration:.1f} s timeline, {info.audio_seconds:.1f} s stored in {len(info.chunks)} chunks, "
          f"gaps {len(info.gaps)}, error {st.error}")
    print(f"dropped frames: {st.dropped_frames} (audio clock vs wall: captured {st.listened:.2f} s)")
    print(f"capture CPU: {ours:.2f} % of one core (process CPU {cpu:.1f} s / wall {wall:.1f} s)")
    print(f"RSS: start {rss0:.1f} MB, ring full {rss_full if rss_full is None else round(rss_full, 1)} MB, "
          f"end {rss1:.1f} MB (ring {s.ring.nbytes / 1e6:.1f} MB)")
    print(f"bytes written: {info.bytes / 1e6:.2f} MB = {info.bytes / 1e6 / (wall / 60):.2f} MB/min")
    print(f"bare soundcard loop ({bare['wall']:.0f} s, same read size): {bare['cpu_pct']:.2f} % of one core, "
          f"clock deficit {bare['deficit_s']:.2f} s")
    print(f"ratio ours/bare CPU: {ours / max(bare['cpu_pct'], 1e-6):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
