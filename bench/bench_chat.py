"""Chat loop latency and overhead with random-weight Llama GGUFs (tests/tiny_gguf.py) on the embedded provider.

1. Time from the end of the user message to the first audio sample (first sentence synthesised by espeak-ng,
   the built-in ``default`` voice) versus time to the full reply. Goal: first audio earlier. Measured with the
   tiny model (≈0.2 ms a token: unrealistically fast) and a "paced" random model sized to generate at roughly
   the speed of a small real model on CPU.
2. Overhead of our chat loop (Conversation.send: messages, provider, deltas, sentence splitting; no TTS) versus a
   raw llama_cpp ``create_chat_completion(stream=True)`` on the same prompt, seed and loaded-model settings.
   Goal: ratio ours/raw ≤ 1.05 (median of alternating runs).

Run: .venv/bin/python bench/bench_chat.py [--tokens 256] [--runs 7] [--threads 1]
(one llama.cpp thread by default: on a shared 2-core machine two spinning threads make timings erratic)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import numpy as np  # noqa: E402

from tiny_gguf import build_tiny_llama_gguf  # noqa: E402

from pipeline.chat.conversation import Conversation  # noqa: E402
from pipeline.chat.persona import draft_persona  # noqa: E402
from pipeline.chat.providers import EmbeddedLlamaProvider  # noqa: E402

LINES = ["Here's looking at you, kid.", "We'll always have Paris.", "Of all the gin joints in all the towns in all the world, she walks into mine.",
         "I stick my neck out for nobody.", "Louis, I think this is the beginning of a beautiful friendship."]


def make_tts():
    """espeak-ng through the built-in default voice; a 0.3 s sine if that voice is unavailable."""
    try:
        from pipeline.voices import default_voice

        default_voice.speak("warm up")
        return default_voice.speak, "espeak-ng (default voice)"
    except Exception as e:  # noqa: BLE001
        def sine(text):
            t = np.arange(int(0.3 * 24000)) / 24000
            return (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 24000

        return sine, f"sine (default voice unavailable: {e})"


def latency(model: Path, label: str, tokens: int, threads: int, tts, runs: int = 3, short_prompt: bool = False) -> None:
    prov = EmbeddedLlamaProvider(model, n_ctx=2048, n_threads=threads)
    persona = draft_persona("Rick", LINES, "Casablanca")
    if short_prompt:  # the random vocabulary spells most words letter by letter: keep prompt evaluation short
        persona.system_prompt = "You are Rick from Casablanca."
    persona.options = {"seed": 1, "max_tokens": tokens, "temperature": 0.8}
    Conversation(prov, persona).send("warm up")  # load the model
    firsts, fulls, sents = [], [], []
    for i in range(runs):
        persona.options["seed"] = 1 + i
        r = Conversation(prov, persona, tts=tts).send("Tell me about Paris.")
        if r.error or r.t_first_audio is None:
            print(f"  {label}: run {i} failed: {r.error or 'no audio'}")
            continue
        firsts.append(r.t_first_audio)
        fulls.append(r.t_done)
        sents.append(len(r.sentences))
    prov.close()
    if not firsts:
        return
    f, d = statistics.median(firsts), statistics.median(fulls)
    print(f"  {label:<34} first audio {f * 1000:7.0f} ms | full reply {d * 1000:7.0f} ms | "
          f"first/full {f / d:5.2f} | {statistics.median(sents):.0f} sentences, {tokens} tokens")


def overhead(model: Path, tokens: int, threads: int, runs: int) -> None:
    import llama_cpp

    persona = draft_persona("Rick", LINES, "Casablanca")
    persona.options = {"seed": 42, "max_tokens": tokens, "temperature": 0.8}
    prov = EmbeddedLlamaProvider(model, n_ctx=2048, n_threads=threads)
    conv = Conversation(prov, persona, history=[])
    messages, _ = conv.build_messages("Tell me about Paris.")
    raw = llama_cpp.Llama(model_path=str(model), n_ctx=2048, n_threads=threads, verbose=False)

    def run_raw() -> tuple[float, str]:
        t = time.perf_counter()
        parts = []
        for chunk in raw.create_chat_completion(messages=messages, stream=True, seed=42, temperature=0.8, max_tokens=tokens):
            c = chunk["choices"][0]["delta"].get("content")
            if c:
                parts.append(c)
        return time.perf_counter() - t, "".join(parts)

    def run_ours() -> tuple[float, str]:
        conv.history.clear()
        t = time.perf_counter()
        r = conv.send("Tell me about Paris.")
        return time.perf_counter() - t, r.text

    run_raw(), run_ours()  # warm both
    ours, raws, same = [], [], True
    for _ in range(runs):
        tr, text_raw = run_raw()
        to, text_ours = run_ours()
        raws.append(tr)
        ours.append(to)
        same = same and text_raw == text_ours
    raw.close()
    prov.close()
    o, r = statistics.median(ours), statistics.median(raws)
    print(f"  raw create_chat_completion(stream) {r * 1000:7.1f} ms | ours Conversation.send {o * 1000:7.1f} ms | "
          f"ratio ours/raw {o / r:5.3f} (goal ≤ 1.05) | same text: {same} | {runs} runs, {tokens} tokens")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    import llama_cpp

    print(f"llama-cpp-python {llama_cpp.__version__}, {args.threads} threads")
    with tempfile.TemporaryDirectory() as tmp:
        tiny = build_tiny_llama_gguf(Path(tmp) / "tiny.gguf")
        paced = build_tiny_llama_gguf(Path(tmp) / "paced.gguf", n_embd=768, n_layer=6, n_head=12, n_ff=2048)
        tts, tts_label = make_tts()
        print(f"1. end of user message → first audio sample vs full reply (TTS: {tts_label}; medians of 3)")
        latency(tiny, f"tiny ({tiny.stat().st_size / 1e6:.1f} MB)", args.tokens, args.threads, tts)
        latency(paced, f"paced ({paced.stat().st_size / 1e6:.0f} MB, short prompt)", min(args.tokens, 160), args.threads, tts,
                short_prompt=True)
        print("2. chat-loop overhead vs raw llama_cpp (tiny model, no TTS)")
        overhead(tiny, args.tokens, args.threads, args.runs)


if __name__ == "__main__":
    main()
