"""LoRA fine-tuning of an Orpheus-style TTS model on a dataset from :func:`pipeline.voices.dataset.build_dataset`.

Two backends share one training loop:
  unsloth  FastLanguageModel (4-bit base) + its LoRA; needs an NVIDIA GPU (best).
  cpu      plain transformers AutoModelForCausalLM + peft LoraConfig, AdamW (slow; tiny models, tests).

Checkpoints (``out_dir/ckpt-<step>``) hold the LoRA weights, the optimizer and scheduler state and the loss
history; each is written to ``ckpt-<step>.tmp`` and renamed only when complete, and the previous checkpoint is
deleted only after that. A killed run resumes from the newest complete checkpoint. The final adapter goes to
``out_dir/adapter`` (same atomic rename).
"""

from __future__ import annotations

import errno
import io
import json
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from ..errors import BackendUnavailableError, BadInputError, Cancelled, ModelMissingError, StorageError, WeaverError
from ..progress import CancelToken
from ..files import replace_folder

DEFAULT_BASE = "unsloth/orpheus-3b-0.1-ft"
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
NO_GPU_MESSAGE = "no NVIDIA GPU found: the Unsloth backend needs CUDA; use --backend cpu (slow) instead"

TrainProgress = Callable[[int, int, float, "float | None"], None]
"""progress(step, total_steps, loss, eta_seconds)."""
Writer = Callable[[Path, bytes], None]
"""writer(path, data): writes one checkpoint file (injectable so tests can simulate a full disk)."""


@dataclass
class TrainConfig:
    base_model: str = DEFAULT_BASE  # hub id (looked up in the local HF cache) or a local folder
    backend: str = "auto"  # "unsloth" | "cpu" | "auto" (unsloth when CUDA + unsloth are there, else cpu)
    lora_r: int = 16
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    target_modules: tuple[str, ...] = LORA_TARGETS
    steps: int = 60
    lr: float = 2e-4
    warmup_steps: int = 5
    batch_size: int = 1
    grad_accum: int = 4
    save_every: int = 20
    out_dir: str | None = None
    snac_dir: str | None = None  # local SNAC 24 kHz folder; None: $WEAVER_SNAC_DIR or the HF cache
    speaker: str | None = None  # train as "speaker: text" prompts (the multi-voice Orpheus convention)
    max_seq_len: int = 2048
    dedupe_frames: bool = True  # drop repeated SNAC frames as the Orpheus recipe does
    load_in_4bit: bool = True  # unsloth only
    seed: int = 0
    threads: int | None = None  # torch CPU threads (cpu backend)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["target_modules"] = list(self.target_modules)
        return d


@dataclass
class TrainResult:
    adapter_dir: Path
    adapter_bytes: int
    steps: int
    losses: list[float]
    resumed_from: int | None
    backend: str = "cpu"
    base_model: str = ""
    seconds: float = 0.0
    step_seconds: float = 0.0  # mean wall time of one optimizer step in this run
    skipped_examples: int = 0  # longer than max_seq_len


@dataclass
class ModelSizes:
    adapter_bytes: int
    base_bytes: int | None
    ratio: float | None = None  # adapter / base


# ---------------------------------------------------------------------------------------------- helpers
def dir_bytes(folder: str | os.PathLike, patterns: tuple[str, ...] = ("*",)) -> int:
    p = Path(folder)
    if not p.is_dir():
        return 0
    seen = set()
    total = 0
    for pat in patterns:
        for f in p.rglob(pat):
            if f.is_file() and f not in seen:
                seen.add(f)
                total += f.stat().st_size
    return total


from ..hub import cached_hub_folder, hub_fetch_command  # noqa: E402


def resolve_base_model(base_model: str) -> Path:
    """A local folder for the base model: the path itself, or the Hugging Face cache; else ModelMissingError."""
    p = Path(base_model).expanduser()
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise ModelMissingError(base_model, hub_fetch_command(DEFAULT_BASE, str(p)), "folder has no config.json")
        return p
    found = cached_hub_folder(base_model, "config.json")
    if found is not None:
        return found
    raise ModelMissingError(base_model, hub_fetch_command(base_model))


