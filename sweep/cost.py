"""One cost model of training, shared by the sweep's plan (``sweep/plan.py``) and the scaling
bench (``bench/scale.py``): the seconds one unit (a scenario and a seed) takes on one core.

It follows ``emodna.train.fit``. An epoch is one pass over the larger of the source minus
its hold-out and the target, in batches of ``batch`` source + ``batch`` target clips, then
one evaluation (forward only) of the whole target and the source hold-out::

    n_val      = ceil(val_fraction * N_s)                 (sklearn rounds the test part up)
    steps      = ceil(max(N_s - n_val, N_t) / batch)
    step       = a + b * batch * (f_s + f_t)              seconds
    evaluation = c * (N_t * f_t + n_val * f_s)            seconds
    epoch      = steps * step + evaluation
    unit       = epochs * epoch

``N``: clips, ``f``: frames per clip; ``a`` is a step's fixed part, ``b`` a clip-frame of a
training step, ``c`` a clip-frame of evaluation. ``bench/scale.py`` fits a, b and c to
measured epochs (:meth:`CostModel.fit`); :data:`MEASURED` is its CPU fit reported in
docs/scaling.md. The plan measures one step at one clip length, which cannot tell a from b,
so it takes the shape of :data:`MEASURED` and scales it to its measured step
(:meth:`CostModel.calibrated`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

BATCH = 64  # TrainConfig.batch_size's default
VAL_FRACTION = 0.1  # TrainConfig.val_fraction's default


class Timing(NamedTuple):
    """One measured scenario: corpus sizes and the seconds of one epoch and of its evaluation."""

    n_s: int
    f_s: int
    n_t: int
    f_t: int
    epoch: float  # the evaluation included
    evaluation: float


@dataclass(frozen=True)
class CostModel:
    a: float  # seconds: a step's fixed part
    b: float  # seconds per clip-frame of a training step
    c: float  # seconds per clip-frame of evaluation
    batch: int = BATCH
    val_fraction: float = VAL_FRACTION

    def split(self, n_s: int) -> tuple[int, int]:
        """(train, hold-out) clips of the source, as ``fit``'s stratified split."""
        n_val = math.ceil(n_s * self.val_fraction)
        return n_s - n_val, n_val

    def steps(self, n_s: int, n_t: int) -> int:
        return math.ceil(max(self.split(n_s)[0], n_t) / self.batch)

    def step(self, f_s: float, f_t: float) -> float:
        return self.a + self.b * self.batch * (f_s + f_t)

    def evaluation(self, n_s: int, f_s: float, n_t: int, f_t: float) -> float:
        return self.c * (n_t * f_t + self.split(n_s)[1] * f_s)

    def epoch(self, n_s: int, f_s: float, n_t: int, f_t: float) -> float:
        return self.steps(n_s, n_t) * self.step(f_s, f_t) + self.evaluation(n_s, f_s, n_t, f_t)

    def unit(self, n_s: int, f_s: float, n_t: int, f_t: float, epochs: int) -> float:
        """Seconds of one trial of ``epochs`` epochs on one core."""
        return epochs * self.epoch(n_s, f_s, n_t, f_t)

    def calibrated(
        self,
        step_seconds: float,
        frames: float,
        batch: int = BATCH,
        evaluation: float | None = None,
    ) -> CostModel:
        """This model's shape at ``batch``, scaled so a step of ``frames`` + ``frames`` frames
        takes ``step_seconds`` (one measured step: the plan's ``calibrate_step``). ``c`` is
        ``evaluation`` where it was measured (seconds per clip-frame: the plan's
        ``calibrate_evaluation``), else scaled like the step: a step under bf16 autocast
        speeds up, the float32 evaluation does not."""
        shaped = replace(self, batch=batch)
        k = step_seconds / shaped.step(frames, frames)
        c = k * self.c if evaluation is None else evaluation
        return replace(shaped, a=k * self.a, b=k * self.b, c=c)

    @classmethod
    def fit(cls, timings: Iterable[Timing], batch: int = BATCH) -> CostModel:
        """Least squares over measured scenarios. The step, ``(epoch - evaluation) / steps``,
        gives a and b (all of it b when the fit would make a negative: too noisy to split);
        the evaluation gives c. Frames alone cannot split a from b when every scenario has
        about the same clip length: one scenario of longer clips does."""
        rows = list(timings)
        shape = cls(0.0, 0.0, 0.0, batch)
        steps = np.array([shape.steps(r.n_s, r.n_t) for r in rows], dtype=float)
        step = np.array([r.epoch - r.evaluation for r in rows]) / steps
        work = np.array([batch * (r.f_s + r.f_t) for r in rows], dtype=float)
        (a, b), *_ = np.linalg.lstsq(np.stack([np.ones_like(work), work], 1), step, rcond=None)
        if a < 0 or b <= 0:
            a, b = 0.0, (step @ work) / (work @ work)
        ev_work = np.array(
            [r.n_t * r.f_t + shape.split(r.n_s)[1] * r.f_s for r in rows], dtype=float
        )
        ev = np.array([r.evaluation for r in rows])
        return cls(float(a), float(b), float((ev @ ev_work) / (ev_work @ ev_work)), batch)


# bench/scale.py's CPU fit of 2026-11-29 (docs/scaling.md): emodna, one thread
MEASURED = CostModel(a=0.059, b=7.78e-6, c=1.42e-6)


def wall_seconds(
    cpu_seconds: float, slots: int, efficiency: float = 1.0, longest: float = 0.0
) -> float:
    """Wall seconds of ``cpu_seconds`` of units on ``slots`` one-core trial slots kept busy
    ``efficiency`` of the time, never under the ``longest`` unit (the critical path)."""
    return max(cpu_seconds / (max(1, slots) * efficiency), longest)
