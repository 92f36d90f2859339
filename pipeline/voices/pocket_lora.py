"""Pocket TTS fine-tuned voice: a per-voice LoRA on the flow LM's transformer, trained on the character's dataset
on a CPU (issue #13, the "fine-tuned voice"). Engine name ``pocket-lora``.

The pocket-tts wheel ships inference only, so the training objective is written here against its public modules:
each training clip is encoded once by the model's own Mimi encoder (latents normalised with the flow LM's
``emb_mean`` / ``emb_std``, cached in ``out_dir/latents.safetensors``); a teacher-forced pass of the flow LM sees
[voice prompt, text tokens, BOS + latents[:-1]] exactly as generation lays them out (the voice prompt is the
speaker projection of the dataset's reference clip), and the loss is the flow head's conditional flow-matching
error on the next latent (the time-diagonal term of the head's objective: ``s = t`` for LSD heads, the noise →
latent step for one-step heads) plus the end-of-speech logit on the last frame. Only the LoRA matrices train
(rank ``r`` on every attention in/out projection and feed-forward linear of the flow LM transformer); the
100M base stays shared and frozen.

Layout of a training folder (``out_dir``): ``ckpt-<step>/`` (adapter + optimizer + state, written to ``.tmp``
and renamed when complete; a cancelled run writes one before it stops, a resumed run continues from the newest),
``adapter/`` at the end: ``adapter_model.safetensors`` (the LoRA), ``adapter_config.json`` and
``voice_state.safetensors`` (the reference clip's voice state computed through the adapted model).

At synthesis the voice gets its own copy of the model with the LoRA merged into the weights (so speed equals the
base model's; the shared cached base is never modified).
"""

from __future__ import annotations

import copy
import io
import json
import os
import random
import shutil
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import BadInputError, Cancelled, StorageError
from ..progress import CancelToken
from ..files import replace_folder

ENGINE = "pocket-lora"
ADAPTER_FILE = "adapter_model.safetensors"
TARGETS = ("self_attn.in_proj", "self_attn.out_proj", "linear1", "linear2")

TrainProgress = Callable[[int, int, float, "float | None"], None]


@dataclass
class PocketLoraConfig:
    language: str = "english"  # a pocket-tts model config (the shared base)
    r: int = 8
    alpha: float = 16.0
    steps: int = 60
    lr: float = 1e-3
    save_every: int = 20
    max_seconds: float = 15.0  # longer clips are cut (frames at 12.5 Hz)
    eos_weight: float = 0.1
    seed: int = 0
    out_dir: str | None = None
    threads: int | None = None
    targets: tuple[str, ...] = field(default=TARGETS)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["targets"] = list(self.targets)
        return d


@dataclass
class PocketLoraResult:
    adapter_dir: Path
    adapter_bytes: int
    base_bytes: int | None
    steps: int
    losses: list[float]
    resumed_from: int | None
    step_seconds: float
    seconds: float
    backend: str = ENGINE


# ---------------------------------------------------------------------------------------------- LoRA
def _lora_class():
    import torch
    from torch import nn

    class LoRALinear(nn.Module):
        """``base(x) + (x Aᵀ Bᵀ) · alpha/r``; B starts at zero so step 0 is the base model."""

        def __init__(self, base: nn.Linear, r: int, alpha: float):
            super().__init__()
            self.base = base
            self.scale = alpha / r
            self.lora_A = nn.Parameter(torch.randn(r, base.in_features) / base.in_features**0.5)
            self.lora_B = nn.Parameter(torch.zeros(base.out_features, r))

        @property
        def weight(self):  # pocket-tts reads in_proj.weight for the KV-cache dtype/device
            return self.base.weight

        def forward(self, x):
            return self.base(x) + (x @ self.lora_A.t() @ self.lora_B.t()) * self.scale

        def merged(self) -> nn.Linear:
            with torch.no_grad():
                self.base.weight += (self.lora_B @ self.lora_A) * self.scale
            return self.base

    return LoRALinear


def inject_lora(flow_lm, cfg: PocketLoraConfig) -> dict[str, object]:
    """Wrap the target linears of ``flow_lm.transformer`` with LoRA (everything else frozen); name → module."""
    LoRALinear = _lora_class()
    for p in flow_lm.parameters():
        p.requires_grad_(False)
    modules = dict(flow_lm.transformer.named_modules())
    wrapped = {}
    for name, module in list(modules.items()):
        if type(module).__name__ != "Linear" or not any(name == t or name.endswith("." + t) for t in cfg.targets):
            continue
        parent, _, leaf = name.rpartition(".")
        lora = LoRALinear(module, cfg.r, cfg.alpha)
        setattr(modules[parent] if parent else flow_lm.transformer, leaf, lora)
        wrapped[name] = lora
    if not wrapped:
        raise BadInputError(f"no LoRA targets {list(cfg.targets)} in this Pocket TTS model")
    return wrapped