def model_sizes(adapter_dir: str | os.PathLike, base_dir: str | os.PathLike | None) -> ModelSizes:
    """Bytes of a voice's LoRA adapter vs its shared base model's weight files (None when the base is absent)."""
    a = dir_bytes(adapter_dir, ("*.safetensors", "*.bin"))
    b = None
    if base_dir is not None:
        try:
            b = dir_bytes(resolve_base_model(str(base_dir)), ("*.safetensors", "*.bin", "*.gguf"))
        except ModelMissingError:
            b = None
    return ModelSizes(a, b, (a / b) if b else None)


def _default_writer(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _checkpoints(out: Path) -> list[tuple[int, Path]]:
    found = []
    for d in out.glob("ckpt-*"):
        if d.suffix == ".tmp" or not d.is_dir():
            continue
        try:
            step = int(d.name.split("-", 1)[1])
        except ValueError:
            continue
        if (d / "state.json").is_file() and (d / "adapter_model.safetensors").is_file():
            found.append((step, d))
    return sorted(found)


def latest_checkpoint(out_dir: str | os.PathLike) -> tuple[int, Path] | None:
    """(step, folder) of the newest complete checkpoint in a training folder, or None."""
    c = _checkpoints(Path(out_dir))
    return c[-1] if c else None


def _pick_backend(name: str) -> str:
    if name not in ("auto", "unsloth", "cpu"):
        raise BadInputError(f"unknown training backend '{name}' (use unsloth, cpu or auto)")
    if name == "cpu":
        return "cpu"
    import torch

    has_cuda = torch.cuda.is_available()
    if name == "unsloth":
        if not has_cuda:
            raise WeaverError(NO_GPU_MESSAGE)
        return "unsloth"
    if not has_cuda:
        return "cpu"
    import importlib.util

    return "unsloth" if importlib.util.find_spec("unsloth") else "cpu"


# ---------------------------------------------------------------------------------------------- data
def _tokenize_dataset(dataset_dir: Path, cfg: TrainConfig, base_dir: Path, out: Path, device: str) -> list[tuple[str, list[int]]]:
    """(text, audio tokens) per training clip; cached in out/tokens.json so a resumed run skips SNAC."""
    from ..media import read_audio_file, resample
    from .dataset import read_dataset
    from .orpheus import encode_audio_tokens, load_snac, load_tokens_config, resolve_snac_dir

    items = read_dataset(dataset_dir, "train")
    if not items:
        raise BadInputError(f"the dataset {dataset_dir} has no training clips")
    snac_path = resolve_snac_dir(cfg.snac_dir)
    key = json.dumps(
        {"files": [(str(p), p.stat().st_size, int(p.stat().st_mtime)) for p, _ in items], "snac": str(snac_path), "dedupe": cfg.dedupe_frames},
        sort_keys=True,
    )
    cache = out / "tokens.json"
    if cache.is_file():
        try:
            data = json.loads(cache.read_text())
            if data.get("key") == key:
                return [(t, toks) for t, toks in data["items"]]
        except (ValueError, KeyError):
            pass
    tcfg = load_tokens_config(base_dir)
    snac = load_snac(snac_path, device=device)
    result = []
    for path, text in items:
        audio, rate = read_audio_file(path)
        if audio.ndim > 1:
            audio = audio.mean(axis=1)
        audio = resample(audio, rate, tcfg.sample_rate)
        result.append((text, encode_audio_tokens(audio, snac, tcfg, dedupe=cfg.dedupe_frames)))
    tmp = cache.with_name("tokens.json.tmp")
    tmp.write_text(json.dumps({"key": key, "items": result}))
    os.replace(tmp, cache)
    return result


# ---------------------------------------------------------------------------------------------- models
def _load_cpu(base_dir: Path, cfg: TrainConfig):
    try:
        import peft
        from transformers import AutoModelForCausalLM
    except ImportError as e:
        raise BackendUnavailableError(f"the cpu training backend needs transformers + peft ({e.name} missing): pip install 'voice-weaver[voices]'") from None
    import torch

    model = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32)
    present = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    targets = [t for t in cfg.target_modules if t in present]
    if not targets:
        raise BadInputError(f"none of the LoRA target modules {list(cfg.target_modules)} exist in {base_dir}")
    lc = peft.LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout, target_modules=targets, bias="none", task_type="CAUSAL_LM")
    return peft.get_peft_model(model, lc), "cpu"


