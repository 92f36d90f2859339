"""Capture sessions wired into the library: the process-wide capture manager the tray, panel and CLI share.

`capture/` records chunk folders and knows nothing of the library; this module starts/stops its session,
turns finished recordings (and saved buffer windows) into media items, and recovers recordings a crash left
open. The analysis pipeline can then be queued on them like on any file.

It is the product's one door into `capture/`: capture raises its own :mod:`capture.errors`, and every call made
through here hands them on as the ``pipeline.errors`` class of the same kind (:func:`as_weaver_error`), so the
CLI, the panel and the tray see one family of one-line errors.
"""

from __future__ import annotations

import functools
import shutil
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from pipeline.errors import BackendUnavailableError, BadInputError, NotFoundError, StorageError, WeaverError
from pipeline.library import Library, items

_LOCK = threading.Lock()
_MANAGERS: dict[str, "CaptureManager"] = {}


NO_SOUND_SERVER = ("No sound server is running: start PulseAudio/PipeWire (for example `systemctl --user start "
                   "pipewire-pulse` or `pulseaudio --start`), then try again.")
"""The one sentence the panel, CLI and tray show when capture cannot reach a sound server (not the backend's
exception text, e.g. "AssertionError: connection failed")."""


def as_weaver_error(e: Exception) -> WeaverError:
    """A :class:`capture.errors.CaptureError` as the library's error of the same kind, with the same message
    (a sound server that cannot be reached at all becomes :data:`NO_SOUND_SERVER`)."""
    from capture import errors as ce
    from capture.devices import NO_SERVER_HINT

    if isinstance(e, ce.AudioBackendError) and NO_SERVER_HINT in str(e):
        return BackendUnavailableError(NO_SOUND_SERVER)

    for theirs, ours in ((ce.CaptureBadInputError, BadInputError), (ce.DeviceNotFoundError, NotFoundError),
                         (ce.CaptureUnavailableError, BackendUnavailableError), (ce.CaptureStorageError, StorageError)):
        if isinstance(e, theirs):
            return ours(str(e))
    return WeaverError(str(e))


@contextmanager
def capture_errors():
    """Run capture code; a CaptureError leaving it is raised again as the matching WeaverError."""
    from capture.errors import CaptureError

    try:
        yield
    except CaptureError as e:
        raise as_weaver_error(e) from e


def _handing_on(method):
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with capture_errors():
            return method(*args, **kwargs)

    return wrapper


def list_devices() -> list:
    """The audio sources capture can record (``capture.devices.list_devices``), errors as WeaverErrors."""
    from capture.devices import list_devices as capture_list_devices

    with capture_errors():
        return capture_list_devices()


def _drop_head(path: Path, seconds: float) -> None:
    """Rewrite an audio file without its first `seconds`."""
    import soundfile as sf

    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    tmp = path.with_name(path.stem + ".part" + path.suffix)
    sf.write(str(tmp), data[int(round(seconds * rate)):], rate)
    tmp.replace(path)


def manager_for(home: Path) -> "CaptureManager":
    """The single capture manager of this process for a library folder."""
    key = str(Path(home).resolve())
    with _LOCK:
        if key not in _MANAGERS:
            _MANAGERS[key] = CaptureManager(Path(home))
        return _MANAGERS[key]


