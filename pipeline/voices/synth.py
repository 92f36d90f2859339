"""Voice registry and speech synthesis (trained Orpheus LoRA voices + the built-in ``default``: Piper, else espeak-ng).

A voices folder holds one sub-folder per trained voice::

    <voices_dir>/<name>/voice.json    {name, base_model, character, created, adapter_bytes, rate[, snac_dir, speaker]}
    <voices_dir>/<name>/adapter/      the LoRA adapter (adapter_config.json + adapter_model.safetensors + orpheus.json)

Long text: :func:`synthesize` returns one array and refuses text above ``MAX_CHARS`` (4096, the same cap as
OpenAI's /v1/audio/speech) with BadInputError; :func:`synthesize_stream` takes text of any length and yields
audio sentence-group by sentence-group (each chunk at most ``max_chunk_chars`` characters), so memory stays
bounded even for 100 000 characters.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import BadInputError, NotFoundError, StorageError
from ..progress import CancelToken, ProgressCallback, no_progress
from ..files import replace_folder
from ..media import AUDIO_FORMATS as FORMATS, encode_audio  # noqa: F401 - encoding lives in pipeline.media
from ..text.sentences import pack_sentences
from . import default_voice

MAX_CHARS = 4096
DEFAULT_CHUNK_CHARS = 240  # ≈ 15 s of speech, the longest clip the dataset keeps
OUTPUT_RATE = 24000
PAUSE_S = 0.12  # silence between chunks in synthesize()
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,63}$")


@dataclass
class VoiceInfo:
    name: str
    base_model: str | None
    character: str | None
    created: float | None
    adapter_bytes: int
    rate: int
    builtin: bool = False
    path: str | None = None
    engine: str = "orpheus"  # "pocket": a Pocket TTS cloned voice (voice_state.safetensors), pipeline.voices.pocket

    def to_dict(self) -> dict:
        return asdict(self)


def _default_info() -> VoiceInfo:
    return VoiceInfo(name=default_voice.NAME, base_model=default_voice.describe(), character=None, created=None, adapter_bytes=0, rate=OUTPUT_RATE, builtin=True)


def list_voices(voices_dir: str | os.PathLike | None) -> list[VoiceInfo]:
    """The built-in ``default`` voice followed by every trained voice (sorted by name)."""
    out = [_default_info()]
    if voices_dir is None or not Path(voices_dir).is_dir():
        return out
    for d in sorted(Path(voices_dir).iterdir()):
        if d.name.startswith("."):  # .trash, .<name>.tmp (a registration that did not finish)
            continue
        meta = d / "voice.json"
        if not meta.is_file():
            continue
        try:
            m = json.loads(meta.read_text())
        except ValueError:
            continue
        out.append(
            VoiceInfo(
                name=m.get("name", d.name), base_model=m.get("base_model"), character=m.get("character"), created=m.get("created"),
                adapter_bytes=int(m.get("adapter_bytes", 0)), rate=int(m.get("rate", OUTPUT_RATE)), path=str(d),
                engine=m.get("engine", "orpheus"),
            )
        )
    return out


def get_voice(name: str, voices_dir: str | os.PathLike | None) -> VoiceInfo:
    """One voice by name; NotFoundError listing the available ones."""
    voices = list_voices(voices_dir)
    for v in voices:
        if v.name == name:
            return v
    raise NotFoundError(f"no voice named '{name}'; available: {', '.join(v.name for v in voices)}")


def register_voice(
    voices_dir: str | os.PathLike,
    name: str,
    adapter_dir: str | os.PathLike,
    *,
    base_model: str,
    character: str | None = None,
    snac_dir: str | None = None,
    speaker: str | None = None,
    overwrite: bool = False,
) -> VoiceInfo:
    """Copy a trained adapter into ``voices_dir/<name>`` and write its voice.json (atomically)."""
    if not _NAME_RE.match(name or "") or name == default_voice.NAME:
        raise BadInputError(f"invalid voice name {name!r}: use letters, digits, space, _ . - (and not 'default')")
    from ..files import safe_child

    safe_child(voices_dir, name)  # the one name → path check (a link named like the voice pointing out is refused)
    src = Path(adapter_dir)
    if not (src / "adapter_config.json").is_file():
        raise BadInputError(f"{src} is not a LoRA adapter folder (no adapter_config.json)")
    dest = Path(voices_dir) / name
    if dest.exists() and not overwrite:
        raise BadInputError(f"a voice named '{name}' already exists")
    meta = {"name": name, "base_model": base_model, "character": character}
    if snac_dir:
        meta["snac_dir"] = str(snac_dir)
    if speaker:
        meta["speaker"] = speaker
    install_voice(voices_dir, name, src, meta, "*.safetensors")
    return get_voice(name, voices_dir)


def install_voice(voices_dir: str | os.PathLike, name: str, adapter_dir: str | os.PathLike, meta: dict,
                  adapter_glob: str) -> dict:
    """Copy an adapter folder into ``voices_dir/<name>/adapter`` with its voice.json (``meta`` + name, created,
    adapter_bytes = the files matching ``adapter_glob``, rate), atomically: a failure leaves no half voice."""
    dest = Path(voices_dir) / name
    tmp = Path(voices_dir) / f".{name}.tmp"
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(adapter_dir, tmp / "adapter")
        meta = {"name": name, **meta, "created": time.time(),
                "adapter_bytes": sum(f.stat().st_size for f in (tmp / "adapter").glob(adapter_glob)), "rate": OUTPUT_RATE}
        (tmp / "voice.json").write_text(json.dumps(meta, indent=2))
        replace_folder(tmp, dest)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise StorageError(f"could not save voice '{name}': {e.strerror or e}") from None
    _ENGINES.clear()
    return meta


# ---------------------------------------------------------------------------------------------- text
def split_text(text: str, max_chars: int = DEFAULT_CHUNK_CHARS) -> Iterator[str]:
    """Yield chunks of at most ``max_chars``: whole sentences packed together, long sentences cut at commas/spaces.

    Lazy (the one sentence splitter, :func:`pipeline.text.sentences.pack_sentences`).
    """
    return pack_sentences(text, max_chars)


# ---------------------------------------------------------------------------------------------- Orpheus engine
class _Engine:
    """Base LM + one LoRA adapter + SNAC, loaded once and reused (generation is serialised by a lock)."""

    def __init__(self, base_dir: Path, adapter_dir: Path, snac_dir: str | None):
        import torch
        from peft import PeftModel
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from .orpheus import load_snac, load_tokens_config

        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        self.cfg = load_tokens_config(adapter_dir if (adapter_dir / "orpheus.json").is_file() else base_dir)
        self.tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
        base = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=dtype)
        self.model = PeftModel.from_pretrained(base, str(adapter_dir)).to(self.device).eval()
        self.snac = load_snac(snac_dir, device=self.device)
        self.lock = threading.Lock()

    def generate(self, text: str, *, speaker: str | None, max_new_tokens: int, temperature: float, top_p: float, repetition_penalty: float, seed: int | None) -> tuple[np.ndarray, int]:
        import torch
        from transformers import LogitsProcessorList

        from .orpheus import TOKENS_PER_FRAME, audio_logits_processor, decode_audio_tokens, inference_prompt

        prompt = inference_prompt(self.tokenizer, text, self.cfg, speaker)
        ids = torch.tensor([prompt], device=self.device)
        max_new_tokens = max(TOKENS_PER_FRAME, max_new_tokens // TOKENS_PER_FRAME * TOKENS_PER_FRAME)
        with self.lock, torch.inference_mode():
            if seed is not None:
                torch.manual_seed(seed)
            out = self.model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=max_new_tokens,
                do_sample=True,
                temperature=temperature,
                top_p=top_p,
                repetition_penalty=repetition_penalty,
                logits_processor=LogitsProcessorList([audio_logits_processor(self.cfg, len(prompt))]),
                eos_token_id=self.cfg.end_of_speech,
                pad_token_id=self.cfg.pad,
            )
            generated = out[0, len(prompt) :].tolist()
            self.last_tokens = generated
            audio = decode_audio_tokens(generated, self.snac, self.cfg)
        return audio, self.cfg.sample_rate


_ENGINES: dict[tuple[str, str, str], _Engine] = {}
_ENGINES_LOCK = threading.Lock()


def _engine(base_dir: Path, adapter_dir: Path, snac_dir: str | None) -> _Engine:
    key = (str(base_dir.resolve()), str(adapter_dir.resolve()), str(snac_dir))
    with _ENGINES_LOCK:
        if key not in _ENGINES:
            if len(_ENGINES) >= 2:  # keep at most two voices resident
                _ENGINES.pop(next(iter(_ENGINES)))
            _ENGINES[key] = _Engine(base_dir, adapter_dir, snac_dir)
        return _ENGINES[key]


def _tokens_for(text: str) -> int:
    """Generation budget for a chunk: ~13 characters a second of speech, 2 s slack, at most ~20 s."""
    seconds = min(20.0, len(text) / 13.0 + 2.0)
    return int(np.ceil(seconds * OUTPUT_RATE / 2048)) * 7


# ---------------------------------------------------------------------------------------------- synthesis
def synthesize_stream(
    voice_name: str,
    text: str,
    *,
    voices_dir: str | os.PathLike | None,
    base_model_dir: str | os.PathLike | None = None,
    snac_dir: str | os.PathLike | None = None,
    max_chunk_chars: int = DEFAULT_CHUNK_CHARS,
    max_new_tokens: int | None = None,
    temperature: float = 0.6,
    top_p: float = 0.95,
    repetition_penalty: float = 1.1,
    seed: int | None = None,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> Iterator[tuple[np.ndarray, int]]:
    """An iterator of (float32 mono audio, rate), chunk by chunk; any text length (see the module docstring).

    Checks run and models load before this returns (so an HTTP face can answer an error before it starts
    streaming): BadInputError for empty text, NotFoundError for an unknown voice, ModelMissingError when the
    base model or SNAC is not on this machine. The chunks themselves are synthesised lazily.
    """
    if not text or not text.strip():
        raise BadInputError("nothing to say: the text is empty")
    info = get_voice(voice_name, voices_dir)
    total = max(1, len(text))
    engine = None
    speaker = None
    pocket_voice = None
    meta = {} if info.builtin else json.loads((Path(info.path) / "voice.json").read_text())
    if info.engine == "pocket":  # a cloned voice: the Pocket model + the voice's exported state
        from . import pocket

        pocket_voice = pocket.voice_for(info.path, meta.get("language") or pocket.DEFAULT_LANGUAGE)
    elif meta.get("engine") == "pocket-lora":  # a fine-tuned Pocket voice: its own model copy, LoRA merged
        from .pocket_lora import lora_engine

        pocket_voice = lora_engine(Path(info.path)).voice
    elif not info.builtin:
        from .train import resolve_base_model

        base_ref = str(base_model_dir) if base_model_dir else meta.get("base_model")
        if not base_ref:
            raise BadInputError(f"voice '{voice_name}' has no base_model in its voice.json")
        base = resolve_base_model(base_ref)
        engine = _engine(base, Path(info.path) / "adapter", str(snac_dir) if snac_dir else meta.get("snac_dir"))
        speaker = meta.get("speaker")
    else:
        default_voice.ensure_ready()  # fail now, not mid-stream, when espeak-ng is missing; load the neural voice
    split = split_text(text, max_chunk_chars)

    def chunks() -> Iterator[tuple[np.ndarray, int]]:
        done = 0
        for chunk in split:
            if cancel is not None:
                cancel.check()
            # Pocket TTS (its own streaming, as it decodes) and the default voice (sentence by sentence) stream a chunk
            pieces = (pocket_voice.stream(chunk) if pocket_voice is not None
                      else default_voice.speak_iter(chunk, rate=OUTPUT_RATE) if engine is None else None)
            if pieces is not None:
                for audio, rate in pieces:
                    yield audio, rate
                    if cancel is not None:
                        cancel.check()
                done += len(chunk) + 1
                progress(min(1.0, done / total), f"synthesised {min(done, total)}/{total} characters")
                continue
            audio, rate = engine.generate(
                chunk, speaker=speaker, max_new_tokens=max_new_tokens or _tokens_for(chunk), temperature=temperature, top_p=top_p,
                repetition_penalty=repetition_penalty, seed=seed,
            )
            done += len(chunk) + 1
            progress(min(1.0, done / total), f"synthesised {min(done, total)}/{total} characters")
            yield audio, rate

    return chunks()


def synthesize(
    voice_name: str,
    text: str,
    *,
    voices_dir: str | os.PathLike | None,
    base_model_dir: str | os.PathLike | None = None,
    snac_dir: str | os.PathLike | None = None,
    max_chars: int = MAX_CHARS,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
    **gen,
) -> tuple[np.ndarray, int]:
    """Whole-text synthesis → (float32 mono audio, rate). BadInputError above ``max_chars`` (use the stream)."""
    if len(text) > max_chars:
        raise BadInputError(f"text is {len(text)} characters; the limit for one request is {max_chars} (use streaming for longer text)")
    parts: list[np.ndarray] = []
    rate = OUTPUT_RATE
    for audio, rate in synthesize_stream(voice_name, text, voices_dir=voices_dir, base_model_dir=base_model_dir, snac_dir=snac_dir, progress=progress, cancel=cancel, **gen):
        if parts:
            parts.append(np.zeros(int(PAUSE_S * rate), dtype=np.float32))
        parts.append(audio.astype(np.float32, copy=False))
    return (np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)), rate