def _load_unsloth(base_dir: Path, cfg: TrainConfig):
    try:
        from unsloth import FastLanguageModel
    except ImportError:
        raise BackendUnavailableError("the unsloth backend needs the unsloth package: pip install unsloth (NVIDIA GPU + CUDA torch)") from None
    try:
        model, _tok = FastLanguageModel.from_pretrained(model_name=str(base_dir), max_seq_length=cfg.max_seq_len, dtype=None, load_in_4bit=cfg.load_in_4bit)
    except OSError as e:
        raise ModelMissingError(cfg.base_model, hub_fetch_command(cfg.base_model), str(e).splitlines()[0][:120]) from None
    model = FastLanguageModel.get_peft_model(
        model,
        r=cfg.lora_r,
        target_modules=list(cfg.target_modules),
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        bias="none",
        use_gradient_checkpointing="unsloth",
        random_state=cfg.seed,
    )
    if hasattr(FastLanguageModel, "for_training"):
        FastLanguageModel.for_training(model)
    return model, "cuda"


# ---------------------------------------------------------------------------------------------- checkpoints
def _save_adapter_files(model, folder: Path, writer: Writer, base_model: str) -> None:
    from peft import get_peft_model_state_dict
    from safetensors.torch import save as st_save

    sd = {k: v.detach().to("cpu").contiguous() for k, v in get_peft_model_state_dict(model).items()}
    writer(folder / "adapter_model.safetensors", st_save(sd))
    pc = model.peft_config["default"]
    d = pc.to_dict()
    d["base_model_name_or_path"] = base_model
    d = json.loads(json.dumps(d, default=lambda o: sorted(o) if isinstance(o, set) else str(o)))
    writer(folder / "adapter_config.json", json.dumps(d, indent=2).encode())


def _save_checkpoint(out: Path, step: int, model, opt, sched, losses: list[float], cfg: TrainConfig, writer: Writer) -> Path:
    import torch

    final = out / f"ckpt-{step}"
    tmp = out / f"ckpt-{step}.tmp"
    previous = [d for s, d in _checkpoints(out) if s != step]
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        _save_adapter_files(model, tmp, writer, cfg.base_model)
        buf = io.BytesIO()
        torch.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}, buf)
        writer(tmp / "optimizer.pt", buf.getvalue())
        writer(tmp / "state.json", json.dumps({"step": step, "losses": losses, "config": cfg.to_dict(), "time": time.time()}).encode())
        replace_folder(tmp, final)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        kept = f"; the previous checkpoint {previous[-1].name} is kept" if previous else ""
        what = "disk full" if e.errno == errno.ENOSPC else (e.strerror or str(e))
        raise StorageError(f"{what} while saving the checkpoint at step {step} in {out}{kept}") from None
    for d in previous:
        shutil.rmtree(d, ignore_errors=True)
    return final


def _load_checkpoint(folder: Path, model, opt, sched) -> tuple[int, list[float]]:
    import torch
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    dev = next(p for p in model.parameters() if p.requires_grad).device
    set_peft_model_state_dict(model, load_file(str(folder / "adapter_model.safetensors"), device=str(dev)))
    state = torch.load(folder / "optimizer.pt", map_location=dev, weights_only=False)
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    st = json.loads((folder / "state.json").read_text())
    return int(st["step"]), [float(x) for x in st["losses"]]


