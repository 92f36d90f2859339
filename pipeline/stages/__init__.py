"""Analysis stages. Each stage module defines one Backend interface and registers its backends here.

Use :func:`get_backend` to pick a backend by name, or the best one whose library and models are present.
Importing this package is cheap: backends import their heavy libraries lazily.
"""

from .base import Availability, ModelSpec, StageBackend, available_backends, get_backend, list_backends, register

__all__ = ["Availability", "ModelSpec", "StageBackend", "available_backends", "get_backend", "list_backends", "register"]
