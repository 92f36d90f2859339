"""Pocket TTS (Kyutai, ``pocket-tts`` on PyPI, MIT code): the CPU voice-cloning backend.

A ~100M-parameter flow LM + Mimi codec that clones a voice from a few seconds of audio and streams 24 kHz speech
on two CPU cores. The code and its model configs ship in the wheel; the weights live in the Hugging Face hub:

- ``kyutai/pocket-tts`` (gated: accept the terms on https://huggingface.co/kyutai/pocket-tts, then ``hf auth
  login``): ``languages/<language>/model.safetensors`` — the model *with* voice cloning (≈440 MB for English: its 109.5M float32 parameters);
- ``kyutai/pocket-tts-without-voice-cloning``: the tokenizer (``tokenizer.json`` / ``tokenizer.model``, < 1 MB).

This module never downloads: :func:`resolve_files` reads the local hub cache (pipeline.hub) at the exact
revisions the wheel's config pins and raises :class:`ModelMissingError` with the ``hf download …`` commands and
the size when a file is absent. :func:`load_model` then builds the model through pocket-tts's own public
``TTSModel.load_model(config=…)`` on a config whose ``hf://`` paths are replaced by those local files.

A cloned voice is pocket-tts's *voice state* (the flow LM's KV cache after the voice prompt), saved with
``export_model_state`` as one safetensors file per voice (:func:`export_voice_state`; ≈10–40 MB for 5–30 s of
reference on the English model, reported by :func:`voice_state_bytes`). :func:`voice_for` + ``stream`` yield audio
chunk by chunk as pocket-tts decodes it; generation is serialised per model by a lock (pocket-tts is not
thread-safe).
"""

from __future__ import annotations

import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import BackendUnavailableError, BadInputError, ModelMissingError

PACKAGE = "pocket-tts==4.0.1"
INSTALL_HINT = f'pip install "{PACKAGE}" sentencepiece (or "voice-weaver[voices]")'
DEFAULT_LANGUAGE = "english"
ENGINE = "pocket"
MODEL_PAGE = "https://huggingface.co/kyutai/pocket-tts"
# download sizes of the English weights (model.safetensors with voice cloning, its tokenizer); other languages
# are the same order (the "_24l" ones about twice); the measured size of a cached file is used when present
APPROX_MB = {"english": 440.0}
VOICE_STATE_NAME = "voice_state.safetensors"
RATE = 24000


@dataclass(frozen=True)
class HubFile:
    """One file of a hub repo at a pinned revision, as the wheel's config names it (``hf://repo/path@rev``)."""

    repo: str
    filename: str
    revision: str | None

    @classmethod
    def parse(cls, ref: str) -> "HubFile":
        body = ref.removeprefix("hf://")
        parts = body.split("/")
        if not ref.startswith("hf://") or len(parts) < 3:
            raise BadInputError(f"not a hub path: {ref!r}")
        filename = "/".join(parts[2:])
        revision = None
        if "@" in filename:
            filename, revision = filename.split("@", 1)
        return cls("/".join(parts[:2]), filename, revision)

    def fetch_command(self) -> str:
        from ..hub import hub_fetch_command

        return hub_fetch_command(self.repo) + f" {self.filename}" + (f" --revision {self.revision}" if self.revision else "")


# ---------------------------------------------------------------------------------------------- files
def _pocket():
    try:
        import pocket_tts  # noqa: F401
        from pocket_tts.utils.config import CONFIGS_DIR
    except ImportError as e:
        raise BackendUnavailableError(f"Pocket TTS needs the pocket-tts package ({e.name} is missing): {INSTALL_HINT}") from None
    return CONFIGS_DIR


def default_language() -> str:
    """The model new instant voices use: $WEAVER_POCKET_MODEL (a config name of the wheel), else ``english``."""
    return os.environ.get("WEAVER_POCKET_MODEL") or DEFAULT_LANGUAGE


def languages() -> list[str]:
    """The model configs shipped in the pocket-tts wheel (``english``, ``french``, ``english_2m_2026-10``, …)."""
    return sorted(p.stem for p in _pocket().glob("*.yaml"))


def config_dict(language: str = DEFAULT_LANGUAGE) -> dict:
    """The wheel's YAML config of one language, as a dict."""
    import yaml

    path = _pocket() / f"{language}.yaml"
    if not path.is_file():
        raise BadInputError(f"Pocket TTS has no model '{language}'; known: {', '.join(languages())}")
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _hub_refs(cfg: dict) -> dict[str, str]:
    """Config key → ``hf://`` reference of every file the model needs (voice-cloning weights + tokenizer)."""
    refs = {}
    if cfg.get("weights_path"):
        refs["weights_path"] = cfg["weights_path"]
    for part in ("flow_lm", "mimi"):
        if (cfg.get(part) or {}).get("weights_path"):
            refs[f"{part}.weights_path"] = cfg[part]["weights_path"]
    refs["flow_lm.lookup_table.tokenizer_path"] = cfg["flow_lm"]["lookup_table"]["tokenizer_path"]
    return {k: v for k, v in refs.items() if str(v).startswith("hf://")}


