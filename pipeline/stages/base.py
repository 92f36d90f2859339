"""Backend registry shared by every stage (separation, vad, asr, align, diarize, voiceprint, tts, ...)."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import ClassVar

from ..errors import BackendUnavailableError, BadInputError

# stage -> backend name -> class
_REGISTRY: dict[str, dict[str, type["StageBackend"]]] = {}
# stage -> module that registers its backends (imported on first use)
STAGE_MODULES = {
    "separation": "pipeline.stages.separation",
    "vad": "pipeline.stages.vad",
    "asr": "pipeline.stages.asr",
    "align": "pipeline.stages.align",
    "diarize": "pipeline.stages.diarize",
    "voiceprint": "pipeline.stages.voiceprint",
}


@dataclass
class Availability:
    """Whether a backend can run here, and if not, the one-line reason and the fix."""

    ok: bool
    reason: str = ""
    fix: str = ""


@dataclass
class ModelSpec:
    """A model file/folder a backend needs: where it is cached and how to fetch it."""

    name: str
    path: str  # local path (file or folder) where the backend looks for it
    fetch_command: str  # exact command to run on a machine with internet
    size_mb: float | None = None
    bundled: bool = False  # ships inside a PyPI package (always present once installed)
    present: bool = False


class StageBackend:
    """Base class: subclasses set `stage`, `name`, `offline`, `quality` and implement the stage method."""

    stage: ClassVar[str] = ""
    name: ClassVar[str] = ""
    offline: ClassVar[bool] = False  # works with no download and no account
    quality: ClassVar[int] = 0  # higher is better; get_backend prefers the best available
    description: ClassVar[str] = ""
    requires: ClassVar[tuple[str, ...]] = ()  # importable module names
    install_hint: ClassVar[str] = ""  # e.g. 'pip install "voice-weaver[pyannote]"'

    def __init__(self, **options) -> None:
        self.options = options

    @classmethod
    def models(cls) -> list[ModelSpec]:
        """Model files this backend needs (empty when it needs none or they ship in a package)."""
        return []

    @classmethod
    def availability(cls) -> Availability:
        """Check libraries then models, without loading anything heavy."""
        for mod in cls.requires:
            if importlib.util.find_spec(mod) is None:
                return Availability(False, f"python package '{mod}' is not installed", cls.install_hint)
        for m in cls.models():
            if not m.present:
                return Availability(False, f"model '{m.name}' not found at {m.path}", m.fetch_command)
        return Availability(True)

    def require_models(self, specs: list[ModelSpec]) -> None:
        """Raise a one-line error for a missing library (``requires``) or the first absent model in ``specs``.

        For backends whose options choose the model: ``require`` then checks this instance's models, not the
        class's defaults.
        """
        for mod in self.requires:
            if importlib.util.find_spec(mod) is None:
                raise BackendUnavailableError(f"{self.stage} backend '{self.name}' unavailable: python package '{mod}' "
                                              f"is not installed; {self.install_hint}")
        for spec in specs:
            if not spec.present:
                from ..errors import ModelMissingError

                raise ModelMissingError(spec.name, spec.fetch_command, f"needed by {self.stage} backend '{self.name}'")

    def require(self) -> None:
        """Raise a one-line error if the backend cannot run."""
        av = self.availability()
        if not av.ok:
            missing = [m for m in self.models() if not m.present]
            if missing:
                from ..errors import ModelMissingError

                raise ModelMissingError(missing[0].name, missing[0].fetch_command, f"needed by {self.stage} backend '{self.name}'")
            raise BackendUnavailableError(f"{self.stage} backend '{self.name}' unavailable: {av.reason}; {av.fix}".rstrip("; "))


def register(cls: type[StageBackend]) -> type[StageBackend]:
    """Class decorator adding a backend to the registry of its stage."""
    _REGISTRY.setdefault(cls.stage, {})[cls.name] = cls
    return cls


def _load(stage: str) -> dict[str, type[StageBackend]]:
    mod = STAGE_MODULES.get(stage)
    if mod is None and stage not in _REGISTRY:
        raise BadInputError(f"unknown stage '{stage}' (known: {', '.join(sorted(STAGE_MODULES))})")
    if mod:
        importlib.import_module(mod)
    return _REGISTRY.get(stage, {})


def list_backends(stage: str) -> list[type[StageBackend]]:
    """All registered backends of a stage, best first."""
    return sorted(_load(stage).values(), key=lambda c: -c.quality)


def available_backends(stage: str) -> list[type[StageBackend]]:
    return [b for b in list_backends(stage) if b.availability().ok]


def get_backend(stage: str, name: str | None = None, **options) -> StageBackend:
    """Instantiate a backend by name, or the best available one (falling back to the offline backend)."""
    backends = _load(stage)
    if name:
        if name not in backends:
            raise BadInputError(f"unknown {stage} backend '{name}' (known: {', '.join(sorted(backends))})")
        inst = backends[name](**options)
        inst.require()
        return inst
    for cls in list_backends(stage):
        if cls.availability().ok:
            return cls(**options)
    raise BackendUnavailableError(f"no {stage} backend can run here; install one of: " + ", ".join(c.name for c in backends.values()))
