"""emodna.speed: the precision behind ``amp: auto`` and the ``compile`` key with its fallback."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest
import torch

from emodna import speed
from emodna.config import TrainConfig
from emodna.errors import ConfigError
from emodna.model import EmoDNA
from emodna.train import fit
from tests.helpers import domain

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def test_the_keys_default_to_auto_precision_and_no_compile_and_refuse_other_values():
    cfg = TrainConfig()
    assert (cfg.amp, cfg.compile) == ("auto", "off")
    assert TrainConfig.from_dict({"amp": "off", "compile": "on"}).compile == "on"
    with pytest.raises(ConfigError, match="compile 'yes' is not one of off, on"):
        TrainConfig.from_dict({"compile": "yes"})
    with pytest.raises(ConfigError, match="amp 'fp16' is not one of auto, off, bf16"):
        TrainConfig.from_dict({"amp": "fp16"})


@pytest.mark.parametrize("avx512_bf16, amx", [(False, False), (True, False), (False, True)])
def test_auto_is_bf16_only_on_a_cpu_that_runs_it_natively(monkeypatch, avx512_bf16, amx):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    native = avx512_bf16 or amx
    assert speed.autocast_dtype("auto", CPU) == (torch.bfloat16 if native else None)
    assert speed.autocast_dtype("auto", CUDA) is None  # GPUs: float32 unless asked
    assert speed.autocast_dtype("off", CPU) is None
    assert speed.autocast_dtype("bf16", CPU) is torch.bfloat16
    assert speed.autocast_dtype("bf16", CUDA) is torch.bfloat16


def test_compile_on_compiles_the_forward_in_place_and_off_leaves_it(monkeypatch):
    monkeypatch.setattr(speed, "compiler_problem", lambda: None)
    model = EmoDNA()
    keys = list(model.state_dict())
    assert speed.compile_model(model, "off") is model and model._compiled_call_impl is None
    calls = []
    monkeypatch.setattr(model, "compile", lambda: calls.append(1))
    assert speed.compile_model(model, "on") is model and calls == [1]
    assert list(model.state_dict()) == keys  # checkpoints keep their keys


def test_compile_falls_back_to_eager_with_a_warning_where_no_compiler_works(monkeypatch):
    monkeypatch.setattr(speed, "compiler_problem", lambda: "CalledProcessError: no g++")
    model = EmoDNA()
    with pytest.warns(RuntimeWarning, match="compile: on falls back to eager: .*no g\\+\\+"):
        assert speed.compile_model(model, "on") is model
    assert model._compiled_call_impl is None
    cfg = TrainConfig(method="emodna", epochs=1, batch_size=32, compile="on", amp="off")
    with pytest.warns(RuntimeWarning, match="falls back to eager"):
        final = fit(cfg, domain(64, seed=0), domain(32, seed=1, shift=0.3))
    assert 0 <= final["target_uar"] <= 1


def test_the_compiler_check_names_what_failed(monkeypatch):
    speed.compiler_problem.cache_clear()

    def broken(*args, **kwargs):
        raise RuntimeError("inductor missing\nmore lines")

    monkeypatch.setattr(torch, "compile", broken)
    try:
        assert speed.compiler_problem() == "RuntimeError: inductor missing"
    finally:
        speed.compiler_problem.cache_clear()


FAULTS_SNIPPET = """
import resource, sys, torch
from emodna.config import TrainConfig
from emodna.methods import build_model, build_objective
from emodna.train import make_optimizer, train_step
torch.set_num_threads(1)
if sys.argv[1] == "keep":
    from emodna.speed import keep_freed_memory
    assert keep_freed_memory()
torch.manual_seed(0)
cfg = TrainConfig(amp="off")
model = build_model("emodna", 40, 2, cfg.dropout, cfg.bn)
objective = build_objective(cfg, n_classes=2)
optimizer = make_optimizer(model, objective, cfg)
batch = (torch.randn(64, 40, 188), torch.randint(0, 2, (64,)), torch.randn(64, 40, 172))
for _ in range(4):  # the heap reaches its working size
    train_step(model, objective, optimizer, batch, None)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(4):
    train_step(model, objective, optimizer, batch, None)
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 4)
"""


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's mallopt"
)
def test_keep_freed_memory_stops_most_page_faults_of_a_training_step():
    """Emo-DNA steps at batch 64 (float32), each in a fresh process: by default glibc hands
    the step's freed tensors back to the kernel and the next step faults them in again (about
    2,000 to 3,000 page faults per step measured here); after keep_freed_memory() the heap
    keeps them (about 200 to 500 remain)."""
    faults = {}
    for mode in ("default", "keep"):
        out = subprocess.run(
            [sys.executable, "-c", FAULTS_SNIPPET, mode], capture_output=True, text=True, check=True
        )
        faults[mode] = float(out.stdout.split()[-1])
    assert faults["default"] > 1000, faults
    assert faults["keep"] < faults["default"] / 3, faults