def hub_files(language: str = DEFAULT_LANGUAGE) -> list[HubFile]:
    """The hub files (repo, path, revision) one language's model needs."""
    return [HubFile.parse(r) for r in _hub_refs(config_dict(language)).values()]


def fetch_command(language: str = DEFAULT_LANGUAGE) -> str:
    """The commands that fetch one language's model on a machine with internet (gated repo: accept its terms)."""
    return " && ".join(f.fetch_command() for f in hub_files(language))


def approx_mb(language: str = DEFAULT_LANGUAGE) -> float | None:
    return APPROX_MB.get(language)


def _cached(f: HubFile) -> Path | None:
    from ..hub import cached_hub_file

    return cached_hub_file(f.repo, f.filename, revision=f.revision)


def resolve_files(language: str = DEFAULT_LANGUAGE) -> dict[str, Path]:
    """Config key → local path of every file the model needs; ModelMissingError (the fetch commands, the size)."""
    cfg = config_dict(language)
    found, missing = {}, []
    for key, ref in _hub_refs(cfg).items():
        f = HubFile.parse(ref)
        path = _cached(f)
        if path is None:
            missing.append(f)
        else:
            found[key] = path
    if missing:
        size = approx_mb(language)
        detail = (f"{'≈%.0f MB' % size if size else 'a few hundred MB'}; the weights repo is gated: accept the terms "
                  f"at {MODEL_PAGE} and run `hf auth login` first; missing {', '.join(m.filename for m in missing)}")
        raise ModelMissingError(f"pocket-tts/{language}", " && ".join(m.fetch_command() for m in missing), detail)
    return found


def model_bytes(language: str = DEFAULT_LANGUAGE) -> int | None:
    """Bytes of the cached model files (None when not all cached)."""
    try:
        return sum(p.stat().st_size for p in resolve_files(language).values())
    except (ModelMissingError, OSError):
        return None


# ---------------------------------------------------------------------------------------------- model
class PocketModel:
    """A loaded pocket-tts ``TTSModel`` and the lock that serialises generation on it."""

    def __init__(self, tts, language: str):
        self.tts = tts
        self.language = language
        self.lock = threading.Lock()

    @property
    def sample_rate(self) -> int:
        return int(self.tts.sample_rate)

    # -------------------------------------------------------------------------------- voices
    def clone(self, reference: str | os.PathLike | np.ndarray, rate: int | None = None):
        """Voice state from reference speech (an audio file, or a mono float array with its rate)."""
        import torch

        if isinstance(reference, (str, os.PathLike)):
            from ..media import load_audio

            audio = np.asarray(load_audio(reference, sample_rate=self.sample_rate, channels="mono"), dtype=np.float32).reshape(-1)
        else:
            if rate is None:
                raise BadInputError("clone(array) needs the sample rate")
            audio = np.asarray(reference, dtype=np.float32).reshape(-1)
            if rate != self.sample_rate:
                from ..media import resample

                audio = resample(audio, rate, self.sample_rate)
        if len(audio) < self.sample_rate // 2 or not np.isfinite(audio).all() or float(np.abs(audio).max(initial=0.0)) < 1e-4:
            raise BadInputError("the reference audio must hold at least 0.5 s of sound to clone a voice")
        with self.lock:
            return self.tts.get_state_for_audio_prompt(torch.from_numpy(audio)[None, :])

    def load_voice_state(self, path: str | os.PathLike):
        """A voice state saved by :func:`export_voice_state` (fast: it only reads tensors)."""
        p = Path(path)
        if not p.is_file():
            raise BadInputError(f"no voice state at {p}")
        try:
            return self.tts.get_state_for_audio_prompt(p)
        except Exception as e:  # noqa: BLE001 - a truncated / foreign file
            raise BadInputError(f"{p} is not a Pocket TTS voice state ({type(e).__name__}: {e})") from None

    # -------------------------------------------------------------------------------- speech
    def stream(self, state, text: str, *, stop: threading.Event | None = None) -> Iterator[np.ndarray]:
        """Float32 mono chunks at :attr:`sample_rate` as pocket-tts decodes them (the state is not modified)."""
        if not text or not text.strip():
            raise BadInputError("nothing to say: the text is empty")
        stop = stop or threading.Event()
        with self.lock:
            try:
                for chunk in self.tts.generate_audio_stream(state, text, copy_state=True, stop=stop):
                    yield chunk.detach().to("cpu").numpy().astype(np.float32, copy=False)
            finally:  # a listener that stops listening stops pocket-tts's generation thread too
                stop.set()

    def synthesize(self, state, text: str) -> np.ndarray:
        parts = list(self.stream(state, text))
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


