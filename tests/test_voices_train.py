"""train_voice on a tiny random Orpheus-shaped model (cpu backend): steps, checkpoints, resume, cancel, disk full."""

from __future__ import annotations

import errno
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.errors import Cancelled, ModelMissingError, StorageError, WeaverError
from pipeline.progress import CancelToken
from pipeline.voices.train import NO_GPU_MESSAGE, TrainConfig, latest_checkpoint, model_sizes, train_voice
from tiny_tts import build_all, tiny_dataset

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def _threads():
    import torch

    torch.set_num_threads(2)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("tts")
    base, snac = build_all(root)
    summary = tiny_dataset(root, 4)
    return {"root": root, "base": base, "snac": snac, "dataset": Path(summary.out_dir)}


def _prime(stack, out: Path) -> Path:
    """Reuse the module run's SNAC token cache (same dataset + codec) so a test skips re-encoding."""
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(stack["root"] / "run" / "tokens.json", out / "tokens.json")
    return out


def _cfg(stack, out: Path, **kw) -> TrainConfig:
    d = dict(base_model=str(stack["base"]), backend="cpu", snac_dir=str(stack["snac"]), out_dir=str(out), steps=5, save_every=2,
             grad_accum=1, lr=1e-3, dedupe_frames=False)
    d.update(kw)
    return TrainConfig(**d)


@pytest.fixture(scope="module")
def trained(stack):
    seen = []
    out = stack["root"] / "run"
    r = train_voice(stack["dataset"], _cfg(stack, out), progress=lambda s, t, l, e: seen.append((s, t, l, e)))
    return r, seen, out


def test_train_five_steps(stack, trained):
    r, seen, out = trained
    assert r.steps == 5 and len(r.losses) == 5 and r.resumed_from is None and r.backend == "cpu"
    assert all(math.isfinite(x) and x > 0 for x in r.losses)
    assert [s for s, *_ in seen] == [1, 2, 3, 4, 5] and all(t == 5 for _, t, _, _ in seen)
    assert seen[-1][3] == 0
    assert (r.adapter_dir / "adapter_model.safetensors").is_file() and (r.adapter_dir / "adapter_config.json").is_file()
    assert (r.adapter_dir / "orpheus.json").is_file()
    assert latest_checkpoint(out) is None  # intermediate checkpoints are cleaned up after success
    sizes = model_sizes(r.adapter_dir, stack["base"])
    assert sizes.adapter_bytes == r.adapter_bytes > 0
    assert sizes.base_bytes > 50 * sizes.adapter_bytes and sizes.ratio < 0.02
    assert r.step_seconds > 0


def test_adapter_loads_with_peft(stack, trained):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(stack["base"])), str(trained[0].adapter_dir))
    lora = [n for n, _ in model.named_parameters() if "lora_" in n]
    assert lora and any("q_proj" in n for n in lora)


