"""CaptureSession: read a sound source in the background into a rolling buffer; record to chunks on demand.

Threads: a reader (blocks of `block_seconds` from soundcard → ring buffer, levels, silence, drop
estimate, and a bounded queue to the writer), a writer per recording (FLAC chunks + manifest, see
:mod:`capture.chunks`), and optionally a frame grabber (mss, ~1 fps). Frame timestamps are on the audio
clock: seconds since the recording's first sample, derived from the samples captured.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import queue
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import devices
from .chunks import FRAMES_DIR, ChunkWriter, RecordingInfo, atomic_write_bytes, frame_name, new_recording_folder
from .errors import CaptureBadInputError, CaptureError, CaptureStorageError
from .ring import FLOOR_DB, RingBuffer, levels

SOURCES = ("loopback", "mic", "both")


@dataclass
class CaptureStatus:
    source: str
    device: str  # human-readable device name(s)
    running: bool
    recording: bool
    elapsed: float  # seconds of the current recording (audio clock); while only buffering, seconds listened
    buffer_fill: float  # 0..1
    buffer_seconds: float
    dropped_frames: int
    bytes_written: int  # bytes of the current (or last) recording's chunks and frames
    rms_db: list[float] = field(default_factory=list)  # per channel, over the last 0.3 s
    peak_db: list[float] = field(default_factory=list)
    silent: bool = False  # silent for at least silence_seconds (chunks are not being written)
    error: str | None = None
    device_id: str | None = None
    rate: int = 48000
    channels: int = 2
    listened: float = 0.0  # seconds captured since start()
    recording_folder: str | None = None  # current recording, or one an error ended that stop_recording() returns
    frames_captured: int = 0
    frame_error: str | None = None


# -- Windows/macOS soundcard backends warn "data discontinuity in recording" on overruns ------------
_DISCONTINUITIES = 0
_HOOKED = False


def _hook_discontinuity_warnings() -> None:
    global _HOOKED
    if _HOOKED:
        return
    _HOOKED = True
    original = warnings.showwarning
    warnings.filterwarnings("always", message=".*data discontinuity.*")

    def show(message, category, filename, lineno, file=None, line=None):
        global _DISCONTINUITIES
        if "discontinuity" in str(message):
            _DISCONTINUITIES += 1
            return
        original(message, category, filename, lineno, file, line)

    warnings.showwarning = show


class _Recording:
    """One recording in progress: a ChunkWriter fed by a bounded queue from the reader, in its own thread."""

    def __init__(self, writer: ChunkWriter, queue_blocks: int, on_fail):
        self.writer = writer
        self.folder = writer.folder
        self.start_frame: int | None = None  # absolute ring position of the recording's first sample
        self.queue: queue.Queue = queue.Queue(maxsize=max(4, queue_blocks))
        self.pending_skip = 0
        self.failed = threading.Event()
        self.info: RecordingInfo | None = None
        self.error: str | None = None
        self._on_fail = on_fail
        self.thread = threading.Thread(target=self._run, name="capture-writer", daemon=True)
        self.thread.start()

    def put_audio(self, block: np.ndarray, gap: bool, abs_start: int) -> bool:
        """Queue a block (never blocks the reader); False when the queue was full and the block was dropped."""
        if self.start_frame is None:
            self.start_frame = abs_start
        try:
            self.queue.put_nowait(("audio", block, gap, self.pending_skip))
            self.pending_skip = 0
            return True
        except queue.Full:
            self.pending_skip += len(block)
            return False

    def put_control(self, item: tuple) -> None:
        while self.thread.is_alive():
            try:
                self.queue.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def finish(self, error: str | None = None) -> RecordingInfo:
        """Close the recording (idempotent; waits for the writer) and return its info."""
        if threading.current_thread() is not self.thread:
            self.put_control(("stop", error))
            self.thread.join()
        return self.info

    def _run(self) -> None:
        w = self.writer
        try:
            while True:
                try:
                    item = self.queue.get(timeout=2.0)
                except queue.Empty:
                    w.sync()
                    continue
                kind = item[0]
                if kind == "audio":
                    _, block, gap, skipped = item
                    if skipped:
                        w.skip(skipped)
                    w.add(block, gap=gap)
                elif kind == "frame":
                    w.add_frame(item[1], item[2], item[3])
                elif kind == "stop":
                    self.info = w.close(item[1])
                    return
        except OSError as e:
            kept = sum(c["frames"] for c in w.manifest["chunks"]) / w.rate
            if e.errno == errno.ENOSPC:
                msg = f"disk full: recording stopped, {kept:.0f} s kept in {self.folder} ({e.strerror})"
            else:
                msg = f"cannot write the recording ({e}); recording stopped, audio so far kept in {self.folder}"
            self.error = msg
            self.failed.set()
            self.info = w.abort(msg)
            self._on_fail(self, msg)
        except Exception as e:  # never leave a recording without an info
            msg = f"recording writer failed: {type(e).__name__}: {e}"
            self.error = msg
            self.failed.set()
            self.info = w.abort(msg)
            self._on_fail(self, msg)


class _Fifo:
    """One source read continuously (small reads) in its own thread into a mono sample FIFO."""

    def __init__(self, recorder, read_frames: int, name: str, cond: threading.Condition, stop: threading.Event):
        self.rec, self.read_frames, self.name = recorder, read_frames, name
        self.cond, self.stop_event = cond, stop
        self.parts: collections.deque = collections.deque()
        self.count = 0
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=f"capture-src-{name}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while not self.stop_event.is_set():
                d = self.rec.record(self.read_frames)
                mono = d.mean(axis=1).astype(np.float32) if d.shape[1] > 1 else d[:, 0].astype(np.float32)
                with self.cond:
                    self.parts.append(mono)
                    self.count += len(mono)
                    self.cond.notify_all()
        except BaseException as e:
            with self.cond:
                self.error = e
                self.cond.notify_all()

    def take(self, n: int) -> np.ndarray:
        """Pop up to n samples (caller holds cond)."""
        out, need = [], n
        while need > 0 and self.parts:
            p = self.parts[0]
            if len(p) <= need:
                out.append(self.parts.popleft())
                need -= len(p)
            else:
                out.append(p[:need])
                self.parts[0] = p[need:]
                need = 0
        got = n - need
        self.count -= got
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    def drop(self, n: int) -> None:
        self.take(min(n, self.count))


class _Mixer:
    """Source "both": loopback (mono mix) on ch0 paced by its own clock, mic on ch1 kept aligned to it.

    Each device is read by its own thread so neither builds a backlog in the sound server; at the start both
    FIFOs are emptied together (streams start with different delays), later the mic is padded with zeros
    (late) or trimmed (ahead) when it drifts more than `slack` from the loopback.
    """

    def __init__(self, recorders, read_frames: int, rate: int, names: list[str], slack: float = 0.25):
        self.cond = threading.Condition()
        self.stop_event = threading.Event()
        self.fifos = [_Fifo(r, read_frames, n, self.cond, self.stop_event) for r, n in zip(recorders, names)]
        self.rate = rate
        self.slack = int(slack * rate)
        self.aligned = False
        self.corrected = 0  # samples padded or trimmed on the mic channel

    def _check(self) -> None:
        for f in self.fifos:
            if f.error is not None:
                raise f.error

    def read(self, n: int) -> np.ndarray:
        loop, mic = self.fifos
        with self.cond:
            if not self.aligned:
                deadline = time.monotonic() + 10.0
                while not (loop.count and mic.count):
                    self._check()
                    if time.monotonic() > deadline:
                        late = loop.name if not loop.count else mic.name
                        raise RuntimeError(f"no audio arrives from '{late}'")
                    self.cond.wait(0.1)
                loop.drop(loop.count)
                mic.drop(mic.count)
                self.aligned = True
            while loop.count < n:
                self._check()
                self.cond.wait(1.0)
            if mic.count < n:
                deadline = time.monotonic() + 0.2
                while mic.count < n and time.monotonic() < deadline:
                    self._check()
                    self.cond.wait(0.05)
            a = loop.take(n)
            b = mic.take(n)
            if len(b) < n:
                self.corrected += n - len(b)
                b = np.concatenate([b, np.zeros(n - len(b), np.float32)])
            excess = mic.count - loop.count - self.slack
            if excess > 0:
                mic.drop(excess)
                self.corrected += excess
        return np.stack([a, b], axis=1)

    def stop(self) -> None:
        self.stop_event.set()
        for f in self.fifos:
            f.thread.join(timeout=3.0)


class CaptureSession:
    """A background capture of one source into a rolling buffer, with recordings to chunk folders.

    source: "loopback" (what the default output — or `device_id`'s output — plays; 2 channels),
    "mic" (default or `device_id` input; 1 channel) or "both" (2 channels: ch0 = loopback mono mix of
    `loopback_id` or the default output, ch1 = mic `device_id` or the default input).
    """

    def __init__(self, source: str = "loopback", device_id: str | None = None, buffer_seconds: float = 600,
                 frames: bool = False, frame_interval: float = 1.0, region=None, chunk_seconds: float = 2.0,
                 out_root: Path = Path("captures"), rate: int = 48000, *, loopback_id: str | None = None,
                 block_seconds: float = 0.1, silence_seconds: float | None = 30.0, silence_db: float = -60.0,
                 frame_format: str = "jpeg", frame_quality: int = 75, frame_max_width: int | None = 1280,
                 queue_seconds: float = 30.0, fsync: bool = True, device_block: int = 1024):
        if source not in SOURCES:
            raise CaptureBadInputError(f"source must be one of {', '.join(SOURCES)}, not {source!r}")
        if buffer_seconds <= 0 or chunk_seconds <= 0 or rate <= 0 or block_seconds <= 0:
            raise CaptureBadInputError("buffer, chunk and block lengths and the rate must be positive")
        if frames and frame_interval <= 0:
            raise CaptureBadInputError("frame_interval must be positive")
        self.source = source
        self.device_id = device_id
        self.loopback_id = loopback_id
        self.buffer_seconds = float(buffer_seconds)
        self.frames = bool(frames)
        self.frame_interval = float(frame_interval)
        self.region = region
        self.chunk_seconds = float(chunk_seconds)
        self.out_root = Path(out_root)
        self.rate = int(rate)
        self.block_frames = max(1, int(round(block_seconds * rate)))
        # the sound server's fragment: small, because PulseAudio rewinds a monitor's unread data when a new
        # stream starts playing and ~1 fragment of sound goes missing (90 ms at 4800 frames, ~3 ms at 1024)
        self.device_block = max(64, min(int(device_block), self.block_frames))
        self.silence_seconds = silence_seconds
        self.silence_db = float(silence_db)
        self.frame_format = frame_format
        self.frame_quality = frame_quality
        self.frame_max_width = frame_max_width
        self.queue_blocks = max(4, int(queue_seconds * rate / self.block_frames))
        self.fsync = fsync
        self.channels = 1 if source == "mic" else 2

        self._lock = threading.RLock()
        self._stack: contextlib.ExitStack | None = None
        self._recorders: list = []
        self._devices: list[devices.Device] = []
        self._reader: threading.Thread | None = None
        self._framer: threading.Thread | None = None
        self._stop = threading.Event()
        self._ring: RingBuffer | None = None
        self._running = False
        self._error: str | None = None
        self._frame_error: str | None = None
        self._rec: _Recording | None = None
        self._ended: _Recording | None = None  # a recording an error stopped, until stop_recording() collects it
        self._last_info: RecordingInfo | None = None
        self._frame_ring: collections.deque = collections.deque()
        self._frames_captured = 0
        self._mixer: _Mixer | None = None
        self._latency_hint = 0.0
        self._reset_clock()

    def _reset_clock(self) -> None:
        self._t_first: float | None = None
        self._f_first = 0
        self._clock: tuple[int, float] | None = None  # (frames captured, monotonic time they arrived)
        self._last_pos = 0  # last position _pos_at returned (keeps frame stamps monotonic)
        self._wall0 = time.time()
        self._dropped = 0
        self._queue_dropped = 0
        self._silent_run = 0
        self._disc_seen = _DISCONTINUITIES

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Open the device(s) and start filling the rolling buffer; raises a CaptureError when there is none."""
        with self._lock:
            if self._running:
                return
            self._open_devices()
            self._ring = RingBuffer(self.buffer_seconds, self.rate, self.channels)
            self._frame_ring = collections.deque(maxlen=max(1, int(self.buffer_seconds / self.frame_interval) + 2))
            self._reset_clock()
            self._mixer = None
            self._error = None
            self._frame_error = None
            self._stop.clear()
            self._running = True
            _hook_discontinuity_warnings()
            self._reader = threading.Thread(target=self._read_loop, name="capture-reader", daemon=True)
            self._reader.start()
            if self.frames:
                self._framer = threading.Thread(target=self._frame_loop, name="capture-frames", daemon=True)
                self._framer.start()

    def _open_devices(self) -> None:
        plan = {"loopback": [("loopback", self.device_id, 2)], "mic": [("mic", self.device_id, 1)],
                "both": [("loopback", self.loopback_id, 2), ("mic", self.device_id, 1)]}[self.source]
        stack = contextlib.ExitStack()
        recs, devs = [], []
        try:
            for kind, dev_id, ch in plan:
                mic, dev = devices.find_source(kind, dev_id)
                try:
                    recs.append(stack.enter_context(mic.recorder(samplerate=self.rate, channels=ch,
                                                                 blocksize=self.device_block)))
                except (RuntimeError, AssertionError, TypeError) as e:
                    raise devices.AudioBackendError(f"cannot open audio device '{dev.name}': {e}") from None
                devs.append(dev)
        except BaseException:
            with contextlib.suppress(Exception):
                stack.close()
            raise
        self._stack, self._recorders, self._devices = stack, recs, devs
        lat = 0.0
        with contextlib.suppress(Exception):
            lat = float(recs[0].latency)  # Linux only; often 0 for record streams
        self._latency_hint = min(max(lat, 0.0), 1.0) or self.block_frames / self.rate

    def wait_for_audio(self, timeout: float = 5.0) -> bool:
        """Block until the first samples arrived (a sound server may take ~2 s to deliver the first block)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._t_first is not None:
                    return True
                if not self._running:
                    return False
            time.sleep(0.02)
        return False

    def close(self) -> None:
        """Stop recording (closing the recording folder), stop the threads and release the device."""
        with contextlib.suppress(CaptureError):
            if self._rec is not None:
                self.stop_recording()
        self._stop.set()
        for t in (self._reader, self._framer):
            if t is not None and t is not threading.current_thread():
                t.join(timeout=5.0)
        with self._lock:
            self._running = False
            if self._stack is not None:  # the reader closes it; this covers a reader that never ran
                with contextlib.suppress(Exception):
                    self._stack.close()
                self._stack = None

    def __enter__(self) -> "CaptureSession":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- reader thread -----------------------------------------------------------------------------
    def _read_block(self) -> np.ndarray:
        if self.source == "both":
            return self._mixer.read(self.block_frames)
        d = self._recorders[0].record(self.block_frames)
        if self.source == "loopback":
            return d if d.shape[1] == 2 else np.repeat(d[:, :1], 2, axis=1)
        return d[:, :1] if d.shape[1] == 1 else d.mean(axis=1, keepdims=True)

    def _read_loop(self) -> None:
        rate = self.rate
        failure: str | None = None
        last_check = time.monotonic()
        silence_db = self.silence_db
        gap_frames = None if self.silence_seconds is None else self.silence_seconds * rate
        if self.source == "both":
            self._mixer = _Mixer(self._recorders, self.device_block, rate, [d.name for d in self._devices])
        try:
            while not self._stop.is_set():
                data = self._read_block()
                now = time.monotonic()
                n = len(data)
                if n == 0:
                    continue
                self._ring.append(data)
                total = self._ring.total_frames
                rms = float(np.sqrt(np.max(np.mean(np.square(data, dtype=np.float64), axis=0))))
                silent_block = 20.0 * np.log10(max(rms, 1e-12)) < silence_db
                with self._lock:
                    if self._t_first is None:
                        self._t_first, self._f_first = now, total
                        self._wall0 = time.time() - total / rate - self._latency_hint
                    self._clock = (total, now)
                    expected = (now - self._t_first) * rate
                    deficit = expected - (total - self._f_first) - (0.5 * rate + 2e-4 * expected)
                    if deficit > self._dropped:
                        self._dropped = int(deficit)
                    if _DISCONTINUITIES != self._disc_seen:
                        self._dropped += (_DISCONTINUITIES - self._disc_seen) * n
                        self._disc_seen = _DISCONTINUITIES
                    self._silent_run = self._silent_run + n if silent_block else 0
                    gap = gap_frames is not None and self._silent_run > gap_frames
                    rec = self._rec
                if rec is not None and not rec.failed.is_set():
                    if not rec.put_audio(data, gap, total - n):
                        self._queue_dropped += n
                if now - last_check >= 2.0:
                    last_check = now
                    gone = self._gone_device()
                    if gone:
                        failure = gone
                        break
        except Exception as e:
            failure = self._explain(e)
        finally:
            if self._mixer is not None:
                self._mixer.stop()
            with contextlib.suppress(Exception):
                if self._stack is not None:
                    self._stack.close()
            self._stack = None
            if failure:
                with self._lock:
                    self._error = failure
                    self._running = False
                    rec, self._rec = self._rec, None
                    if rec is not None:
                        self._ended = rec
                if rec is not None:
                    info = rec.finish(failure)
                    with self._lock:
                        self._last_info = info
            with self._lock:
                self._running = False
            self._stop.set()

    def _gone_device(self) -> str | None:
        if not devices.backend_alive():
            return "audio capture stopped: the sound server (PulseAudio/PipeWire) went away; audio up to here was kept"
        for d in self._devices:
            if not devices.device_present(d.id):
                return f"audio capture stopped: device '{d.name}' disappeared (unplugged?); audio up to here was kept"
        return None

    def _explain(self, e: Exception) -> str:
        gone = None
        with contextlib.suppress(Exception):
            gone = self._gone_device()
        return gone or f"audio capture stopped: {type(e).__name__}: {e}; audio up to here was kept"

    def _pos_at(self, t_mono: float) -> int | None:
        """Absolute sample position (audio clock) of what was playing at monotonic time t_mono."""
        with self._lock:
            if self._clock is None:
                return None
            frames, at = self._clock
            # the clock estimate is refreshed per audio block and jitters; a later frame never gets an earlier time
            pos = max(int(round(frames + (t_mono - at + self._latency_hint) * self.rate)), self._last_pos)
            self._last_pos = pos
        return pos

    # -- frames thread -----------------------------------------------------------------------------
    def _frame_loop(self) -> None:
        from .frames import FrameGrabber

        try:
            grabber = FrameGrabber(self.region, fmt=self.frame_format, quality=self.frame_quality,
                                   max_width=self.frame_max_width)
        except CaptureError as e:
            self._frame_error = f"screen frames unavailable: {e}"
            return
        try:
            next_t = time.monotonic()
            while not self._stop.wait(max(0.0, next_t - time.monotonic())):
                t_mono = time.monotonic()
                next_t += self.frame_interval
                if next_t < t_mono:
                    next_t = t_mono + self.frame_interval
                pos = self._pos_at(t_mono)
                if pos is None:
                    continue
                try:
                    fr = grabber.grab()
                except Exception as e:
                    self._frame_error = f"screen grab failed: {e}"
                    continue
                self._frames_captured += 1
                self._frame_ring.append((pos, fr))
                with self._lock:
                    rec = self._rec
                if rec is None or rec.failed.is_set() or rec.start_frame is None or pos < rec.start_frame:
                    continue
                t = (pos - rec.start_frame) / self.rate
                rel = f"{FRAMES_DIR}/{frame_name(t, fr.ext)}"
                try:
                    (rec.folder / FRAMES_DIR).mkdir(exist_ok=True)
                    atomic_write_bytes(rec.folder / rel, fr.data, fsync=False)
                except OSError as e:
                    self._frame_error = f"cannot write screen frames: {e}"
                    continue
                rec.put_control(("frame", rel, t, len(fr.data)))
        finally:
            grabber.close()

    # -- recording ---------------------------------------------------------------------------------
    def start_recording(self) -> Path:
        """Begin writing chunks from now into a new folder under out_root; returns the folder."""
        with self._lock:
            if not self._running:
                raise CaptureError(self._error or "the capture is not running; start it first")
            if self._rec is not None:
                return self._rec.folder
            started = time.time()
            try:
                folder = new_recording_folder(self.out_root, started)
                writer = ChunkWriter(folder, rate=self.rate, channels=self.channels, source=self.source,
                                     device=self.device_name, device_id=self.device_id, started_at=started,
                                     chunk_seconds=self.chunk_seconds, fsync=self.fsync)
            except OSError as e:
                raise CaptureStorageError(f"cannot start a recording in {self.out_root}: {e.strerror or e}") from None
            self._ended = None
            self._error = None
            self._rec = _Recording(writer, self.queue_blocks, self._writer_failed)
            self._last_info = None
            return folder

    def _writer_failed(self, rec: _Recording, msg: str) -> None:
        with self._lock:
            self._error = msg
            if self._rec is rec:
                self._rec = None
                self._ended = rec
                self._last_info = rec.info

    def stop_recording(self) -> RecordingInfo:
        """Close the current recording (or return the one an error stopped) and describe it."""
        ended = None
        with self._lock:
            rec, self._rec = self._rec, None
            if rec is None:
                ended, self._ended = self._ended, None
                if ended is None:
                    raise CaptureError("not recording")
        if ended is not None:
            return ended.finish(None)
        info = rec.finish(None)
        with self._lock:
            self._last_info = info
        return info

    def save_last(self, seconds: float, out_dir: Path) -> RecordingInfo:
        """Write the last `seconds` of the rolling buffer (and frames of that window) as a recording folder."""
        if seconds <= 0:
            raise CaptureBadInputError("save at least a fraction of a second")
        ring = self._ring
        if ring is None or ring.frames == 0:
            raise CaptureError("the rolling buffer is empty: start the capture first")
        data, first = ring.last_frames(int(round(seconds * self.rate)))
        started = self._wall0 + first / self.rate
        frames = [(p, f) for p, f in list(self._frame_ring) if first <= p < first + len(data)]
        folder = None
        try:
            folder = new_recording_folder(Path(out_dir), started)
            w = ChunkWriter(folder, rate=self.rate, channels=self.channels, source=self.source, device=self.device_name,
                            device_id=self.device_id, started_at=started, chunk_seconds=self.chunk_seconds, fsync=False)
            step = w.chunk_frames
            for i in range(0, len(data), step):
                w.add(data[i:i + step])
            if frames:
                (folder / FRAMES_DIR).mkdir(exist_ok=True)
            for p, fr in frames:
                t = (p - first) / self.rate
                rel = f"{FRAMES_DIR}/{frame_name(t, fr.ext)}"
                atomic_write_bytes(folder / rel, fr.data, fsync=False)
                w.add_frame(rel, t, len(fr.data))
            return w.close()
        except OSError as e:
            what = "disk full" if e.errno == errno.ENOSPC else "cannot save the buffer"
            raise CaptureStorageError(f"{what}: {e.strerror or e} (while writing {folder or out_dir})") from None

    # -- status ------------------------------------------------------------------------------------
    @property
    def device_name(self) -> str:
        return " + ".join(d.name for d in self._devices)

    def status(self) -> CaptureStatus:
        """A snapshot: running/recording, elapsed, buffer fill, drops, bytes, levels, silence, error."""
        with self._lock:
            ring = self._ring
            rec = self._rec or self._ended
            total = ring.total_frames if ring is not None else 0
            listened = total / self.rate
            if self._rec is not None:
                sf = self._rec.start_frame
                elapsed = (total - sf) / self.rate if sf is not None else 0.0
            else:
                elapsed = listened
            if ring is not None and ring.frames:
                rms, peak = levels(ring.last(0.3))
            else:
                rms, peak = [FLOOR_DB] * self.channels, [FLOOR_DB] * self.channels
            if rec is not None:
                written = rec.writer.bytes
            elif self._last_info is not None:
                written = self._last_info.bytes
            else:
                written = 0
            gap_frames = None if self.silence_seconds is None else self.silence_seconds * self.rate
            return CaptureStatus(
                source=self.source, device=self.device_name, running=self._running, recording=self._rec is not None,
                elapsed=round(elapsed, 3), buffer_fill=round(ring.fill, 4) if ring is not None else 0.0,
                buffer_seconds=self.buffer_seconds, dropped_frames=int(self._dropped + self._queue_dropped + (self._mixer.corrected if self._mixer else 0)),
                bytes_written=int(written), rms_db=rms, peak_db=peak,
                silent=gap_frames is not None and self._silent_run > gap_frames, error=self._error,
                device_id=self.device_id, rate=self.rate, channels=self.channels, listened=round(listened, 3),
                recording_folder=str(rec.folder) if rec is not None else None,
                frames_captured=self._frames_captured, frame_error=self._frame_error)

    @property
    def ring(self) -> RingBuffer | None:
        """The rolling buffer (None before start)."""
        return self._ring
