"""The Orpheus TTS recipe: SNAC audio tokens, the prompt layout, and decoding generated tokens back to audio.

Orpheus is a Llama-shaped causal LM whose vocabulary is the text tokenizer's plus a block of special tokens plus
7 x 4096 audio tokens. One SNAC 24 kHz frame (2048 samples, three codebook levels with 1, 2 and 4 codes) becomes
7 tokens; token k of a frame lives in its own 4096-wide range starting at ``audio_start + k * codebook_size``.

Every id is held by :class:`OrpheusTokens`, so a tiny test vocabulary uses exactly the same code path as the real
``unsloth/orpheus-3b-0.1-ft`` (whose numbers are the defaults). A base model folder may carry an ``orpheus.json``
with its own numbers (see :func:`load_tokens_config`).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import BadInputError, ModelMissingError

SNAC_REPO = "hubertsiuzdak/snac_24khz"
SNAC_RATE = 24000
TOKENS_PER_FRAME = 7
CONFIG_NAME = "orpheus.json"

# Which SNAC level (0: coarse, 1: middle, 2: fine) each of the 7 frame tokens comes from, and the index within
# that level's codes for frame i is  per_frame[level] * i + offset.
_FRAME_LAYOUT: tuple[tuple[int, int], ...] = (
    (0, 0),  # level 0, code i
    (1, 0),  # level 1, code 2i
    (2, 0),  # level 2, code 4i
    (2, 1),  # level 2, code 4i+1
    (1, 1),  # level 1, code 2i+1
    (2, 2),  # level 2, code 4i+2
    (2, 3),  # level 2, code 4i+3
)
_PER_FRAME = (1, 2, 4)


@dataclass(frozen=True)
class OrpheusTokens:
    """Token ids of the Orpheus layout. Defaults are those of the released Orpheus 3B models."""

    text_vocab_size: int = 128256  # the text tokenizer's length; special tokens start right after it
    bos: int = 128000  # <|begin_of_text|>
    end_of_text: int = 128009  # <|eot_id|>
    codebook_size: int = 4096
    samples_per_frame: int = 2048  # SNAC 24 kHz: hop 512 x coarse stride 4
    sample_rate: int = SNAC_RATE

    @property
    def start_of_speech(self) -> int:
        return self.text_vocab_size + 1

    @property
    def end_of_speech(self) -> int:
        return self.text_vocab_size + 2

    @property
    def start_of_human(self) -> int:
        return self.text_vocab_size + 3

    @property
    def end_of_human(self) -> int:
        return self.text_vocab_size + 4

    @property
    def start_of_ai(self) -> int:
        return self.text_vocab_size + 5

    @property
    def end_of_ai(self) -> int:
        return self.text_vocab_size + 6

    @property
    def pad(self) -> int:
        return self.text_vocab_size + 7

    @property
    def audio_start(self) -> int:
        return self.text_vocab_size + 10

    @property
    def vocab_size(self) -> int:
        """Smallest model vocabulary that holds every text, special and audio token."""
        return self.audio_start + TOKENS_PER_FRAME * self.codebook_size

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "OrpheusTokens":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def save(self, folder: str | os.PathLike) -> Path:
        p = Path(folder) / CONFIG_NAME
        p.write_text(json.dumps(self.to_dict(), indent=2))
        return p


def load_tokens_config(folder: str | os.PathLike | None) -> OrpheusTokens:
    """Read ``orpheus.json`` from a model/adapter folder; the Orpheus 3B defaults when absent."""
    if folder is not None:
        p = Path(folder) / CONFIG_NAME
        if p.is_file():
            return OrpheusTokens.from_dict(json.loads(p.read_text()))
    return OrpheusTokens()


# ---------------------------------------------------------------------------------------------- codes <-> tokens
def codes_to_tokens(codes: Sequence, cfg: OrpheusTokens, *, dedupe: bool = True) -> list[int]:
    """Interleave SNAC codes (3 levels, batch 1) into Orpheus audio token ids, 7 per frame.

    ``dedupe`` drops a frame whose coarse code repeats the previous frame's, as the Orpheus fine-tuning
    recipe does (long silences collapse; the model learns to hold sounds).
    """
    levels = [np.asarray(c.detach().cpu().numpy() if hasattr(c, "detach") else c).reshape(-1) for c in codes]
    if len(levels) != 3:
        raise BadInputError(f"SNAC codes must have 3 levels, got {len(levels)}")
    n = levels[0].shape[0]
    if levels[1].shape[0] != 2 * n or levels[2].shape[0] != 4 * n:
        raise BadInputError("SNAC code levels are not in the 1:2:4 layout of the 24 kHz model")
    out: list[int] = []
    prev = None
    for i in range(n):
        if dedupe and prev is not None and int(levels[0][i]) == prev:
            continue
        prev = int(levels[0][i])
        for k, (level, off) in enumerate(_FRAME_LAYOUT):
            code = int(levels[level][_PER_FRAME[level] * i + off])
            out.append(cfg.audio_start + k * cfg.codebook_size + code)
    return out


def tokens_to_codes(tokens: Sequence[int], cfg: OrpheusTokens) -> list[np.ndarray]:
    """Turn generated audio token ids back into SNAC codes (3 int64 arrays shaped (1, n), (1, 2n), (1, 4n)).

    Anything before the last start-of-speech and from end-of-speech on is dropped; ids outside the audio
    range are skipped; an incomplete trailing frame is dropped; a frame whose token is in the wrong
    codebook range is dropped whole (so the result is always valid SNAC input).
    """
    toks = list(int(t) for t in tokens)
    if cfg.start_of_speech in toks:
        toks = toks[len(toks) - toks[::-1].index(cfg.start_of_speech):]
    if cfg.end_of_speech in toks:
        toks = toks[: toks.index(cfg.end_of_speech)]
    lo, hi = cfg.audio_start, cfg.audio_start + TOKENS_PER_FRAME * cfg.codebook_size
    toks = [t for t in toks if lo <= t < hi]
    levels: list[list[int]] = [[], [], []]
    for f in range(len(toks) // TOKENS_PER_FRAME):
        frame = toks[f * TOKENS_PER_FRAME : (f + 1) * TOKENS_PER_FRAME]
        codes = [t - cfg.audio_start - k * cfg.codebook_size for k, t in enumerate(frame)]
        if any(not 0 <= c < cfg.codebook_size for c in codes):
            continue
        slots: list[list[int]] = [[0], [0, 0], [0, 0, 0, 0]]
        for k, (level, off) in enumerate(_FRAME_LAYOUT):
            slots[level][off] = codes[k]
        for level in range(3):
            levels[level].extend(slots[level])
    return [np.asarray(lv, dtype=np.int64).reshape(1, -1) for lv in levels]


# ---------------------------------------------------------------------------------------------- prompts
def text_ids(tokenizer, text: str, cfg: OrpheusTokens) -> list[int]:
    """Tokenize text as Orpheus does: BOS + text tokens + end-of-text."""
    ids = list(tokenizer(text, add_special_tokens=True)["input_ids"])
    if not ids or ids[0] != cfg.bos:
        ids = [cfg.bos] + ids
    return ids + [cfg.end_of_text]


def prompt_text(text: str, speaker: str | None = None) -> str:
    """The text part of a prompt: ``"speaker: text"`` when the voice was trained with a speaker tag."""
    return f"{speaker}: {text}" if speaker else text


def training_sequence(tokenizer, text: str, audio_tokens: Sequence[int], cfg: OrpheusTokens, speaker: str | None = None) -> list[int]:
    """One training example: human turn (text) then AI turn (speech tokens), as in the Orpheus recipe."""
    return (
        [cfg.start_of_human]
        + text_ids(tokenizer, prompt_text(text, speaker), cfg)
        + [cfg.end_of_human, cfg.start_of_ai, cfg.start_of_speech]
        + list(audio_tokens)
        + [cfg.end_of_speech, cfg.end_of_ai]
    )


def inference_prompt(tokenizer, text: str, cfg: OrpheusTokens, speaker: str | None = None) -> list[int]:
    """Prompt for generation; ends with start-of-AI + start-of-speech so the model continues with audio tokens."""
    return [cfg.start_of_human] + text_ids(tokenizer, prompt_text(text, speaker), cfg) + [cfg.end_of_human, cfg.start_of_ai, cfg.start_of_speech]


def audio_logits_processor(cfg: OrpheusTokens, prompt_len: int):
    """A transformers LogitsProcessor that only lets the model emit valid audio tokens.

    Position p (counted from the first generated token) may only take a token from codebook range p mod 7;
    end-of-speech is allowed only on a frame boundary. Generated audio therefore always decodes.
    """
    import torch
    from transformers import LogitsProcessor

    class _AudioOnly(LogitsProcessor):
        def __call__(self, input_ids, scores):
            k = (input_ids.shape[1] - prompt_len) % TOKENS_PER_FRAME
            mask = torch.full_like(scores, float("-inf"))
            lo = cfg.audio_start + k * cfg.codebook_size
            mask[:, lo : lo + cfg.codebook_size] = 0
            if k == 0:
                mask[:, cfg.end_of_speech] = 0
            return scores + mask

    return _AudioOnly()


# ---------------------------------------------------------------------------------------------- SNAC
from ..hub import cached_hub_folder, hub_fetch_command  # noqa: E402


def resolve_snac_dir(snac_dir: str | os.PathLike | None = None) -> Path:
    """Find a local SNAC 24 kHz folder (config.json + pytorch_model.bin).

    Order: the argument, $WEAVER_SNAC_DIR, the Hugging Face cache. Raises ModelMissingError otherwise.
    """
    for cand in (snac_dir, os.environ.get("WEAVER_SNAC_DIR")):
        if cand:
            p = Path(cand)
            if (p / "config.json").is_file() and (p / "pytorch_model.bin").is_file():
                return p
            raise ModelMissingError(SNAC_REPO, hub_fetch_command(SNAC_REPO, str(p)), f"{p} has no config.json + pytorch_model.bin")
    found = cached_hub_folder(SNAC_REPO, "pytorch_model.bin")
    if found is not None:
        return found
    raise ModelMissingError(SNAC_REPO, hub_fetch_command(SNAC_REPO))


_SNAC_CACHE: dict[tuple[str, str], object] = {}


def load_snac(snac_dir: str | os.PathLike | None = None, device: str = "cpu"):
    """Load (and cache) the SNAC codec from a local folder."""
    path = resolve_snac_dir(snac_dir)
    key = (str(path.resolve()), device)
    if key not in _SNAC_CACHE:
        from snac import SNAC

        model = SNAC.from_pretrained(str(path)).eval().to(device)
        _SNAC_CACHE.clear()  # one codec at a time is plenty
        _SNAC_CACHE[key] = model
    return _SNAC_CACHE[key]


def encode_audio_tokens(audio: np.ndarray, snac, cfg: OrpheusTokens, *, dedupe: bool = True) -> list[int]:
    """SNAC-encode float mono audio at cfg.sample_rate into Orpheus audio token ids."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)).reshape(1, 1, -1)
    dev = next(snac.parameters()).device
    with torch.inference_mode():
        codes = snac.encode(x.to(dev))
    return codes_to_tokens(codes, cfg, dedupe=dedupe)


def decode_audio_tokens(tokens: Sequence[int], snac, cfg: OrpheusTokens) -> np.ndarray:
    """Generated token ids → SNAC decode → float32 mono waveform at cfg.sample_rate (2048 samples per frame)."""
    import torch

    codes = tokens_to_codes(tokens, cfg)
    if codes[0].shape[1] == 0:
        return np.zeros(0, dtype=np.float32)
    dev = next(snac.parameters()).device
    with torch.inference_mode():
        audio = snac.decode([torch.from_numpy(c).to(dev) for c in codes])
    return audio.reshape(-1).float().cpu().numpy()
