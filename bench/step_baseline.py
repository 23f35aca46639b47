"""Issue 23's bar for ``bench/train.py``: the default training step of an old revision and of
this checkout, each in its own process at one thread, alternating.

The same snippet times both sides: it builds ``fit``'s loop body from the APIs every revision
since issue 15 has, and takes each revision's own precision (float32 before issue 23, the
``amp: auto`` default since) and optimizer.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from revision import export

ROOT = Path(__file__).resolve().parents[1]

# The step as it was when issue 23 was filed: float32, F.dropout, MaxPool1d, RAdam's for-loop
BASELINE = "b1ce44c"
# One process's median step at one thread: the loop body of `fit` written with the APIs every
# revision since issue 15 has, so the same text times this checkout and the baseline
STEP_SNIPPET = """
import json, statistics, sys, time
import numpy as np, torch
import emodna
from emodna.config import TrainConfig
from emodna.methods import build_model, build_objective
from emodna.train import _batches, split_source
torch.set_num_threads(1)
d = dict(np.load(sys.argv[1]))  # the arrays in memory: an NpzFile reads them on each access
method, n_steps, clock = sys.argv[2], int(sys.argv[3]), getattr(time, sys.argv[4])
cfg = TrainConfig(source="EMODB", target="CASIA", method=method, epochs=1)
try:  # the revision's own precision for its defaults
    from emodna.speed import autocast_dtype
    bf16 = autocast_dtype(cfg.amp, torch.device("cpu")) is not None
except ImportError:  # before issue 23: float32 only
    bf16 = False
try:  # the revision's fit keeps freed memory from the kernel (issue 23, third pass)
    from emodna.speed import keep_freed_memory
    keep_freed_memory()
except ImportError:
    pass
torch.manual_seed(0)
gen = torch.Generator().manual_seed(0)
model = build_model(method, d["xs"].shape[1], 2, cfg.dropout, cfg.bn).train()
objective = build_objective(cfg, n_classes=2).train()
try:
    from emodna.train import make_optimizer
    optimizer = make_optimizer(model, objective, cfg)
except ImportError:  # before issue 23
    optimizer = torch.optim.RAdam([*model.parameters(), *objective.parameters()], lr=cfg.lr)
train_idx, _ = split_source(d["ys"], cfg.val_fraction, 0)
src = _batches(train_idx, cfg.batch_size, n_steps + 3, gen)
tgt = _batches(np.arange(len(d["xt"])), cfg.batch_size, n_steps + 3, gen)
times = []
for si, ti in zip(src, tgt):
    t0 = clock()
    xs, ys, xt = (torch.from_numpy(d[k][i]) for k, i in (("xs", si), ("ys", si), ("xt", ti)))
    with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
        terms = objective(model, xs, ys, xt)
    optimizer.zero_grad(set_to_none=True)
    sum(terms.values()).backward()
    optimizer.step()
    torch.stack([v.detach() for v in terms.values()]).isfinite().all().item()
    times.append(clock() - t0)
print(json.dumps({"code": emodna.__file__, "bf16": bf16, "step_s": statistics.median(times[3:])}))
"""


def step_seconds_old_and_new(
    method: str, source, target, rev: str, rounds: int, steps: int, clock: str = "perf_counter"
) -> tuple[dict, dict]:
    """The default step of ``method`` with the code at ``rev`` (``git archive`` into a temp
    folder) and with this checkout's, each in a fresh process at one thread, alternating
    ``rounds`` times; per side the median over rounds of each process's median step seconds
    (``step_s``) and whether it ran in bf16. ``clock``: ``time.perf_counter`` (wall) or
    ``time.thread_time`` (CPU), by name."""
    runs: dict[str, list[dict]] = {"old": [], "new": []}
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "old"
        export(rev, old)
        data = Path(tmp) / "data.npz"
        np.savez(data, xs=source.x, ys=source.y, xt=target.x)
        for _ in range(rounds):
            for label, code in (("old", old), ("new", ROOT)):
                out = subprocess.run(
                    [sys.executable, "-c", STEP_SNIPPET, str(data), method, str(steps), clock],
                    cwd=code,
                    env={**os.environ, "PYTHONPATH": str(code)},
                    capture_output=True,
                    text=True,
                    check=True,
                )
                result = json.loads(out.stdout.strip().splitlines()[-1])
                assert Path(result["code"]).is_relative_to(code), result  # the code we meant
                runs[label].append(result)
    return tuple(
        {"step_s": statistics.median(r["step_s"] for r in runs[k]), "bf16": runs[k][0]["bf16"]}
        for k in ("old", "new")
    )
