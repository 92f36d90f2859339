"""The CPU recipe guard (issue #13): no fallback to the 3B default base on a CPU, random test bases only under
WEAVER_TEST_RANDOM_BASE=1, and a refusal in one line (with what to use instead) when the estimated CPU time is over
the cap. Real dataset files, real config.json files, the real service and CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from pipeline.errors import BadInputError
from pipeline.service import Service
from pipeline.voices import cpu_guard
from pipeline.voices.train import TrainConfig, train_voice

ORPHEUS_3B = {"hidden_size": 3072, "num_hidden_layers": 28, "intermediate_size": 8192, "num_attention_heads": 24,
              "num_key_value_heads": 8, "vocab_size": 156940, "model_type": "llama"}
TINY = {"hidden_size": 64, "num_hidden_layers": 2, "intermediate_size": 128, "num_attention_heads": 4,
        "num_key_value_heads": 2, "vocab_size": 28992, "model_type": "llama"}


@pytest.fixture
def dataset(tmp_path):
    d = tmp_path / "ds"
    (d / "wavs").mkdir(parents=True)
    lines = []
    for i in range(4):
        sf.write(d / "wavs" / f"c{i}.wav", np.zeros(24000 * 6, dtype=np.float32), 24000)
        lines.append(f"c{i}|hello there number {i}")
    (d / "metadata.csv").write_text("\n".join(lines) + "\n")
    return d


def base(tmp_path, name, config, *, random=False):
    d = tmp_path / name
    d.mkdir()
    (d / "config.json").write_text(json.dumps(config))
    if random:
        (d / cpu_guard.RANDOM_MARKER).write_text("x")
    return d


def test_parameter_count_of_orpheus_3b_is_about_3b():
    assert 3.0e9 < cpu_guard.parameter_count(ORPHEUS_3B) < 4.2e9


def test_3b_base_on_cpu_is_refused_in_one_line_with_alternatives(tmp_path, dataset, monkeypatch):
    monkeypatch.setenv(cpu_guard.GFLOPS_ENV, "100")
    big = base(tmp_path, "big", ORPHEUS_3B)
    with pytest.raises(cpu_guard.CpuTrainingRefused) as e:
        train_voice(dataset, TrainConfig(base_model=str(big), backend="cpu", steps=60, out_dir=str(tmp_path / "o")))
    msg = str(e.value)
    assert "\n" not in msg and "pocket-lora" in msg and "--backend unsloth" in msg and "cap is 2 h" in msg
    assert "days" in msg or " h " in msg
    assert not (tmp_path / "o" / "adapter").exists()


def test_tiny_base_passes_and_the_cap_is_configurable(tmp_path, dataset, monkeypatch):
    monkeypatch.setenv(cpu_guard.GFLOPS_ENV, "10")
    tiny = base(tmp_path, "tiny", TINY)
    est = cpu_guard.check_cpu_time(tiny, dataset, steps=60)
    assert est.hours < 0.5 and est.tokens_per_step == pytest.approx(4 * (6 * cpu_guard.AUDIO_TOKENS_PER_S + 24))
    monkeypatch.setenv(cpu_guard.CAP_ENV, str(est.hours / 10))
    with pytest.raises(cpu_guard.CpuTrainingRefused, match="cap is"):
        cpu_guard.check_cpu_time(tiny, dataset, steps=60)
    monkeypatch.setenv(cpu_guard.CAP_ENV, "lots")
    with pytest.raises(BadInputError, match="number of hours"):
        cpu_guard.check_cpu_time(tiny, dataset, steps=60)


def test_random_base_only_for_tests(tmp_path, dataset, monkeypatch):
    rnd = base(tmp_path, "rnd", TINY, random=True)
    monkeypatch.delenv(cpu_guard.TEST_ENV, raising=False)
    with pytest.raises(cpu_guard.CpuTrainingRefused, match="random test weights"):
        train_voice(dataset, TrainConfig(base_model=str(rnd), backend="cpu", steps=1, out_dir=str(tmp_path / "o")))
    monkeypatch.setenv(cpu_guard.TEST_ENV, "1")
    cpu_guard.check_random_base(rnd)  # allowed in tests


def test_measured_speed_is_positive():
    assert cpu_guard.measured_gflops() > 0.1


@pytest.mark.parametrize("backend", ["cpu", "auto"])
def test_service_and_cli_never_default_to_the_3b_base_on_cpu(tmp_path, dataset, backend, monkeypatch, capsys):
    import torch

    if torch.cuda.is_available() and backend == "auto":
        pytest.skip("auto picks the GPU here")
    svc = Service(home=tmp_path / "home")
    with svc.lib.atomic() as db:
        db["datasets"].insert({"character_id": None, "path": str(dataset), "summary_json": "{}", "created_at": 0})
    with pytest.raises(cpu_guard.CpuTrainingRefused, match="does not default to unsloth/orpheus-3b"):
        svc.prepare_training("boris", 1, backend=backend)
    assert svc.training_runs() == [] and [v["name"] for v in svc.voices()] == ["default"]  # nothing created
    from trayapp.cli import main

    monkeypatch.setenv("WEAVER_HOME", str(svc.lib.home))
    assert main(["train", "boris", "--dataset", "1", "--backend", backend]) == BadInputError.exit_code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pocket-lora" in err and "Traceback" not in err
