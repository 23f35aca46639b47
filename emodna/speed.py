"""How a training step runs fast, not what it computes: the autocast precision behind
``TrainConfig.amp`` and ``torch.compile`` behind ``TrainConfig.compile`` (issue 23).

Both are recorded with a run like ``device`` and are not part of what a config means: a
change of either gives results equivalent in distribution, checked by
``bench/equivalence.py`` (docs/scaling.md), not bit-identical ones.

* ``amp: auto`` (the default) is bf16 autocast on a CPU whose instruction set runs bf16
  natively (AVX512-BF16 or AMX, through oneDNN) and float32 elsewhere, GPUs included (not
  measured there: ask for ``amp: bf16``); ``off`` is float32, ``bf16`` is bf16 everywhere.
* ``compile: on`` compiles the model's forward in place (``nn.Module.compile``, inductor; the
  state-dict keys stay) and falls back to eager with a warning where no compiler works.
  ``off`` (the default): on the CPU compiling costs minutes, more than it saves in a trial.

:func:`keep_freed_memory` changes no number at all: it keeps glibc's malloc from handing a
step's freed tensors back to the kernel, which otherwise maps them in again, page by page,
on the next step (thousands of page faults per step; docs/scaling.md).
"""

from __future__ import annotations

import ctypes
import functools
import platform
import warnings

import torch


def native_bf16(device: torch.device) -> bool:
    """True on a CPU whose instruction set runs bf16 matmuls and convolutions natively."""
    if device.type != "cpu" or not torch.backends.mkldnn.is_available():
        return False
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def autocast_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The dtype training's forward runs under ``torch.autocast``, or None for float32."""
    if amp == "bf16" or (amp == "auto" and native_bf16(device)):
        return torch.bfloat16
    return None


@functools.cache
def compiler_problem() -> str | None:
    """Why ``torch.compile`` cannot run here (None when a tiny function compiles and runs)."""
    import torch._dynamo

    if not torch._dynamo.is_dynamo_supported():
        return "torch.compile does not support this Python"
    try:
        torch.compile(lambda x: x * 2 + 1)(torch.ones(4))
    except Exception as exc:  # no C++ compiler, no inductor, ...: say what failed
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return None


def compile_model(model: torch.nn.Module, mode: str) -> torch.nn.Module:
    """``model`` with its forward compiled in place for ``mode`` ``on``; itself for ``off``,
    or with a warning when the compiler does not work here."""
    if mode != "on":
        return model
    problem = compiler_problem()
    if problem is not None:
        warnings.warn(f"compile: on falls back to eager: {problem}", RuntimeWarning, stacklevel=2)
        return model
    model.compile()
    return model


# glibc's mallopt parameters (malloc.h) and the largest mmap threshold it accepts on 64-bit
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD_MAX = 32 * 2**20
TRIM_THRESHOLD = 2**30


@functools.cache
def keep_freed_memory() -> bool:
    """Make this process's malloc keep freed memory for reuse; True where it could (glibc).

    By default glibc serves an allocation of more than 128 KiB (a step's activations and
    gradients: 0.1 to 3 MiB each) with a fresh ``mmap`` and unmaps it on free, and returns
    the top of the heap to the kernel past 128 KiB free. Every step then faults its tensors
    in again, page by page, each page zeroed by the kernel: 2,700 to 5,500 page faults per
    default Emo-DNA step at batch 64. With allocations up to 32 MiB (glibc's maximum
    threshold) taken from the heap and up to 1 GiB of freed heap kept, a step reuses the
    previous step's pages: 0 to 24 faults a step, and the step 0.95x (docs/scaling.md). The
    process keeps its peak heap (the step bench's peak resident memory is the same).
    Computed values are untouched. Once per process; elsewhere (macOS, musl) nothing happens.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL("libc.so.6")
    return bool(
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)
        and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