_MODELS: dict[tuple, PocketModel] = {}
_MODELS_LOCK = threading.Lock()


def load_model(language: str = DEFAULT_LANGUAGE, *, quantize: bool = False, threads: int | None = None) -> PocketModel:
    """The model of ``language`` from the local hub cache (loaded once per process and file set).

    ModelMissingError when the weights are not cached; BackendUnavailableError without pocket-tts.
    """
    files = resolve_files(language)
    key = (language, quantize, tuple(sorted((k, str(v)) for k, v in files.items())))
    with _MODELS_LOCK:
        if key not in _MODELS:
            _MODELS.clear()  # one Pocket model resident (~0.5 GB for English)
            _MODELS[key] = PocketModel(_build(language, files, quantize=quantize, threads=threads), language)
        return _MODELS[key]


def _build(language: str, files: dict[str, Path], *, quantize: bool, threads: int | None):
    import logging

    import torch
    import yaml

    _pocket()
    from pocket_tts import TTSModel

    cfg = config_dict(language)
    for key, path in files.items():  # the hf:// references → the cached files
        node = cfg
        *parents, leaf = key.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = str(path)
    cfg.pop("weights_path_without_voice_cloning", None)  # never fall back to the model that cannot clone
    logging.getLogger("pocket_tts").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="weaver-pocket-") as tmp:
        local = Path(tmp) / f"{language}.yaml"
        local.write_text(yaml.safe_dump(cfg), encoding="utf-8")
        try:
            tts = TTSModel.load_model(config=local, quantize=quantize)
        except (RuntimeError, ValueError, OSError) as e:
            raise ModelMissingError(f"pocket-tts/{language}", fetch_command(language),
                                    f"the cached files do not load ({type(e).__name__}: {str(e)[:160]}); fetch them again") from None
    # pocket-tts runs generation and Mimi decoding in two threads of one intra-op thread each (its import sets 1):
    # two cores in all. More intra-op threads only when asked (threads=, $WEAVER_POCKET_THREADS).
    wanted = threads or int(os.environ.get("WEAVER_POCKET_THREADS", "0") or 0)
    if wanted:
        torch.set_num_threads(wanted)
    return tts


def clear_models() -> None:
    with _MODELS_LOCK:
        _MODELS.clear()


# ---------------------------------------------------------------------------------------------- voice state files
def export_voice_state(state, path: str | os.PathLike) -> int:
    """Save a voice state as safetensors (atomically); returns its size in bytes."""
    from pocket_tts import export_model_state

    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp")
    try:
        export_model_state(_trimmed(state), tmp)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest.stat().st_size


def _trimmed(state) -> dict:
    """The state with each KV cache cut to the positions the prompt filled (pocket-tts grows it back on use)."""
    out = {}
    for module, values in state.items():
        values = dict(values)
        cache, offset = values.get("cache"), values.get("offset")
        if cache is not None and offset is not None and cache.dim() == 5:
            end = int(offset.view(-1)[0].item())
            values["cache"] = cache[:, :, :end].contiguous()
        out[module] = values
    return out


def voice_state_bytes(path: str | os.PathLike) -> int:
    p = Path(path)
    return p.stat().st_size if p.is_file() else 0


# ---------------------------------------------------------------------------------------------- per-voice use
_STATES: dict[tuple[str, float], object] = {}


def voice_state(model: PocketModel, path: str | os.PathLike):
    """A voice's state, read once per file version and kept (two at most)."""
    p = Path(path)
    key = (str(p.resolve()), p.stat().st_mtime if p.exists() else 0.0)
    if key not in _STATES:
        if len(_STATES) >= 2:
            _STATES.pop(next(iter(_STATES)))
        _STATES[key] = model.load_voice_state(p)
    return _STATES[key]


@dataclass
class PocketVoice:
    """A stored Pocket voice ready to speak: the loaded model and the voice's state."""

    model: PocketModel
    state: object

    def stream(self, text: str, *, stop: threading.Event | None = None) -> Iterator[tuple[np.ndarray, int]]:
        rate = self.model.sample_rate
        for chunk in self.model.stream(self.state, text, stop=stop):
            yield chunk, rate


def voice_for(voice_dir: str | os.PathLike, language: str = DEFAULT_LANGUAGE) -> PocketVoice:
    """The voice stored in ``voice_dir`` (its ``voice_state.safetensors``): model and state load now, so errors
    (ModelMissingError, a broken state file) come before any audio."""
    model = load_model(language)
    return PocketVoice(model, voice_state(model, Path(voice_dir) / VOICE_STATE_NAME))


def synthesize_stream(voice_dir: str | os.PathLike, text: str, *, language: str = DEFAULT_LANGUAGE,
                      stop: threading.Event | None = None) -> Iterator[tuple[np.ndarray, int]]:
    """(audio, rate) chunks of a stored Pocket voice; loading happens before this returns, the chunks lazily."""
    return voice_for(voice_dir, language).stream(text, stop=stop)
