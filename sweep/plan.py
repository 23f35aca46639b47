"""What a sweep will do, before it does it: units, epochs, and an estimated wall time.

The estimate is ``sweep/cost.py``'s cost model, the one ``bench/scale.py`` fits to measured
epochs: per epoch, ``fit``'s steps (``ceil(max(N_s - n_val, N_t) / batch)``, each a fixed part
plus a part that grows with the clips' frames) and one evaluation (the whole target and the
source hold-out). Its shape is the bench's measured fit (``cost.MEASURED``); its scale comes
from one training step measured here (``calibrate_step``: a few steps of the space's deep
method at one thread on random inputs of the corpora's median length), and its evaluation
from predictions timed apart (``calibrate_evaluation``: float32, which the step's bf16
autocast does not speed up). Configs of a
classical method (seconds) are counted as free. The sum over the budget's configs, divided
by the trial slots and never under the longest unit, is an upper bound: the Wilcoxon pruner
stops configs that are clearly worse.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass

from sweep.cost import MEASURED, wall_seconds


def hms(seconds: float) -> str:
    """1:02:03 or 2:03 (the plan's estimate and the progress line's times)."""
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


@dataclass
class Plan:
    configs: int
    units_per_config: int
    epochs: int
    unit_seconds: float  # mean over the units of one deep config, one core
    deep_configs: int
    slots: int
    longest_unit: float = 0.0  # seconds: the critical path

    @property
    def units(self) -> int:
        return self.configs * self.units_per_config

    @property
    def wall_seconds(self) -> float:
        cpu = self.deep_configs * self.units_per_config * self.unit_seconds
        return wall_seconds(cpu, self.slots, longest=self.longest_unit if cpu else 0.0)

    def line(self) -> str:
        return (
            f"plan: {self.configs} configs x {self.units_per_config} units (scenario x seed) = "
            f"{self.units} units of {self.epochs} epochs; one unit ~{self.unit_seconds:.0f} s on one core; "
            f"{self.slots} trial slots: at most ~{hms(self.wall_seconds)} wall "
            "(less when configs are pruned)"
        )


@contextmanager
def _as_a_trial():
    """Time work as a trial runs it: at one torch thread, and with freed memory kept from the
    kernel as ``fit`` keeps it (``emodna.speed.keep_freed_memory``)."""
    import torch

    from emodna.speed import keep_freed_memory

    keep_freed_memory()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def calibrate_step(
    method: str, n_mfcc: int, frames: int, batch: int = 64, repeats: int = 3, amp: str | None = None
) -> float:
    """Seconds of one training step of ``method`` at one torch thread (the fastest of a few),
    under the autocast training uses on this CPU for ``amp`` (``emodna.speed``; None is
    ``TrainConfig``'s default)."""
    import torch

    from emodna.config import TrainConfig
    from emodna.methods import build_model, build_objective
    from emodna.speed import autocast_dtype
    from emodna.train import make_optimizer, train_step

    with _as_a_trial():
        cfg = TrainConfig(method=method) if amp is None else TrainConfig(method=method, amp=amp)
        amp_dtype = autocast_dtype(cfg.amp, torch.device("cpu"))
        model = build_model(method, n_mfcc, 2, cfg.dropout, cfg.bn)
        objective = build_objective(cfg, n_classes=2)
        opt = make_optimizer(model, objective, cfg)
        gen = torch.Generator().manual_seed(0)
        xs, xt = (
            torch.randn(batch, n_mfcc, frames, generator=gen),
            torch.randn(batch, n_mfcc, frames, generator=gen),
        )
        ys = torch.randint(0, 2, (batch,), generator=gen)
        best = math.inf
        for _ in range(repeats + 1):  # the first step warms up
            t0 = time.perf_counter()
            train_step(model, objective, opt, (xs, ys, xt), amp_dtype)
            best = min(best, time.perf_counter() - t0)
        return best


def calibrate_evaluation(method: str, n_mfcc: int, frames: int, clips: int = 256) -> float:
    """Seconds per clip-frame of ``fit``'s evaluation: ``emodna.evaluation.predict_proba``
    (float32, eval mode, at its batch of 256) over ``clips`` random clips of ``frames`` frames
    at one torch thread, the faster of two passes. Evaluation does not run under the training
    step's autocast, so it cannot be scaled from the step (``CostModel.calibrated``)."""
    import numpy as np

    from emodna.config import TrainConfig
    from emodna.evaluation import predict_proba
    from emodna.methods import build_model

    with _as_a_trial():
        cfg = TrainConfig(method=method)
        model = build_model(method, n_mfcc, 2, cfg.dropout, cfg.bn)
        x = np.random.default_rng(0).standard_normal((clips, n_mfcc, frames), dtype=np.float32)
        best = math.inf
        for _ in range(2):
            t0 = time.perf_counter()
            predict_proba(model, x)
            best = min(best, time.perf_counter() - t0)
        return best / (clips * frames)


def make_plan(
    space,
    scenarios: list[dict],
    sizes: dict[str, tuple[int, int]],
    budget: int,
    slots: int,
    batch_size: int = 64,
) -> Plan:
    """``sizes``: corpus -> (clips, frames). Measures one step of the space's deep method."""
    from emodna.config import METHODS, TrainConfig

    deep = [m for m in space.methods if not METHODS[m].classical]
    # candidates are asked first, then the enqueued configs: both count within the budget
    first = [c.get("method", space.method) for c in space.candidates]
    first += [e.get("method", space.methods[0]) for e in space.enqueue]
    classical_enqueued = sum(1 for m in first[:budget] if METHODS[m].classical)
    units = len(scenarios) * len(space.seeds)
    n_mfcc_frames = [f for _, f in sizes.values()]
    frames = int(sorted(n_mfcc_frames)[len(n_mfcc_frames) // 2]) if n_mfcc_frames else 100
    amp = str(space.fixed.get("amp", TrainConfig().amp))  # the precision the trials train at
    step = calibrate_step(deep[0], 40, frames, batch_size, amp=amp) if deep else 0.0
    evaluation = calibrate_evaluation(deep[0], 40, frames) if deep else 0.0
    model = MEASURED.calibrated(step, frames, batch_size, evaluation=evaluation)
    per_unit = [
        model.unit(*sizes[sc["source"]], *sizes[sc["target"]], space.epochs) for sc in scenarios
    ]
    unit_seconds = sum(per_unit) / len(per_unit) if per_unit else 0.0
    deep_configs = budget - min(classical_enqueued, budget) if deep else 0
    longest = max(per_unit, default=0.0)
    return Plan(budget, units, space.epochs, unit_seconds, deep_configs, slots, longest)


def show_plan(space, corpora: dict, scenarios: list[dict], args, slots: int):
    from emodna.features import FeatureSettings

    # the plan's step cost is the longest frame-level front-end's (egemaps_lld has ~2x mfcc's frames)
    frontends = [FeatureSettings(frontend=f) for f in space.feature_sets()]
    sizes = {}
    for name, corpus in corpora.items():
        length = frontends[0].length_for(name) or 3 * frontends[0].sample_rate  # a guess
        sizes[name] = (len(corpus.utterances), max(f.frames(length) for f in frontends))
    budget = args.budget
    grid = space.grid() if space.sampler == "grid" else None
    if grid:
        budget = min(budget, math.prod(len(v) for v in grid.values()))
    batch = int(space.fixed.get("batch_size", 64))
    plan = make_plan(space, scenarios, sizes, budget, slots, batch)
    print(plan.line(), flush=True)
    return plan
