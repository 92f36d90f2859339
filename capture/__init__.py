"""Capture what the computer plays (and/or a microphone) into a rolling buffer and crash-safe chunk folders.

A leaf package: it records to folders of FLAC chunks with a manifest and reports status; it imports nothing
from ``pipeline``, ``web_ui`` or ``trayapp`` and raises its own :mod:`capture.errors` (``pipeline.workflows.recordings``
wires it into the library and hands those errors on as the library's). Heavy/optional imports (soundcard, mss, Pillow,
soundfile) happen inside functions.

Platforms
- Linux: the loopback of an output is its PulseAudio/PipeWire ".monitor" source (PipeWire through its
  pulse server). A sound server must be running.
- Windows: soundcard records outputs through WASAPI loopback; pick the output's loopback from
  `list_devices()` (kind "loopback").
- macOS: there is no system loopback; install a virtual loopback device such as BlackHole, route the
  output to it (a Multi-Output Device keeps the speakers audible) and capture it as a microphone
  (source="mic", device_id=<BlackHole id>).

Main entry points: :class:`CaptureSession`, :func:`list_devices`, :class:`RingBuffer`, :func:`recover`,
:func:`concat_chunks`.
"""

from .chunks import ChunkInfo, ChunkWriter, FrameInfo, RecordingInfo, concat_chunks, read_manifest, recover
from .devices import Device, list_devices
from .errors import (AudioBackendError, CaptureBadInputError, CaptureError, CaptureStorageError, CaptureUnavailableError,
                     DeviceNotFoundError, ScreenUnavailableError)
from .ring import RingBuffer, levels
from .session import CaptureSession, CaptureStatus

__all__ = [
    "AudioBackendError", "CaptureBadInputError", "CaptureError", "CaptureSession", "CaptureStatus", "CaptureStorageError",
    "CaptureUnavailableError", "ChunkInfo", "ChunkWriter", "Device", "DeviceNotFoundError", "FrameInfo", "RecordingInfo",
    "RingBuffer", "ScreenUnavailableError", "concat_chunks", "levels", "list_devices", "read_manifest", "recover",
]