def lora_state(wrapped: dict) -> dict:
    out = {}
    for name, m in wrapped.items():
        out[f"{name}.lora_A"] = m.lora_A.detach().contiguous().clone()
        out[f"{name}.lora_B"] = m.lora_B.detach().contiguous().clone()
    return out


def load_lora_state(wrapped: dict, state: dict) -> None:
    import torch

    with torch.no_grad():
        for name, m in wrapped.items():
            try:
                m.lora_A.copy_(state[f"{name}.lora_A"])
                m.lora_B.copy_(state[f"{name}.lora_B"])
            except KeyError:
                raise BadInputError(f"the adapter has no weights for {name}; it was trained for another model") from None


def merge_lora(flow_lm, wrapped: dict) -> None:
    """Fold each LoRA into its base weight and put the plain Linear back (no runtime cost)."""
    modules = dict(flow_lm.transformer.named_modules())
    for name, m in wrapped.items():
        parent, _, leaf = name.rpartition(".")
        setattr(modules[parent] if parent else flow_lm.transformer, leaf, m.merged())


# ---------------------------------------------------------------------------------------------- data
def _clip_latents(tts, items, cfg: PocketLoraConfig, out: Path) -> tuple[list[tuple[str, object]], object]:
    """(text, normalised latents [T, ldim]) per clip, and the reference clip's latents (the longest); cached."""
    import torch
    from safetensors.torch import load_file, save_file

    from ..media import load_audio

    key = json.dumps([[str(p), p.stat().st_size, int(p.stat().st_mtime)] for p, _ in items] + [cfg.language, cfg.max_seconds])
    cache, meta = out / "latents.safetensors", out / "latents.json"
    if cache.is_file() and meta.is_file():
        try:
            m = json.loads(meta.read_text())
            if m.get("key") == key:
                t = load_file(str(cache))
                return [(text, t[f"c{i}"]) for i, text in enumerate(m["texts"])], t["ref"]
        except (ValueError, KeyError, OSError):
            pass
    rate = tts.sample_rate
    fl = tts.flow_lm
    result, raw = [], []
    with torch.no_grad():
        for path, text in items:
            audio = np.asarray(load_audio(path, sample_rate=rate, channels="mono"), dtype=np.float32).reshape(-1)
            audio = audio[: int(cfg.max_seconds * rate)]
            if len(audio) < rate // 4:
                continue
            lat = tts.mimi.encode_to_latent(torch.from_numpy(audio)[None, None, :]).to(torch.float32)[0]
            raw.append(lat)
            result.append((text, ((lat - fl.emb_mean) / fl.emb_std).contiguous()))
    if not result:
        raise BadInputError("the dataset has no training clip long enough for a Pocket TTS fine-tune")
    ref = max(raw, key=len).contiguous()
    tmp = out / "latents.safetensors.tmp"
    save_file({**{f"c{i}": t for i, (_, t) in enumerate(result)}, "ref": ref}, str(tmp))
    os.replace(tmp, cache)
    meta.write_text(json.dumps({"key": key, "texts": [t for t, _ in result]}))
    return result, ref


def _voice_prompt(tts, ref_latents):
    import torch
    import torch.nn.functional as F

    fl = tts.flow_lm
    prompt = F.linear(ref_latents[None], fl.speaker_proj_weight)
    if fl.insert_bos_before_voice:
        prompt = torch.cat([fl.bos_before_voice, prompt], dim=1)
    return prompt


def step_loss(tts, prompt, text: str, target, gen: "object", eos_weight: float):
    """One clip's teacher-forced loss (see the module docstring)."""
    import torch
    import torch.nn.functional as F

    fl = tts.flow_lm
    tokens = fl.conditioner.prepare(text)
    cond = torch.cat([prompt, fl.conditioner(tokens)], dim=1)
    x1 = target[None]  # [1, T, ldim]
    seq = torch.cat([torch.full_like(x1[:, :1], float("nan")), x1[:, :-1]], dim=1)
    seq = torch.where(torch.isnan(seq), fl.bos_emb, seq)
    out = fl.backbone(fl.input_linear(seq), cond, seq, model_state=None).to(torch.float32)  # [1, T, D]
    c = out.reshape(-1, out.shape[-1])
    x1f = x1.reshape(-1, x1.shape[-1])
    noise = torch.randn(x1f.shape, generator=gen)
    kind = fl.flow_type
    if kind in ("lsd", "flow_matching"):
        t = torch.rand((x1f.shape[0], 1), generator=gen)
        xt = (1 - t) * noise + t * x1f
        ts = (t, t) if kind == "lsd" else (t,)
        pred, want = fl.flow_net(c, *ts, xt), x1f - noise
    elif kind == "pointwise":
        pred, want = fl.flow_net(c, noise), x1f - noise
    else:  # drifting: the head maps noise to the sample
        pred, want = fl.flow_net(c, noise), x1f
    flow = F.mse_loss(pred, want)
    eos_target = torch.zeros(out.shape[1], 1)
    eos_target[-1] = 1.0
    eos = F.binary_cross_entropy_with_logits(fl.out_eos(out[0]), eos_target, pos_weight=torch.tensor(float(out.shape[1])))
    return flow + eos_weight * eos