@pytest.mark.slow
def test_kill_and_resume(stack, trained, tmp_path):
    out = _prime(stack, tmp_path / "run")
    cmd = [sys.executable, "-m", "pipeline.voices.train", str(stack["dataset"]), "--base", str(stack["base"]), "--snac", str(stack["snac"]),
           "--out", str(out), "--backend", "cpu", "--steps", "1000", "--save-every", "3", "--grad-accum", "1", "--threads", "1", "--no-dedupe",
           "--lr", "1e-3"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while latest_checkpoint(out) is None:
            assert proc.poll() is None, "training process died"
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    step, ck = latest_checkpoint(out)
    assert step % 3 == 0 and step < 1000
    seen = []
    r = train_voice(stack["dataset"], _cfg(stack, out, steps=step + 2, save_every=3), progress=lambda s, *a: seen.append(s))
    assert r.resumed_from == step
    assert seen == [step + 1, step + 2]  # continued, did not restart at 1
    assert len(r.losses) == step + 2 and all(math.isfinite(x) for x in r.losses)
    assert not list(out.glob("*.tmp"))


def test_cancel_between_steps_then_resume(stack, trained, tmp_path):
    out = _prime(stack, tmp_path / "run")
    tok = CancelToken()

    def progress(step, total, loss, eta):
        if step == 3:
            tok.cancel()

    with pytest.raises(Cancelled):
        train_voice(stack["dataset"], _cfg(stack, out, steps=10, save_every=100), progress=progress, cancel=tok)
    step, _ = latest_checkpoint(out)
    assert step == 3  # a checkpoint is written on cancel
    assert not (out / "adapter").exists()
    r = train_voice(stack["dataset"], _cfg(stack, out, steps=4, save_every=100))
    assert r.resumed_from == 3 and len(r.losses) == 4


def test_disk_full_injected_keeps_previous_checkpoint(stack, trained, tmp_path):
    out = _prime(stack, tmp_path / "run")
    calls = {"n": 0}

    def writer(path: Path, data: bytes) -> None:
        if path.parent.name == "ckpt-4.tmp" and path.name == "optimizer.pt":
            with open(path, "wb") as f:
                f.write(data[: len(data) // 2])  # half written, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        calls["n"] += 1
        with open(path, "wb") as f:
            f.write(data)

    with pytest.raises(StorageError, match="disk full .* step 4.*ckpt-2 is kept"):
        train_voice(stack["dataset"], _cfg(stack, out, steps=6, save_every=2), writer=writer)
    assert calls["n"] > 0
    assert sorted(p.name for p in out.iterdir() if p.name.startswith("ckpt")) == ["ckpt-2"]
    r = train_voice(stack["dataset"], _cfg(stack, out, steps=3, save_every=2))  # the kept checkpoint loads
    assert r.resumed_from == 2 and len(r.losses) == 3


def _can_mount_tmpfs(where: Path) -> bool:
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    where.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(where)], capture_output=True)
    if r.returncode != 0:
        return False
    subprocess.run(["umount", str(where)], capture_output=True)
    return True


def test_disk_full_on_real_tmpfs(stack, trained, tmp_path):
    mnt = tmp_path / "small"
    if not _can_mount_tmpfs(mnt):
        pytest.skip("cannot mount a tmpfs here (needs root); the injected-writer test covers this")
    tokens = stack["root"] / "run" / "tokens.json"
    adapter = trained[0].adapter_bytes
    # one checkpoint ≈ 3 x adapter (weights + 2 Adam moments) + small files; room for 1.5 of them
    size_k = (tokens.stat().st_size + int(4.5 * adapter) + 64 * 1024) // 1024 + 1
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_k}k", "tmpfs", str(mnt)], check=True)
    try:
        out = mnt / "run"
        out.mkdir()
        shutil.copy(tokens, out / "tokens.json")
        with pytest.raises(StorageError, match="disk full"):
            train_voice(stack["dataset"], _cfg(stack, out, steps=8, save_every=2))
        assert sorted(p.name for p in out.iterdir() if p.name.startswith("ckpt")) == ["ckpt-2"]
        keep = tmp_path / "kept"
        shutil.copytree(out, keep)
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)
    r = train_voice(stack["dataset"], _cfg(stack, keep, steps=3, save_every=2))
    assert r.resumed_from == 2


def test_unsloth_without_gpu_says_use_cpu(stack, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(WeaverError) as e:
        train_voice(stack["dataset"], _cfg(stack, tmp_path / "u", backend="unsloth"))
    assert str(e.value) == NO_GPU_MESSAGE and "--backend cpu" in str(e.value)


def test_missing_base_model(stack, tmp_path):
    with pytest.raises(ModelMissingError, match="hf download unsloth/orpheus-3b-0.1-ft"):
        train_voice(stack["dataset"], _cfg(stack, tmp_path / "m", base_model="unsloth/orpheus-3b-0.1-ft"))
