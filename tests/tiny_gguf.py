"""A tiny random-weight Llama written as GGUF with the pure-Python ``gguf`` package (a real engine for chat tests).

The model knows nothing, but llama.cpp loads it, applies its ChatML template and generates tokens in
milliseconds. The vocabulary is SentencePiece-style (``▁``-prefixed pieces, byte fallback ``<0x00>``..``<0xFF>``)
and its output layer favours whole words — about a third of which end a sentence — so a random reply reads
as a stream of short "sentences" (useful for sentence-level TTS tests) and almost never emits the end token
(so generation length is set by ``max_tokens``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_WORDS = (
    "I You We They It The Maybe Now Well Yes No Never Always Here There Listen "
    "you we they it the a an and but so yes no not here there now then well maybe always never "
    "think know want see go come say tell ask find make take give hold stay run wait look listen "
    "friend night city light road house door ship star time voice heart world story"
).split()
_ENDERS = (
    "indeed. again. tonight. already. enough. forever. alone. together. soon. home. "
    "now! go! wait! listen! look! why? how? who? where? really?"
).split()

# token types (llama.cpp): 1 normal, 2 unknown, 3 control, 6 byte
_NORMAL, _UNKNOWN, _CONTROL, _BYTE = 1, 2, 3, 6


def tiny_vocab() -> tuple[list[str], list[float], list[int], dict[str, int]]:
    """Tokens, scores, types and the special ids of the tiny SPM vocabulary."""
    tokens = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
    types = [_UNKNOWN, _CONTROL, _CONTROL, _CONTROL, _CONTROL]
    scores = [0.0] * len(tokens)
    for b in range(256):
        tokens.append(f"<0x{b:02X}>")
        types.append(_BYTE)
        scores.append(0.0)
    pieces = ["▁"] + [chr(c) for c in range(ord("a"), ord("z") + 1)] + [chr(c) for c in range(ord("A"), ord("Z") + 1)]
    pieces += [".", ",", "!", "?", "'"]
    pieces += ["▁" + w for w in _WORDS] + ["▁" + w for w in _ENDERS]
    for i, p in enumerate(pieces):
        tokens.append(p)
        types.append(_NORMAL)
        scores.append(-float(i) if len(p) == 1 else float(len(p)))  # longer pieces merge first
    special = {"unk": 0, "bos": 1, "eos": 2, "im_start": 3, "im_end": 4}
    return tokens, scores, types, special


def build_tiny_llama_gguf(path, *, n_embd: int = 64, n_layer: int = 2, n_head: int = 4, n_ff: int = 128,
                          n_ctx: int = 2048, seed: int = 0, chat_template: str = CHATML_TEMPLATE) -> Path:
    """Write a random-weight Llama GGUF (F32) with a chat template (ChatML unless given) to ``path``; returns it."""
    import gguf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tokens, scores, types, special = tiny_vocab()
    n_vocab = len(tokens)
    rng = np.random.default_rng(seed)

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("voice-weaver-tiny-random")
    w.add_context_length(n_ctx)
    w.add_embedding_length(n_embd)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(n_embd // n_head)
    w.add_rope_freq_base(10000.0)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(special["bos"])
    w.add_eos_token_id(special["im_end"])  # a chat reply ends at <|im_end|>
    w.add_unk_token_id(special["unk"])
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_chat_template(chat_template)

    def t(*shape, scale=0.08):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    w.add_tensor("token_embd.weight", t(n_vocab, n_embd, scale=0.5))
    for i in range(n_layer):
        p = f"blk.{i}."
        w.add_tensor(p + "attn_norm.weight", np.ones(n_embd, dtype=np.float32))
        w.add_tensor(p + "attn_q.weight", t(n_embd, n_embd))
        w.add_tensor(p + "attn_k.weight", t(n_embd, n_embd))
        w.add_tensor(p + "attn_v.weight", t(n_embd, n_embd))
        w.add_tensor(p + "attn_output.weight", t(n_embd, n_embd))
        w.add_tensor(p + "ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
        w.add_tensor(p + "ffn_gate.weight", t(n_ff, n_embd))
        w.add_tensor(p + "ffn_up.weight", t(n_ff, n_embd))
        w.add_tensor(p + "ffn_down.weight", t(n_embd, n_ff))
    w.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    # Output rows: whole-word pieces get large random rows (high-variance logits, so one usually wins),
    # everything else (bytes, letters, specials) stays at logit 0 and is rarely sampled.
    out = np.zeros((n_vocab, n_embd), dtype=np.float32)
    for idx, tok in enumerate(tokens):
        if tok.startswith("▁") and len(tok) > 1:
            out[idx] = rng.standard_normal(n_embd).astype(np.float32) * 0.6
    w.add_tensor("output.weight", out)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


if __name__ == "__main__":  # pragma: no cover - manual helper
    import sys

    print(build_tiny_llama_gguf(sys.argv[1] if len(sys.argv) > 1 else "tiny.gguf"))