# ---------------------------------------------------------------------------------------------- checkpoints
def _checkpoints(out: Path) -> list[tuple[int, Path]]:
    found = []
    for d in out.glob("ckpt-*"):
        if d.suffix == ".tmp" or not d.is_dir() or not (d / "state.json").is_file():
            continue
        try:
            found.append((int(d.name.split("-", 1)[1]), d))
        except ValueError:
            continue
    return sorted(found)


def _save_checkpoint(out: Path, step: int, wrapped, opt, losses, cfg) -> None:
    import torch
    from safetensors.torch import save_file

    final, tmp = out / f"ckpt-{step}", out / f"ckpt-{step}.tmp"
    previous = [d for s, d in _checkpoints(out) if s != step]
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        save_file(lora_state(wrapped), str(tmp / ADAPTER_FILE))
        buf = io.BytesIO()
        torch.save(opt.state_dict(), buf)
        (tmp / "optimizer.pt").write_bytes(buf.getvalue())
        (tmp / "state.json").write_text(json.dumps({"step": step, "losses": losses, "config": cfg.to_dict()}))
        replace_folder(tmp, final)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise StorageError(f"{e.strerror or e} while saving the checkpoint at step {step} in {out}") from None
    for d in previous:
        shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------------------------------------- training
def _fresh_model(language: str):
    """A private copy of the shared cached Pocket model (training and LoRA voices must not touch the shared one)."""
    from . import pocket

    shared = pocket.load_model(language)
    with shared.lock:
        return copy.deepcopy(shared.tts)


def train_pocket_lora(dataset_dir: str | os.PathLike, cfg: PocketLoraConfig, *, progress: TrainProgress | None = None,
                      cancel: CancelToken | None = None) -> PocketLoraResult:
    """Train (or resume) one voice's Pocket LoRA; Cancelled after writing a checkpoint."""
    import torch
    from safetensors.torch import load_file, save_file

    from . import pocket
    from .dataset import read_dataset

    t_start = time.monotonic()
    if not cfg.out_dir:
        raise BadInputError("PocketLoraConfig.out_dir is required")
    if cfg.steps < 1 or cfg.save_every < 1 or cfg.r < 1:
        raise BadInputError("steps, save_every and r must be >= 1")
    items = read_dataset(dataset_dir, "train")
    if not items:
        raise BadInputError(f"the dataset {dataset_dir} has no training clips")
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    tts = _fresh_model(cfg.language)
    clips, ref = _clip_latents(tts, items, cfg, out)
    torch.manual_seed(cfg.seed)  # the LoRA A init
    wrapped = inject_lora(tts.flow_lm, cfg)
    params = [p for m in wrapped.values() for p in (m.lora_A, m.lora_B)]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    start, losses, resumed_from = 0, [], None
    ck = _checkpoints(out)
    if ck:
        step0, folder = ck[-1]
        load_lora_state(wrapped, load_file(str(folder / ADAPTER_FILE)))
        opt.load_state_dict(torch.load(folder / "optimizer.pt", weights_only=False))
        st = json.loads((folder / "state.json").read_text())
        start, losses, resumed_from = step0, [float(x) for x in st["losses"]][:step0], step0
    tts.flow_lm.train()
    times: list[float] = []
    last_saved = start
    try:
        for step in range(start, cfg.steps):
            if cancel is not None and cancel.cancelled:
                raise Cancelled()
            t0 = time.monotonic()
            epoch, pos = divmod(step, len(clips))
            order = list(range(len(clips)))
            random.Random(cfg.seed * 100003 + epoch).shuffle(order)
            text, target = clips[order[pos]]
            gen = torch.Generator().manual_seed(cfg.seed * 7919 + step)
            opt.zero_grad(set_to_none=True)
            loss = step_loss(tts, _voice_prompt(tts, ref), text, target, gen, cfg.eos_weight)
            if not torch.isfinite(loss):
                raise BadInputError(f"the loss became {float(loss)} at step {step + 1}; lower the learning rate")
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            losses.append(float(loss.detach()))
            times.append(time.monotonic() - t0)
            done = step + 1
            if progress is not None:
                progress(done, cfg.steps, losses[-1], (sum(times) / len(times)) * (cfg.steps - done))
            if done % cfg.save_every == 0 and done < cfg.steps:
                _save_checkpoint(out, done, wrapped, opt, losses, cfg)
                last_saved = done
    except Cancelled:
        if len(losses) > last_saved:
            _save_checkpoint(out, len(losses), wrapped, opt, losses, cfg)
        raise
    tts.flow_lm.eval()
    adapter, tmp = out / "adapter", out / "adapter.tmp"
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        save_file(lora_state(wrapped), str(tmp / ADAPTER_FILE))
        (tmp / "adapter_config.json").write_text(json.dumps({"engine": ENGINE, "language": cfg.language, "r": cfg.r,
                                                             "alpha": cfg.alpha, "targets": sorted(wrapped)}, indent=2))
        (tmp / "training.json").write_text(json.dumps({"config": cfg.to_dict(), "losses": losses}, indent=2))
        merge_lora(tts.flow_lm, wrapped)
        with torch.no_grad():
            state = _state_from_latents(tts, ref)
        pocket.export_voice_state(state, tmp / pocket.VOICE_STATE_NAME)
        replace_folder(tmp, adapter)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise StorageError(f"{e.strerror or e} while saving the adapter in {out}; the checkpoints are kept") from None
    for _s, d in _checkpoints(out):
        shutil.rmtree(d, ignore_errors=True)
    return PocketLoraResult(adapter_dir=adapter, adapter_bytes=(adapter / ADAPTER_FILE).stat().st_size,
                            base_bytes=pocket.model_bytes(cfg.language), steps=cfg.steps, losses=losses,
                            resumed_from=resumed_from, step_seconds=(sum(times) / len(times)) if times else 0.0,
                            seconds=time.monotonic() - t_start)