class CaptureManager:
    def __init__(self, home: Path):
        self.home = home
        self.root = home / "captures"
        self.session = None
        self.last_error: str | None = None
        self.last_media_id: int | None = None
        self.live = None  # pipeline.workflows.live.LiveAnalyser while live lines run
        self.last_saved: dict | None = None  # what the last save/keep/stop stored (shown with a link)
        self.queue_analysis = None  # media_id -> job id: the server's job runner queues the offline analysis
        self.last_job_id: int | None = None
        self._saved_windows: list[tuple[float, float]] = []  # audio-clock spans saved while this session ran

    # -- session -------------------------------------------------------------------------------
    @_handing_on
    def start(self, *, source: str = "loopback", device_id: str | None = None, frames: bool = False,
              buffer_minutes: float = 10.0, frame_interval: float = 1.0, record: bool = False,
              live: bool = False) -> dict:
        """Start listening into the rolling buffer (and optionally recording to chunks at once); `live`: run
        the streaming analyser (live lines, :mod:`pipeline.workflows.live`) on the buffer."""
        from capture.session import CaptureSession

        if buffer_minutes <= 0:
            raise BadInputError("buffer must be longer than 0 minutes")
        if self.session is not None and self.status().get("running"):
            # already listening: Listen again is a no-op, Record records from now (the one state of every face)
            if record and not self.session.status().recording:
                self.session.start_recording()
            if live and (self.live is None or not self.live.running):
                self.start_live()
            return self.status()
        self.root.mkdir(parents=True, exist_ok=True)
        session = CaptureSession(source=source, device_id=device_id, buffer_seconds=buffer_minutes * 60,
                                 frames=frames, frame_interval=frame_interval, out_root=self.root)
        session.start()
        self.session = session
        if live:
            self.start_live()
        if record:
            session.wait_for_audio(3.0)  # an idle sink can take ~2 s to deliver its first samples
            session.start_recording()
        return self.status()

    @_handing_on
    def record(self, **start_options) -> dict:
        """Record from now (listening first when the capture is off): the one "Record" state of every face."""
        if self.session is None or not self.session.status().running:
            if self.session is not None:
                self.stop()
            return self.start(record=True, **start_options)
        self.session.start_recording()
        return self.status()

    @_handing_on
    def stop(self, *, analyze: bool = False) -> int | None:
        """Stop recording (if recording) and the session; the recording becomes a media item, whose id is returned.

        Audio already saved with "Save last N minutes" during the recording is not imported a second time: a
        recording the saved windows cover whole (what is left is silence) is dropped (the id of the last save
        is returned), one whose start they cover is imported from where they end."""
        self._require()
        media_id = None
        st = self.session.status()
        if st.recording or st.recording_folder:  # a recording an error ended is imported too
            ring = self.session.ring
            end = ring.total_frames / ring.rate if ring is not None else 0.0
            info = self.session.stop_recording()
            skip, lines = 0.0, []
            if st.recording and not st.error:
                start = end - info.duration
                covered = start
                for a, b in sorted(self._saved_windows):
                    if a <= covered + 0.5 and b > covered:
                        covered = b
                skip = max(0.0, covered - start)
                skip = skip if skip >= 0.5 else 0.0
                if self.live is not None:
                    from .live import lines_in_window

                    lines = [ln for ln in lines_in_window(self.live.snapshot(), start + skip, end) if ln["text"]]
            if skip > 0 and self.last_saved and self._quiet_tail(info.duration - skip):
                shutil.rmtree(Path(info.folder), ignore_errors=True)
                media_id = self.last_saved["media_id"]
                self.last_saved = {**self.last_saved, "note": "everything recorded was already saved"}
            else:
                media_id = self.import_recording(Path(info.folder), analyze=analyze, live_lines=lines,
                                                 skip_seconds=skip)
                self.last_saved = {"media_id": media_id, "seconds": round(info.duration - skip, 1),
                                   "lines": len(lines), "kept": 0}
        self.stop_live()
        self.session.close()
        self.session = None
        self._saved_windows = []
        return media_id

    @_handing_on
    def save_last(self, minutes: float, *, analyze: bool = False, keep: set[int] | frozenset = frozenset()) -> int:
        """Save the last N minutes of the rolling buffer as a new media item (with the live lines of that window
        as its first segments, those in `keep` as kept clips); returns its id."""
        self._require()
        if minutes <= 0:
            raise BadInputError("save at least a few seconds (minutes > 0)")
        ring = self.session.ring
        end = ring.total_frames / ring.rate if ring is not None else 0.0
        info = self.session.save_last(minutes * 60, self.root)
        lines = []
        if self.live is not None:
            from .live import lines_in_window

            lines = [ln for ln in lines_in_window(self.live.snapshot(), end - info.duration, end) if ln["text"]]
        media_id = self.import_recording(Path(info.folder), analyze=analyze, live_lines=lines, keep=keep)
        self._saved_windows.append((end - info.duration, end))
        self.last_saved = {"media_id": media_id, "seconds": round(info.duration, 1), "lines": len(lines),
                           "kept": len([ln for ln in lines if ln["id"] in keep])}
        return media_id

    def keep_line(self, line_id: int | None = None) -> dict:
        """Keep a live line (the last final one when None) as a clip of its speaker: the buffer from the line's
        start is saved as a new item holding that line as a kept clip. Returns {media_id, line}."""
        self._require()
        if self.live is None:
            raise WeaverError("live lines are off; start listening with live lines to keep one")
        lines = [ln for ln in self.live.snapshot() if ln["final"] and ln["text"]]
        if line_id is None:
            if not lines:
                raise WeaverError("no live line yet to keep")
            line = lines[-1]
        else:
            line = next((ln for ln in lines if ln["id"] == int(line_id)), None)
            if line is None:
                raise NotFoundError(f"no finished live line {line_id}")
        ring = self.session.ring
        back = ring.total_frames / ring.rate - line["start"] + 0.3
        if back > ring.seconds:
            raise WeaverError("that line has already left the rolling buffer")
        media_id = self.save_last(back / 60, keep={line["id"]})
        return {"media_id": media_id, "line": line}

    @_handing_on
    def status(self) -> dict:
        """The session's status plus ``state`` — "off", "listening" (buffer + live lines) or "recording" — the
        one state the panel, the CLI and the tray icon show; ``last_saved`` (what the last save stored) and ``live``."""
        extra = {"last_media_id": self.last_media_id, "last_saved": self.last_saved, "last_job_id": self.last_job_id,
                 "live": self.live.status() if self.live is not None else None}
        if self.session is None:
            return {"running": False, "recording": False, "state": "off", "error": self.last_error, **extra}
        st = asdict(self.session.status())
        st["running"] = st.get("running", True)
        st["state"] = "recording" if st["recording"] else "listening" if st["running"] else "off"
        st.update(extra)
        return st

    def _require(self) -> None:
        if self.session is None:
            raise WeaverError("no capture is running; start one first")

    # -- library -------------------------------------------------------------------------------
    @_handing_on
    def import_recording(self, folder: Path, *, analyze: bool = False, live_lines: list[dict] | None = None,
                         keep: set[int] | frozenset = frozenset(), skip_seconds: float = 0.0) -> int:
        """Join a recording's chunks into one FLAC and import it as a 'capture' item (frames kept beside it);
        `live_lines` (times relative to the recording) become its first segments until the analysis refines them."""
        from capture.chunks import concat_chunks, recover

        from pipeline.service import Service

        info = recover(folder)
        if not info.chunks:
            shutil.rmtree(folder, ignore_errors=True)
            raise WeaverError(f"recording {folder.name} holds no audio")
        audio_path = folder / "recording.flac"
        concat_chunks(folder, audio_path)
        frames_dir = folder / "frames"
        if skip_seconds > 0 and not (frames_dir.is_dir() and any(frames_dir.iterdir())):
            _drop_head(audio_path, skip_seconds)  # audio a save already holds
        stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(getattr(info, "started_at", None) or time.time()))
        svc = Service(Library(self.home))
        try:
            outcome = svc.ingest(str(audio_path), title=f"Capture {stamp}", kind="capture", analyze=False)
            media_id = outcome.result["media_id"]
            if live_lines:
                from pipeline.library.live import store_live_lines, write_live_file

                write_live_file(svc.lib.media_dir(media_id), live_lines)
                with svc.lib.atomic() as db:
                    store_live_lines(db, media_id, live_lines, keep=keep)
            frames = folder / "frames"
            if frames.is_dir() and any(frames.iterdir()):
                target = svc.lib.media_dir(media_id) / "frames"
                shutil.move(str(frames), str(target))
                with svc.lib.atomic() as db:
                    items.set_capture_files(db, media_id, f"media/{media_id}/frames")
            else:
                with svc.lib.atomic() as db:
                    items.set_capture_files(db, media_id, None)
            if analyze and self.queue_analysis is None:
                svc.analyze(media_id)  # no job runner in this process (a script): run it here
        finally:
            svc.lib.close()
        shutil.rmtree(folder, ignore_errors=True)
        self.last_media_id = media_id
        if analyze and self.queue_analysis is not None:
            self.last_job_id = self.queue_analysis(media_id)
        return media_id

    @_handing_on
    def recover_interrupted(self) -> list[int]:
        """Import recordings a crash or kill left open (called at app start). Returns the new item ids."""
        ids = []
        if not self.root.is_dir():
            return ids
        live = self.session.status().recording_folder if self.session is not None else None
        for folder in sorted(p for p in self.root.iterdir() if (p / "manifest.json").exists()):
            if live and Path(live).resolve() == folder.resolve():
                continue
            try:
                ids.append(self.import_recording(folder))
            except WeaverError as e:
                self.last_error = f"could not recover {folder.name}: {e}"
        return ids

    def _quiet_tail(self, seconds: float) -> bool:
        """Whether the newest `seconds` of the buffer hold nothing but (near) silence (or are under half a second)."""
        import numpy as np

        if seconds < 0.5:
            return True
        ring = self.session.ring
        if ring is None or seconds > ring.seconds:
            return False
        tail = ring.last(seconds)
        return not len(tail) or float(np.max(np.abs(tail))) < 10 ** (-50 / 20)

    # -- live lines ----------------------------------------------------------------------------
    def start_live(self, **options):
        """Run the streaming analyser on the running session's buffer (idempotent); returns it."""
        from .live import LiveAnalyser, library_voiceprints

        self._require()
        if self.live is None or not self.live.running:
            self.live = LiveAnalyser(self.session, known=library_voiceprints(self.home), **options).start()
        return self.live

    def stop_live(self) -> None:
        if self.live is not None:
            self.live.stop()
