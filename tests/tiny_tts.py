"""Builders for a tiny random Orpheus-shaped TTS stack (base LM + tokenizer + SNAC codec) used by the voice tests.

The real recipe is kept: the LM vocabulary is text tokens + 10 special tokens + 7 x 4096 audio tokens, and the
SNAC codec has the real 24 kHz layout (only its decoder is narrowed so decoding is fast on 2 CPU cores).
"""

from __future__ import annotations

from pathlib import Path

TINY_TEXT_VOCAB = 320  # byte-level BPE (<= 300 tokens) padded up; specials start at 320

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "I never said that she stole my money.",
    "Rain keeps falling on the old tin roof tonight.",
    "Where did you put the keys to the car?",
    "We should leave before the storm arrives.",
    "Nobody expected the captain to come back alive.",
    "Close the door and turn off the lights, please.",
    "That is the strangest thing I have ever heard.",
]


def build_tokenizer(folder: Path):
    """A byte-level BPE tokenizer with Llama-3-style BOS/EOT names, saved as a PreTrainedTokenizerFast."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<|begin_of_text|>", "<|eot_id|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(SENTENCES * 4, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", 0)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>", pad_token="<|eot_id|>")
    folder.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(folder))
    assert len(fast) <= TINY_TEXT_VOCAB
    return fast


def build_base_model(folder: Path, *, hidden: int = 64, layers: int = 2, seed: int = 0) -> Path:
    """Save a random LlamaForCausalLM + tokenizer + orpheus.json into ``folder`` (the 'base model')."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from pipeline.voices.orpheus import OrpheusTokens

    folder = Path(folder)
    build_tokenizer(folder)
    cfg = OrpheusTokens(text_vocab_size=TINY_TEXT_VOCAB, bos=0, end_of_text=1)
    torch.manual_seed(seed)
    mc = LlamaConfig(
        vocab_size=cfg.vocab_size,
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=False,
        bos_token_id=cfg.bos,
        eos_token_id=cfg.end_of_speech,
        pad_token_id=cfg.pad,
    )
    model = LlamaForCausalLM(mc)
    model.save_pretrained(str(folder))
    cfg.save(folder)
    (folder / "RANDOM_WEIGHTS").write_text("random test weights: trains only with WEAVER_TEST_RANDOM_BASE=1\n")
    return folder


def build_snac(folder: Path, *, decoder_dim: int = 64, seed: int = 0) -> Path:
    """Save a random SNAC with the Orpheus 24 kHz layout (config.json + pytorch_model.bin), as on the hub."""
    import json

    import torch
    from snac import SNAC

    kw = dict(
        sampling_rate=24000, encoder_dim=48, encoder_rates=[2, 4, 8, 8], decoder_dim=decoder_dim, decoder_rates=[8, 8, 4, 2],
        attn_window_size=None, codebook_size=4096, codebook_dim=8, vq_strides=[4, 2, 1], noise=True, depthwise=True,
    )
    torch.manual_seed(seed)
    model = SNAC(**kw)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(kw))
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    return folder


def build_all(root: Path) -> tuple[Path, Path]:
    """Base model folder and SNAC folder under ``root``."""
    return build_base_model(Path(root) / "base"), build_snac(Path(root) / "snac")


def espeak_clip(path: Path, text: str, voice: str = "en+m3") -> Path:
    """Write an espeak-ng WAV (22050 Hz mono) saying ``text``."""
    import subprocess

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True, capture_output=True)
    return path


def sox(*args: str) -> None:
    import subprocess

    subprocess.run(["sox", *args], check=True, capture_output=True)


def speech_clips(folder: Path, n: int = 6, voice: str = "en+m3") -> list[tuple[Path, str]]:
    """n clean espeak-ng clips (2.5-4.5 s each) of one voice (a character's lines) with their texts."""
    out = []
    for i, text in enumerate(SENTENCES[:n]):
        out.append((espeak_clip(Path(folder) / f"clean{i}.wav", text, voice), text))
    return out


def tiny_dataset(root: Path, n: int = 6):
    """A built dataset of n clean clips under root/dataset (returns the DatasetSummary)."""
    from pipeline.voices.dataset import ClipSample, build_dataset

    clips = speech_clips(Path(root) / "clips", n)
    return build_dataset([ClipSample(p, t) for p, t in clips], Path(root) / "dataset", val_fraction=0.0)