# ---------------------------------------------------------------------------------------------- training
def train_voice(
    dataset_dir: str | os.PathLike,
    config: TrainConfig,
    *,
    progress: TrainProgress | None = None,
    cancel: CancelToken | None = None,
    writer: Writer | None = None,
) -> TrainResult:
    """Train (or resume training) one voice's LoRA adapter; see the module docstring.

    Raises WeaverError (no GPU for unsloth), ModelMissingError (base model / SNAC not local),
    BadInputError (bad dataset or config), Cancelled (after writing a checkpoint), StorageError (disk full;
    the previous checkpoint stays loadable).
    """
    t_start = time.monotonic()
    if not config.out_dir:
        raise BadInputError("TrainConfig.out_dir is required")
    if config.steps < 1 or config.batch_size < 1 or config.grad_accum < 1 or config.save_every < 1:
        raise BadInputError("steps, batch_size, grad_accum and save_every must be >= 1")
    dataset_dir = Path(dataset_dir)
    out = Path(config.out_dir)
    writer = writer or _default_writer
    backend = _pick_backend(config.backend)
    base_dir = resolve_base_model(config.base_model)
    if backend == "cpu":  # the CPU recipe guard: no random test base, no days-long run
        from .cpu_guard import check_cpu_time, check_random_base

        check_random_base(base_dir)
        check_cpu_time(base_dir, dataset_dir, steps=config.steps, batch_size=config.batch_size, grad_accum=config.grad_accum)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StorageError(f"cannot create {out}: {e.strerror}") from None

    if backend == "unsloth":
        try:
            import unsloth  # noqa: F401  (must be imported before transformers to apply its patches)
        except ImportError:
            raise BackendUnavailableError("the unsloth backend needs the unsloth package: pip install unsloth (NVIDIA GPU + CUDA torch)") from None
    import torch
    from transformers import AutoTokenizer

    from .orpheus import load_tokens_config, training_sequence

    if backend == "cpu" and config.threads:
        torch.set_num_threads(config.threads)
    device = "cuda" if backend == "unsloth" else "cpu"
    tcfg = load_tokens_config(base_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    examples = _tokenize_dataset(dataset_dir, config, base_dir, out, device)
    seqs = [training_sequence(tokenizer, text, toks, tcfg, config.speaker) for text, toks in examples]
    skipped = sum(1 for s in seqs if len(s) > config.max_seq_len)
    seqs = [s for s in seqs if len(s) <= config.max_seq_len]
    if not seqs:
        raise BadInputError(f"every training clip is longer than max_seq_len={config.max_seq_len} tokens")

    torch.manual_seed(config.seed)
    model, dev = _load_cpu(base_dir, config) if backend == "cpu" else _load_unsloth(base_dir, config)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)
    warm = max(0, min(config.warmup_steps, config.steps // 10))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / (warm + 1)) if warm else 1.0)

    start, losses, resumed_from = 0, [], None
    ck = latest_checkpoint(out)
    if ck is not None:
        start, losses = _load_checkpoint(ck[1], model, opt, sched)
        resumed_from = start
        losses = losses[:start]

    def batch_for(micro_index: int) -> list[list[int]]:
        n = len(seqs)
        picks = []
        for j in range(config.batch_size):
            g = micro_index * config.batch_size + j
            epoch, pos = divmod(g, n)
            order = list(range(n))
            random.Random(config.seed * 100003 + epoch).shuffle(order)
            picks.append(seqs[order[pos]])
        return picks

    def collate(batch: list[list[int]]):
        width = max(len(s) for s in batch)
        ids = torch.full((len(batch), width), tcfg.pad, dtype=torch.long)
        att = torch.zeros((len(batch), width), dtype=torch.long)
        lab = torch.full((len(batch), width), -100, dtype=torch.long)
        for i, s in enumerate(batch):
            ids[i, : len(s)] = torch.tensor(s)
            att[i, : len(s)] = 1
            lab[i, : len(s)] = torch.tensor(s)
        return ids.to(dev), att.to(dev), lab.to(dev)

    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if dev == "cuda" else None
    step_times: list[float] = []
    last_saved = start
    step = start
    try:
        for step in range(start, config.steps):
            if cancel is not None and cancel.cancelled:
                raise Cancelled()
            t0 = time.monotonic()
            opt.zero_grad(set_to_none=True)
            total = 0.0
            for m in range(config.grad_accum):
                ids, att, lab = collate(batch_for(step * config.grad_accum + m))
                if autocast is not None:
                    with autocast:
                        loss = model(input_ids=ids, attention_mask=att, labels=lab).loss
                else:
                    loss = model(input_ids=ids, attention_mask=att, labels=lab).loss
                (loss / config.grad_accum).backward()
                total += float(loss.detach())
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            losses.append(total / config.grad_accum)
            step_times.append(time.monotonic() - t0)
            done = step + 1
            if progress is not None:
                eta = (sum(step_times) / len(step_times)) * (config.steps - done)
                progress(done, config.steps, losses[-1], eta)
            if done % config.save_every == 0 and done < config.steps:
                _save_checkpoint(out, done, model, opt, sched, losses, config, writer)
                last_saved = done
        step = config.steps
    except Cancelled:
        done = len(losses)
        if done > last_saved:
            _save_checkpoint(out, done, model, opt, sched, losses, config, writer)
        raise

    adapter = out / "adapter"
    tmp = out / "adapter.tmp"
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        _save_adapter_files(model, tmp, writer, config.base_model)
        writer(tmp / "orpheus.json", json.dumps(tcfg.to_dict(), indent=2).encode())
        writer(tmp / "training.json", json.dumps({"config": config.to_dict(), "losses": losses, "backend": backend}, indent=2).encode())
        old = out / "adapter.old"
        if adapter.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(adapter, old)
        os.replace(tmp, adapter)
        shutil.rmtree(old, ignore_errors=True)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        what = "disk full" if e.errno == errno.ENOSPC else (e.strerror or str(e))
        raise StorageError(f"{what} while saving the adapter in {out}; the checkpoints are kept") from None
    for _s, d in _checkpoints(out):
        shutil.rmtree(d, ignore_errors=True)
    return TrainResult(
        adapter_dir=adapter,
        adapter_bytes=dir_bytes(adapter, ("*.safetensors",)),
        steps=config.steps,
        losses=losses,
        resumed_from=resumed_from,
        backend=backend,
        base_model=config.base_model,
        seconds=time.monotonic() - t_start,
        step_seconds=(sum(step_times) / len(step_times)) if step_times else 0.0,
        skipped_examples=skipped,
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m pipeline.voices.train DATASET --base DIR --out DIR ...``: train from a shell (prints one line a step)."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m pipeline.voices.train")
    ap.add_argument("dataset")
    ap.add_argument("--base", default=DEFAULT_BASE)
    ap.add_argument("--out", required=True)
    ap.add_argument("--snac", default=None)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--save-every", type=int, default=20)
    ap.add_argument("--grad-accum", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--lora-r", type=int, default=16)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--no-dedupe", action="store_true")
    a = ap.parse_args(argv)
    cfg = TrainConfig(
        base_model=a.base, backend=a.backend, steps=a.steps, save_every=a.save_every, grad_accum=a.grad_accum, batch_size=a.batch_size,
        lr=a.lr, lora_r=a.lora_r, lora_alpha=a.lora_r, out_dir=a.out, snac_dir=a.snac, threads=a.threads, dedupe_frames=not a.no_dedupe,
    )

    def show(step, total, loss, eta):
        print(f"step {step}/{total} loss {loss:.4f} eta {eta or 0:.0f}s", flush=True)

    try:
        r = train_voice(a.dataset, cfg, progress=show)
    except WeaverError as e:
        print(f"error: {e}", flush=True)
        return getattr(e, "exit_code", 1)
    print(json.dumps({"adapter_dir": str(r.adapter_dir), "adapter_bytes": r.adapter_bytes, "steps": r.steps, "resumed_from": r.resumed_from,
                      "step_seconds": round(r.step_seconds, 3), "backend": r.backend}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
