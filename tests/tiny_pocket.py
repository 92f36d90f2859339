"""A random-initialised Pocket TTS model laid out as the Hugging Face hub cache that pipeline.voices.pocket reads.

Built from a config shipped inside the ``pocket-tts`` wheel (default ``english_2m_2026-10``: 1.9M parameters, so
tests are fast; the bench uses ``english``, the real 100M layout, for real compute): the model is made by
pocket-tts itself from the config (no weights → random init), the voice-cloning projection is filled with random
numbers, and the state dict is saved as ``model.safetensors`` at the exact repo / path / revision the config
pins. The tokenizer is a real one of the config's kind and vocabulary size (sentencepiece ``.model`` or
tokenizers ``.json``), trained on a few sentences. Cached under $WEAVER_FIXTURE_CACHE/pocket-<language>.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from pathlib import Path

TEST_LANGUAGE = "english_2m_2026-10"
_TEXT = ("The quick brown fox jumps over the lazy dog. Where did you put the keys to the car? "
         "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 .,!?'-:;\"()")


def _hub_path(cache: Path, repo: str, filename: str, revision: str | None) -> Path:
    rev = revision or "0" * 40
    base = cache / ("models--" + repo.replace("/", "--"))
    if revision is None:
        (base / "refs").mkdir(parents=True, exist_ok=True)
        (base / "refs" / "main").write_text(rev)
    out = base / "snapshots" / rev / filename
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def _sentencepiece(path: Path, n_bins: int) -> None:
    import sentencepiece as spm

    def train(n_symbols: int) -> bytes:
        buf = io.BytesIO()
        spm.SentencePieceTrainer.train(sentence_iterator=iter([_TEXT] * 20), model_writer=buf, vocab_size=n_bins, model_type="char",
                                       user_defined_symbols=[f"<x{i}>" for i in range(n_symbols)], hard_vocab_limit=False, minloglevel=2)
        return buf.getvalue()

    first = spm.SentencePieceProcessor(model_proto=train(n_bins - 200))
    proto = train(n_bins - 200 + n_bins - first.vocab_size())
    assert spm.SentencePieceProcessor(model_proto=proto).vocab_size() == n_bins
    path.write_bytes(proto)


def _tokenizers_json(path: Path, n_bins: int) -> None:
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers

    chars = sorted(set(_TEXT + " "))
    vocab = {"<unk>": 0, **{c: i + 1 for i, c in enumerate(chars)}}
    vocab.update({f"<x{i}>": i for i in range(len(vocab), n_bins)})
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    assert tok.get_vocab_size() == n_bins
    tok.save(str(path))


def build_pocket_cache(cache_dir: str | os.PathLike, language: str = TEST_LANGUAGE, *, seed: int = 0) -> Path:
    """Write the random model + tokenizer of ``language`` into a hub cache folder; returns the folder."""
    import safetensors.torch
    import torch
    import yaml

    from pipeline.voices.pocket import HubFile, _hub_refs, config_dict

    cache = Path(cache_dir)
    cfg = config_dict(language)
    refs = _hub_refs(cfg)
    lut = cfg["flow_lm"]["lookup_table"]
    tok_ref = HubFile.parse(refs["flow_lm.lookup_table.tokenizer_path"])
    tok_path = _hub_path(cache, tok_ref.repo, tok_ref.filename, tok_ref.revision)
    if tok_ref.filename.endswith(".json"):
        _tokenizers_json(tok_path, int(lut["n_bins"]))
    else:
        _sentencepiece(tok_path, int(lut["n_bins"]))

    from pocket_tts import TTSModel

    local = dict(cfg)
    local.pop("weights_path", None)
    local.pop("weights_path_without_voice_cloning", None)
    local["flow_lm"] = {**cfg["flow_lm"], "lookup_table": {**lut, "tokenizer_path": str(tok_path)}}
    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory() as tmp:
        y = Path(tmp) / f"{language}.yaml"
        y.write_text(yaml.safe_dump(local))
        tts = TTSModel.load_model(config=y)
    d, k = tts.flow_lm.speaker_proj_weight.shape
    with torch.no_grad():
        tts.flow_lm.speaker_proj_weight.copy_(torch.randn(d, k) / k**0.5)
    w_ref = HubFile.parse(refs["weights_path"])
    w_path = _hub_path(cache, w_ref.repo, w_ref.filename, w_ref.revision)
    safetensors.torch.save_file({k: v.contiguous() for k, v in tts.state_dict().items()}, str(w_path))
    return cache


def pocket_cache(language: str = TEST_LANGUAGE) -> Path:
    """The cached hub folder holding the random ``language`` model (built once per fixture cache)."""
    root = Path(os.environ.get("WEAVER_FIXTURE_CACHE") or Path(tempfile.gettempdir()) / "weaver-fixtures")
    out = root / f"pocket-{language}-v1"
    if not (out / ".done").is_file():
        tmp = root / f".pocket-{language}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        build_pocket_cache(tmp, language)
        (tmp / ".done").write_text("ok")
        shutil.rmtree(out, ignore_errors=True)
        os.replace(tmp, out)
    return out
