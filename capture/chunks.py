"""Crash-safe recordings: a folder of small FLAC chunks plus a manifest.json updated as chunks land.

Layout of a recording folder::

    manifest.json          rate, channels, source, started_at (wall clock), chunks, gaps, frames, closed
    events.jsonl           while recording: one line per chunk / gap edge / frame, appended and fsynced, so
                           each chunk costs one small append however long the recording (folded into
                           manifest.json and removed at close)
    chunk_000001.flac      ~2 s each; written as .part, fsynced, then renamed
    frames/frame_000012.345.jpg   screen frames named by seconds since recording start (audio clock)

Positions are sample offsets from the recording start. A silent stretch that was not written is a gap
(`{"start": s, "end": e}`); :func:`concat_chunks` fills gaps with zeros so the timeline (and the frame
timestamps) stay true. A crash or kill -9 loses at most the chunk in flight; :func:`recover` closes such
a recording.
"""

from __future__ import annotations

import io
import json
import os
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

MANIFEST = "manifest.json"
EVENTS = "events.jsonl"
FRAMES_DIR = "frames"
_CHUNK_RE = re.compile(r"^chunk_(\d+)\.flac$")


@dataclass
class ChunkInfo:
    file: str
    start: int  # sample offset from recording start
    frames: int


@dataclass
class FrameInfo:
    file: str  # relative to the recording folder
    t: float  # seconds since recording start, on the audio clock


@dataclass
class RecordingInfo:
    folder: Path
    rate: int
    channels: int
    source: str
    device: str
    started_at: float  # wall clock (epoch seconds) of the first sample
    duration: float  # timeline length in seconds, gaps included
    audio_seconds: float  # seconds actually stored in chunks
    chunks: list[ChunkInfo] = field(default_factory=list)
    gaps: list[tuple[float, float]] = field(default_factory=list)  # (start s, end s)
    frames: list[FrameInfo] = field(default_factory=list)
    closed: bool = False
    bytes: int = 0
    error: str | None = None


def chunk_name(index: int) -> str:
    return f"chunk_{index:06d}.flac"


def frame_name(t: float, ext: str = "jpg") -> str:
    """File name of a frame at `t` seconds (sortable; the number after the last '_' is the time)."""
    return f"frame_{t:010.3f}.{ext}"


def frame_time(name: str) -> float | None:
    try:
        return float(Path(name).stem.split("_")[-1])
    except ValueError:
        return None


@contextmanager
def part_file(path: Path) -> Iterator[Path]:
    """Yield `path.part` to write; rename it to path on success, remove it on any failure."""
    part = path.with_name(path.name + ".part")
    try:
        yield part
        os.replace(part, path)
    except BaseException:
        try:
            part.unlink()
        except OSError:
            pass
        raise


def atomic_write_bytes(path: Path, data: bytes, *, fsync: bool = True) -> int:
    """Write bytes to path via `path.part` + rename; raises OSError (e.g. ENOSPC) leaving no .part behind."""
    with part_file(path) as part, open(part, "wb") as f:
        f.write(data)
        f.flush()
        if fsync:
            os.fsync(f.fileno())
    return len(data)


