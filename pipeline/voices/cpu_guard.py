"""The CPU recipe guard for Orpheus-style LoRA training (issue #13).

- ``--backend cpu`` (or ``auto`` without a GPU) never falls back to the multi-GB default base: a base must be given.
- A base folder holding random test weights (``RANDOM_WEIGHTS`` marker, written by tests/tiny_tts.py) trains only
  when ``WEAVER_TEST_RANDOM_BASE=1`` (the test suite sets it): such a model "trains" and then speaks noise.
- Before training on a CPU the time is estimated from the base's config.json (parameters), the dataset (clip
  seconds → Orpheus tokens) and the steps, at this machine's measured matmul speed; above the cap
  (``WEAVER_CPU_TRAIN_MAX_HOURS``, default 2 h) training is refused with one line saying what to use instead.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import BadInputError

RANDOM_MARKER = "RANDOM_WEIGHTS"
TEST_ENV = "WEAVER_TEST_RANDOM_BASE"
CAP_ENV = "WEAVER_CPU_TRAIN_MAX_HOURS"
GFLOPS_ENV = "WEAVER_CPU_GFLOPS"
DEFAULT_CAP_HOURS = 2.0
AUDIO_TOKENS_PER_S = 7 * 24000 / 2048  # Orpheus: 7 SNAC tokens a frame, one frame per 2048 samples at 24 kHz
TRAIN_EFFICIENCY = 0.3  # a LoRA step on a CPU reaches about this share of the bare matmul speed
ALTERNATIVES = ("use the Pocket TTS fine-tune instead (weaver train NAME --dataset N --backend pocket-lora: a LoRA on "
                "the 100M Pocket model, CPU-sized), the instant Pocket voice (no training), or an NVIDIA GPU "
                "(--backend unsloth)")


class CpuTrainingRefused(BadInputError):
    """Training on this CPU would take unreasonably long (or uses a base that is not for CPUs)."""


@dataclass
class CpuEstimate:
    parameters: int
    tokens_per_step: float
    steps: int
    gflops: float
    hours: float

    def to_dict(self) -> dict:
        return dict(vars(self))


def cap_hours() -> float:
    try:
        return float(os.environ.get(CAP_ENV, DEFAULT_CAP_HOURS))
    except ValueError:
        raise BadInputError(f"{CAP_ENV} must be a number of hours") from None


def parameter_count(config: dict) -> int:
    """Parameters of a Llama-shaped causal LM from its config.json (embedding lookup excluded, LM head included)."""
    h, layers = int(config["hidden_size"]), int(config["num_hidden_layers"])
    inter = int(config.get("intermediate_size", 4 * h))
    heads = int(config.get("num_attention_heads", 1))
    kv = int(config.get("num_key_value_heads", heads))
    vocab = int(config.get("vocab_size", 0))
    attn = 2 * h * h + 2 * h * (h * kv // max(1, heads))
    return layers * (attn + 3 * h * inter) + vocab * h


_GFLOPS: list[float] = []


def measured_gflops() -> float:
    """Matmul GFLOP/s of this machine's torch (about 0.2 s, once a process); $WEAVER_CPU_GFLOPS overrides."""
    if os.environ.get(GFLOPS_ENV):
        return float(os.environ[GFLOPS_ENV])
    if not _GFLOPS:
        import torch

        a = torch.randn(512, 512)
        b = torch.randn(512, 512)
        a @ b
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < 0.2:
            a @ b
            n += 1
        _GFLOPS.append(2 * 512**3 * n / (time.perf_counter() - t0) / 1e9)
    return _GFLOPS[0]


def dataset_seconds(dataset_dir: str | os.PathLike) -> tuple[int, float]:
    """(clips, mean seconds) of a dataset's training split; (0, 0) when it cannot be read."""
    import soundfile as sf

    from .dataset import read_dataset

    try:
        items = read_dataset(dataset_dir, "train")
    except BadInputError:
        return 0, 0.0
    secs = []
    for path, _text in items:
        try:
            secs.append(sf.info(str(path)).duration)
        except (RuntimeError, OSError):
            continue
    return len(secs), (sum(secs) / len(secs)) if secs else 0.0


def estimate(base_dir: str | os.PathLike, dataset_dir: str | os.PathLike, *, steps: int, batch_size: int = 1,
             grad_accum: int = 4, gflops: float | None = None) -> CpuEstimate:
    cfg = json.loads((Path(base_dir) / "config.json").read_text())
    params = parameter_count(cfg)
    _n, mean_s = dataset_seconds(dataset_dir)
    seq = (mean_s or 8.0) * AUDIO_TOKENS_PER_S + 24  # audio tokens + the text prompt
    tokens = seq * batch_size * grad_accum
    speed = (gflops or measured_gflops()) * TRAIN_EFFICIENCY
    flops = 6.0 * params * tokens * steps  # forward + backward through the frozen weights (LoRA: ≈ full backward)
    return CpuEstimate(params, tokens, steps, round(speed, 2), flops / (speed * 1e9) / 3600)


def check_default_base(base_model: str | None, default_base: str) -> None:
    """Refuse the CPU route on the multi-GB default base (what it falls back to without --base)."""
    if not base_model or base_model == default_base:
        raise CpuTrainingRefused(f"training on a CPU does not default to {default_base} (3B parameters, about 6.6 GB; "
                                 f"days of CPU time): {ALTERNATIVES}; or pass --base with a small Orpheus-style model")


def check_random_base(base_dir: str | os.PathLike) -> None:
    if (Path(base_dir) / RANDOM_MARKER).exists() and os.environ.get(TEST_ENV) != "1":
        raise CpuTrainingRefused(f"the base model {base_dir} holds random test weights (it would speak noise); it is "
                                 f"for tests only ({TEST_ENV}=1)")


def check_cpu_time(base_dir: str | os.PathLike, dataset_dir: str | os.PathLike, *, steps: int, batch_size: int = 1,
                   grad_accum: int = 4) -> CpuEstimate:
    """The estimate, or CpuTrainingRefused (one line: how long, the cap, what to use instead)."""
    est = estimate(base_dir, dataset_dir, steps=steps, batch_size=batch_size, grad_accum=grad_accum)
    cap = cap_hours()
    if est.hours > cap:
        raise CpuTrainingRefused(
            f"training {steps} steps on this CPU would take about {_human(est.hours)} (a {est.parameters / 1e9:.1f}B-"
            f"parameter base at ~{est.gflops:.0f} GFLOP/s; the cap is {cap:g} h, {CAP_ENV}): {ALTERNATIVES}")
    return est


def _human(hours: float) -> str:
    if hours >= 48:
        return f"{hours / 24:.0f} days"
    if hours >= 1:
        return f"{hours:.0f} h"
    return f"{hours * 60:.0f} min"
