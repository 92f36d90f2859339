"""capture's own one-line errors (the package imports nothing from the rest of the house).

They mirror the library's error kinds so the layer that wires capture in (``pipeline.workflows.recordings``) can hand
them on as the matching ``pipeline.errors`` class: bad input, not found, backend unavailable, storage.
``exit_code`` follows the CLI's codes for the same kinds.
"""

from __future__ import annotations


class CaptureError(Exception):
    """Base of every capture error meant to be shown to the user as one line (also: wrong session state)."""

    exit_code = 1


class CaptureBadInputError(CaptureError):
    """An argument of a capture call cannot be used (unknown source, non-positive length, bad region...)."""

    exit_code = 2


class DeviceNotFoundError(CaptureError):
    """The device id asked for is not among the current devices."""

    exit_code = 3


class CaptureUnavailableError(CaptureError):
    """Something the capture needs cannot be reached: the sound server, a device, the screen, a library."""

    exit_code = 4


class AudioBackendError(CaptureUnavailableError):
    """No sound server / no capture device can be reached."""


class ScreenUnavailableError(CaptureUnavailableError):
    """No screen can be grabbed (no X display / Wayland without XWayland / mss missing)."""


class CaptureStorageError(CaptureError):
    """Writing a recording failed (disk full, permissions); the chunks already written are kept."""

    exit_code = 5