def encode_flac(audio: np.ndarray, rate: int) -> bytes:
    """16-bit FLAC bytes of a float (frames, channels) block, encoded in memory."""
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.clip(audio, -1.0, 1.0), rate, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def new_recording_folder(root: Path, started_at: float | None = None) -> Path:
    """Create a fresh, uniquely named recording folder under root."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    t = started_at or time.time()
    base = time.strftime("rec_%Y%m%d_%H%M%S", time.localtime(t)) + f"_{int((t % 1) * 1000):03d}"
    for i in range(1000):
        p = root / (base if i == 0 else f"{base}_{i}")
        try:
            p.mkdir()
            return p
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a recording folder under {root}")


class ChunkWriter:
    """Writes one recording folder: feed blocks in order with `add`, then `close`.

    Not thread-safe; the capture session calls it from one writer thread. Raises OSError from disk
    writes (ENOSPC …); after such an error call `abort` to close the manifest as far as possible.
    """

    def __init__(self, folder: Path, *, rate: int, channels: int, source: str = "", device: str = "",
                 device_id: str | None = None, started_at: float | None = None, chunk_seconds: float = 2.0,
                 fsync: bool = True):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.rate = int(rate)
        self.channels = int(channels)
        self.chunk_frames = max(1, int(round(chunk_seconds * rate)))
        self.fsync = fsync
        self.position = 0  # timeline frames seen so far
        self.bytes = 0
        self._pending: list[np.ndarray] = []
        self._pending_frames = 0
        self._pending_start = 0
        self._in_gap = False
        self._unlogged_frames: list[dict] = []
        self.manifest = {
            "version": 1, "rate": self.rate, "channels": self.channels, "source": source, "device": device,
            "device_id": device_id, "started_at": float(started_at if started_at is not None else time.time()),
            "chunk_seconds": chunk_seconds, "chunks": [], "gaps": [], "frames": [], "closed": False,
            "total_frames": None, "duration": None, "error": None,
        }
        self._events = None
        self._write_manifest()  # the header: lists stay empty here, entries go to the events log
        self._events = open(self.folder / EVENTS, "ab")

    # -- audio ---------------------------------------------------------------------------------
    def add(self, block: np.ndarray, *, gap: bool = False) -> None:
        """Append a block at the current position; gap=True skips it (silence not stored, timeline advances)."""
        b = np.asarray(block, dtype=np.float32)
        if b.ndim == 1:
            b = b[:, None]
        n = b.shape[0]
        if gap:
            self.skip(n)
            return
        if self._in_gap:
            self.manifest["gaps"][-1]["end"] = self.position
            self._in_gap = False
            self._log({"e": "gap_end", "end": self.position})  # on disk before any chunk after it lands
        if not self._pending:
            self._pending_start = self.position
        self._pending.append(b)
        self._pending_frames += n
        self.position += n
        while self._pending_frames >= self.chunk_frames:
            data = np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
            head, rest = data[:self.chunk_frames], data[self.chunk_frames:]
            self._write_chunk(head, self._pending_start)
            self._pending_start += self.chunk_frames
            self._pending = [rest] if len(rest) else []
            self._pending_frames = len(rest)

    def skip(self, n: int) -> None:
        """Advance the timeline by n frames without storing audio (opens a gap)."""
        if n <= 0:
            return
        if not self._in_gap:
            self.flush()
            self.manifest["gaps"].append({"start": self.position, "end": None})
            self._in_gap = True
            self._log({"e": "gap", "start": self.position})
            self.position += n
        else:
            self.position += n

    def flush(self) -> None:
        """Write the pending partial chunk now (e.g. before a gap or at close)."""
        if self._pending_frames:
            data = np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
            self._pending, self._pending_frames = [], 0
            self._write_chunk(data, self._pending_start)

    def _write_chunk(self, data: np.ndarray, start: int) -> None:
        name = chunk_name(len(self.manifest["chunks"]) + 1)
        self.bytes += atomic_write_bytes(self.folder / name, encode_flac(data, self.rate), fsync=self.fsync)
        entry = {"file": name, "start": int(start), "frames": int(len(data))}
        self.manifest["chunks"].append(entry)
        self._log({"e": "chunk", **entry}, frames_too=True)

    # -- frames --------------------------------------------------------------------------------
    def add_frame(self, rel_file: str, t: float, size: int = 0) -> None:
        """List a frame already written under the folder (logged with the next chunk or `sync`)."""
        self.manifest["frames"].append({"file": rel_file, "t": round(float(t), 3)})
        self._unlogged_frames.append(self.manifest["frames"][-1])
        self.bytes += size

    def sync(self) -> None:
        """Log the frames listed since the last chunk."""
        if self._unlogged_frames:
            self._log(None, frames_too=True)

    def _log(self, event: dict | None, *, frames_too: bool = False) -> None:
        """Append event (and the frames not logged yet) to the events log, one JSON line each, then fsync."""
        lines = [{"e": "frame", **f} for f in self._unlogged_frames] if frames_too else []
        if event is not None:
            lines.append(event)
        if not lines:
            return
        self._events.write(b"".join(json.dumps(x, separators=(",", ":")).encode() + b"\n" for x in lines))
        self._events.flush()
        if self.fsync:
            os.fsync(self._events.fileno())
        if frames_too:
            self._unlogged_frames = []

    # -- end -----------------------------------------------------------------------------------
    def close(self, error: str | None = None) -> RecordingInfo:
        """Flush, mark the manifest closed with its duration, and describe the recording."""
        self.flush()
        return self._finish(error)

    def abort(self, error: str) -> RecordingInfo:
        """After a write error: drop the pending audio, try to close the manifest, describe what is on disk."""
        self._pending, self._pending_frames = [], 0
        chunks = self.manifest["chunks"]
        self.position = chunks[-1]["start"] + chunks[-1]["frames"] if chunks else 0  # the lost audio is not timeline
        if self._in_gap:
            self.manifest["gaps"][-1]["end"] = max(self.position, self.manifest["gaps"][-1]["start"])
            self.position = self.manifest["gaps"][-1]["end"]
            self._in_gap = False
        for part in self.folder.glob("*.part"):
            try:
                part.unlink()
            except OSError:
                pass
        try:
            return self._finish(error)
        except OSError:  # the disk is still full: the events log on disk keeps what landed, for `recover`
            if self._events is not None:
                try:
                    self._events.close()
                except OSError:
                    pass
                self._events = None
            return info_from_manifest(self.folder, self.manifest)

    def _finish(self, error: str | None) -> RecordingInfo:
        if self._in_gap:
            self.manifest["gaps"][-1]["end"] = self.position
            self._in_gap = False
        m = self.manifest
        m["total_frames"] = int(self.position)
        m["duration"] = self.position / self.rate
        m["closed"] = True
        m["error"] = error
        self._write_manifest()  # everything in one place now: the events log is no longer needed
        if self._events is not None:
            self._events.close()
            self._events = None
        try:
            (self.folder / EVENTS).unlink()
        except OSError:
            pass
        return info_from_manifest(self.folder, m)

    def _write_manifest(self) -> None:
        data = json.dumps(self.manifest, separators=(",", ":")).encode()
        atomic_write_bytes(self.folder / MANIFEST, data, fsync=self.fsync)

    @property
    def duration(self) -> float:
        return self.position / self.rate


def read_manifest(folder: Path) -> dict | None:
    """The recording's manifest; for one still open (or left open by a crash), with its events log replayed."""
    try:
        m = json.loads((Path(folder) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not m.get("closed"):
        replay_events(m, Path(folder) / EVENTS)
    return m


def replay_events(m: dict, path: Path) -> None:
    """Apply an events log to a manifest's lists; a line torn by a crash (the last one) is skipped."""
    try:
        raw = path.read_bytes()
    except OSError:
        return
    for line in raw.splitlines():
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        kind = ev.pop("e", None)
        if kind == "chunk":
            m.setdefault("chunks", []).append(ev)
        elif kind == "frame":
            m.setdefault("frames", []).append(ev)
        elif kind == "gap":
            m.setdefault("gaps", []).append({"start": ev["start"], "end": None})
        elif kind == "gap_end" and m.get("gaps"):
            m["gaps"][-1]["end"] = ev["end"]


def info_from_manifest(folder: Path, m: dict) -> RecordingInfo:
    rate = int(m.get("rate") or 1)
    chunks = [ChunkInfo(c["file"], int(c["start"]), int(c["frames"])) for c in m.get("chunks", [])]
    total = m.get("total_frames")
    if total is None:
        total = max([c.start + c.frames for c in chunks] + [0])
    gaps = [(g["start"] / rate, (g["end"] if g.get("end") is not None else total) / rate) for g in m.get("gaps", [])]
    folder = Path(folder)
    size = 0
    for c in chunks:
        try:
            size += (folder / c.file).stat().st_size
        except OSError:
            pass
    size += sum(_size(folder / f["file"]) for f in m.get("frames", []))
    return RecordingInfo(folder=folder, rate=rate, channels=int(m.get("channels") or 1), source=m.get("source", ""),
                         device=m.get("device", ""), started_at=float(m.get("started_at") or 0.0),
                         duration=total / rate, audio_seconds=sum(c.frames for c in chunks) / rate, chunks=chunks,
                         gaps=gaps, frames=[FrameInfo(f["file"], float(f["t"])) for f in m.get("frames", [])],
                         closed=bool(m.get("closed")), bytes=size, error=m.get("error"))


def _size(p: Path) -> int:
    try:
        return p.stat().st_size
    except OSError:
        return 0


def recover(folder: str | os.PathLike) -> RecordingInfo:
    """Close a recording a crash or kill left open (idempotent on a closed one).

    Drops `.part` files and chunks that are missing or unreadable, adds chunks that landed after the last
    manifest update, lists frames found on disk, closes an open gap, and rewrites the manifest closed with
    its duration.
    """
    import soundfile as sf

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no recording folder {folder}")
    for part in list(folder.glob("*.part")) + list((folder / FRAMES_DIR).glob("*.part")):
        try:
            part.unlink()
        except OSError:
            pass
    m = read_manifest(folder) or {}
    on_disk = sorted((int(mo.group(1)), p.name) for p in folder.iterdir() if (mo := _CHUNK_RE.match(p.name)))
    rate = m.get("rate")
    channels = m.get("channels")
    chunks = []
    listed = set()
    for c in m.get("chunks", []):
        p = folder / c["file"]
        try:
            info = sf.info(str(p))
        except Exception:
            continue
        listed.add(c["file"])
        chunks.append({"file": c["file"], "start": int(c["start"]), "frames": int(info.frames)})
        rate = rate or info.samplerate
        channels = channels or info.channels
    gaps = [dict(g) for g in m.get("gaps", [])]
    for _, name in on_disk:
        if name in listed:
            continue
        try:
            info = sf.info(str(folder / name))
        except Exception:
            continue
        rate = rate or info.samplerate
        channels = channels or info.channels
        prev_end = max([c["start"] + c["frames"] for c in chunks] + [0])
        gap_end = max([g["end"] for g in gaps if g.get("end") is not None] + [0])
        chunks.append({"file": name, "start": max(prev_end, gap_end), "frames": int(info.frames)})
    chunks.sort(key=lambda c: c["start"])
    end = max([c["start"] + c["frames"] for c in chunks] + [0])
    total = m.get("total_frames")
    total = max(int(total), end) if total is not None else end
    for g in gaps:
        if g.get("end") is None:
            g["end"] = max(total, g["start"])
    listed_frames = {f["file"]: f for f in m.get("frames", [])}
    frames = []
    fdir = folder / FRAMES_DIR
    if fdir.is_dir():
        for p in sorted(fdir.iterdir()):
            t = frame_time(p.name)
            if t is not None and p.suffix.lower() in (".jpg", ".jpeg", ".webp", ".png"):
                frames.append(listed_frames.get(f"{FRAMES_DIR}/{p.name}", {"file": f"{FRAMES_DIR}/{p.name}", "t": t}))
    m.update({"version": m.get("version", 1), "rate": int(rate or 48000), "channels": int(channels or 1),
              "chunks": chunks, "gaps": gaps, "frames": frames, "total_frames": int(total),
              "duration": total / int(rate or 48000), "closed": True})
    m.setdefault("source", "")
    m.setdefault("device", "")
    m.setdefault("started_at", min([p.stat().st_mtime for p in folder.iterdir()] + [time.time()]))
    m.setdefault("error", None)
    try:
        atomic_write_bytes(folder / MANIFEST, json.dumps(m, separators=(",", ":")).encode())
        (folder / EVENTS).unlink(missing_ok=True)
    except OSError:
        pass
    return info_from_manifest(folder, m)


def concat_chunks(folder: str | os.PathLike, out_path: str | os.PathLike, *, fill_gaps: bool = True,
                  subtype: str = "PCM_16") -> Path:
    """Join a recording's chunks into one FLAC/WAV (by suffix), streaming; gaps become zeros when fill_gaps.

    The folder should be closed (call :func:`recover` first for an interrupted one). Written atomically.
    """
    import soundfile as sf

    folder, out = Path(folder), Path(out_path)
    m = read_manifest(folder)
    if m is None:
        m = {}
    info = info_from_manifest(folder, m) if m else recover(folder)
    rate, channels = info.rate, info.channels
    fmt = {".flac": "FLAC", ".wav": "WAV", ".ogg": "OGG"}.get(out.suffix.lower(), "FLAC")
    out.parent.mkdir(parents=True, exist_ok=True)
    def silence(f, frames: int) -> None:  # in 10 s blocks, so a long gap costs no memory
        while frames > 0:
            n = min(rate * 10, frames)
            f.write(np.zeros((n, channels), dtype=np.float32))
            frames -= n

    with part_file(out) as part, sf.SoundFile(str(part), "w", samplerate=rate, channels=channels, format=fmt,
                                              subtype=subtype) as f:
        pos = 0
        for c in sorted(info.chunks, key=lambda c: c.start):
            if c.start > pos and fill_gaps:
                silence(f, c.start - pos)
            audio, _ = sf.read(str(folder / c.file), dtype="float32", always_2d=False)
            audio = np.asarray(audio, dtype=np.float32).reshape(len(audio), -1)
            if c.start < pos:  # overlapping chunk (should not happen): keep the new part only
                audio = audio[pos - c.start:]
            f.write(audio)
            pos = max(pos, c.start) + len(audio)
        total = int(round(info.duration * rate))
        if fill_gaps and total > pos:
            silence(f, total - pos)
    return out