def _state_from_latents(tts, ref_latents):
    """The voice state (KV cache after the voice prompt) of the reference clip, as pocket-tts builds it."""
    from pocket_tts.modules.stateful_module import init_states

    prompt = _voice_prompt(tts, ref_latents)
    state = init_states(tts.flow_lm, batch_size=1, sequence_length=prompt.shape[1])
    tts._run_flow_lm_and_increment_step(model_state=state, audio_conditioning=prompt)
    return state


# ---------------------------------------------------------------------------------------------- voices
class LoraEngine:
    """One fine-tuned voice: a private model copy with the LoRA merged, and the voice state."""

    def __init__(self, voice_dir: Path):
        from safetensors.torch import load_file

        from . import pocket

        conf = json.loads((voice_dir / "adapter" / "adapter_config.json").read_text())
        self.tts = _fresh_model(conf["language"])
        cfg = PocketLoraConfig(language=conf["language"], r=int(conf["r"]), alpha=float(conf["alpha"]))
        wrapped = inject_lora(self.tts.flow_lm, cfg)
        load_lora_state(wrapped, load_file(str(voice_dir / "adapter" / ADAPTER_FILE)))
        merge_lora(self.tts.flow_lm, wrapped)
        self.tts.flow_lm.eval()
        self.model = pocket.PocketModel(self.tts, conf["language"])
        self.state = self.model.load_voice_state(voice_dir / "adapter" / pocket.VOICE_STATE_NAME)
        self.voice = pocket.PocketVoice(self.model, self.state)  # streams like an instant voice

    def generate(self, text: str, **_ignored) -> tuple[np.ndarray, int]:
        return self.model.synthesize(self.state, text), self.model.sample_rate


_LORA_ENGINES: dict[str, LoraEngine] = {}
_LORA_LOCK = threading.Lock()


def lora_engine(voice_dir: str | os.PathLike) -> LoraEngine:
    """The engine of a pocket-lora voice (one resident: each holds its own ~0.4 GB model copy)."""
    key = str(Path(voice_dir).resolve())
    meta = Path(voice_dir) / "adapter" / ADAPTER_FILE
    key += f":{meta.stat().st_mtime if meta.exists() else 0}"
    with _LORA_LOCK:
        if key not in _LORA_ENGINES:
            _LORA_ENGINES.clear()
            _LORA_ENGINES[key] = LoraEngine(Path(voice_dir))
        return _LORA_ENGINES[key]
