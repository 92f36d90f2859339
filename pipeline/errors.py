"""Errors that carry a one-line, user-facing message (the CLI prints them without a traceback)."""

from __future__ import annotations


class WeaverError(Exception):
    """Base class for every error meant to be shown to the user as one line."""

    exit_code = 1


class BadInputError(WeaverError):
    """The file, text or argument the user gave cannot be used."""

    exit_code = 2


class NotFoundError(WeaverError):
    """An item, clip, voice or character that was asked for does not exist."""

    exit_code = 3


class ModelMissingError(WeaverError):
    """A backend's model files are absent; the message names the model and how to fetch it."""

    exit_code = 4

    def __init__(self, model: str, fetch_command: str, detail: str = ""):
        self.model = model
        self.fetch_command = fetch_command
        msg = f"model '{model}' is not installed"
        if detail:
            msg += f" ({detail})"
        msg += f"; on a machine with internet run: {fetch_command}"
        super().__init__(msg)


class BackendUnavailableError(WeaverError):
    """A backend's Python library is not installed; the message says which extra brings it."""

    exit_code = 4


class Cancelled(WeaverError):
    """The user cancelled a long operation."""

    exit_code = 130

    def __init__(self, msg: str = "cancelled"):
        super().__init__(msg)


class StorageError(WeaverError):
    """Writing to the library failed (disk full, permissions); nothing already stored was lost."""

    exit_code = 5
