"""emodna.speed: the precision behind ``amp: auto`` and the ``compile`` key with its fallback."""

from __future__ import annotations

import ctypes
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


HEAP_SNIPPET = """
import ctypes, sys, torch
class MallInfo2(ctypes.Structure):  # glibc's struct mallinfo2 (malloc.h)
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks",
                "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "keep":
    from emodna.speed import keep_freed_memory
    assert keep_freed_memory()
mapped = libc.mallinfo2().hblkhd
x = torch.empty(4 * 2**20).fill_(1.0)  # 16 MiB, like a big activation
mapped_while_alive = libc.mallinfo2().hblkhd - mapped
del x
print(mapped_while_alive / 2**20, libc.mallinfo2().fordblks / 2**20)
"""


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's mallopt"
)
def test_keep_freed_memory_serves_a_16_mib_tensor_from_the_heap_and_keeps_it_when_freed():
    """A 16 MiB tensor in a fresh process, read through glibc's mallinfo2: by default it is
    mmapped (past the 128 KiB threshold) and handed back to the kernel when freed, so the
    next one is faulted in afresh, page by page; after keep_freed_memory() it comes from the
    heap (the threshold is 32 MiB) and stays there, free for the next allocation. (The
    training step's page faults this stops are measured in bench/train.py, docs/scaling.md:
    in one process they depend on what glibc's adaptive threshold has seen, so a test on
    them would be flaky.)"""
    if not hasattr(ctypes.CDLL("libc.so.6"), "mallinfo2"):
        pytest.skip("glibc older than 2.33 has no mallinfo2")
    seen = {}
    for mode in ("default", "keep"):
        out = subprocess.run(
            [sys.executable, "-c", HEAP_SNIPPET, mode], capture_output=True, text=True, check=True
        )
        seen[mode] = [float(v) for v in out.stdout.split()]  # MiB mmapped while alive, MiB free
    assert seen["default"][0] >= 16 and seen["default"][1] < 16, seen
    assert seen["keep"][0] == 0 and seen["keep"][1] >= 16, seen
