"""The sweep's plan (sweep/plan.py) on sweep/cost.py's model, against hand-computed numbers.

``calibrate_step`` and the model's shape are replaced by round numbers, so every figure
below can be checked on paper; the calibration itself is timed once, on random inputs.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import sweep.plan as plan
from sweep.cost import CostModel
from sweep.plan import Plan, hms, make_plan

# step = 0.04 + 1e-5 * 64 * (f_s + f_t): 0.2 s at 125 + 125 frames; the plan measures 0.4 s,
# so the calibrated model is this one x 2: a = 0.08, b = 2e-5, c = 2e-6
SHAPE = CostModel(a=0.04, b=1e-5, c=1e-6)
SIZES = {"A": (640, 125), "B": (320, 125)}
SCENARIOS = [
    {"source": "A", "target": "B", "task": "arousal"},
    {"source": "B", "target": "A", "task": "arousal"},
]
# A->B: hold-out ceil(64.0) = 64, steps ceil(max(576, 320) / 64) = 9, step 0.08 + 2e-5 * 64 *
#   250 = 0.4, evaluation 2e-6 * (320 * 125 + 64 * 125) = 0.096: epoch 3.696, 2 epochs 7.392
# B->A: hold-out 32, steps ceil(max(288, 640) / 64) = 10, evaluation 2e-6 * (640 * 125 +
#   32 * 125) = 0.168: epoch 4.168, 2 epochs 8.336
UNIT_AB, UNIT_BA = 7.392, 8.336


def space(enqueue=()):
    return SimpleNamespace(
        methods=["emodna"],
        method="emodna",
        candidates=[],
        enqueue=list(enqueue),
        seeds=[0, 1],
        epochs=2,
        fixed={},
    )


@pytest.fixture
def calibrated(monkeypatch):
    calls = []

    def calibrate_step(method, n_mfcc, frames, batch=64, repeats=3, amp="auto"):
        calls.append((method, n_mfcc, frames, batch, amp))
        return 0.4

    def calibrate_evaluation(method, n_mfcc, frames, clips=256):
        calls.append((method, n_mfcc, frames))
        return 2e-6  # seconds per clip-frame: what the x 2 scaling gives, so one set of sums

    monkeypatch.setattr(plan, "calibrate_step", calibrate_step)
    monkeypatch.setattr(plan, "calibrate_evaluation", calibrate_evaluation)
    monkeypatch.setattr(plan, "MEASURED", SHAPE)
    return calls


def test_make_plan_estimates_units_from_the_shared_cost_model(calibrated):
    p = make_plan(space(), SCENARIOS, SIZES, budget=3, slots=2)
    # the median frames, the space's batch, the precision trials train at (amp: auto)
    assert calibrated == [("emodna", 40, 125, 64, "auto"), ("emodna", 40, 125)]
    assert p.units_per_config == 4 and p.units == 12 and p.deep_configs == 3
    assert p.unit_seconds == pytest.approx((UNIT_AB + UNIT_BA) / 2)  # 7.864
    assert p.longest_unit == pytest.approx(UNIT_BA)
    assert p.wall_seconds == pytest.approx(3 * 4 * 7.864 / 2)  # 47.184
    assert "one unit ~8 s on one core; 2 trial slots: at most ~0:47 wall" in p.line()


def test_plan_wall_time_is_never_under_the_longest_unit(calibrated):
    p = make_plan(space(), SCENARIOS, SIZES, budget=3, slots=100)
    assert p.wall_seconds == pytest.approx(UNIT_BA)  # not 3 * 4 * 7.864 / 100 = 0.94


def test_enqueued_classical_configs_are_free(calibrated):
    p = make_plan(space([{"method": "functionals_lr"}]), SCENARIOS, SIZES, budget=3, slots=2)
    assert p.deep_configs == 2
    assert p.wall_seconds == pytest.approx(2 * 4 * 7.864 / 2)
    only_classical = Plan(1, 4, 2, 7.864, deep_configs=0, slots=2, longest_unit=UNIT_BA)
    assert only_classical.wall_seconds == 0.0


def test_hms():
    assert hms(47.184) == "0:47"
    assert hms(3723) == "1:02:03"


def test_calibrate_step_times_a_real_step():
    seconds = plan.calibrate_step("emodna", 40, 32, batch=8, repeats=1)
    assert 0 < seconds < 30


def test_calibrate_evaluation_times_real_predictions_per_clip_frame():
    """Seconds per clip-frame of predict_proba: 64 clips of 32 frames are a few ms of work,
    so the figure is between 0 and 1e-4 s (a clip-frame is about 1e-6 s on one core)."""
    per_clip_frame = plan.calibrate_evaluation("emodna", 40, 32, clips=64)
    assert 0 < per_clip_frame < 1e-4


def test_an_evaluation_measured_apart_replaces_the_scaled_one(calibrated, monkeypatch):
    """A plan whose evaluation measures 4e-6 s per clip-frame, twice the scaled 2e-6: each
    epoch's evaluation doubles. A->B: 4e-6 * (320 * 125 + 64 * 125) = 0.192 (was 0.096);
    B->A: 4e-6 * (640 * 125 + 32 * 125) = 0.336 (was 0.168); units 2 * (9 * 0.4 + 0.192)
    = 7.584 and 2 * (10 * 0.4 + 0.336) = 8.672."""
    monkeypatch.setattr(plan, "calibrate_evaluation", lambda *args, **kwargs: 4e-6)
    p = make_plan(space(), SCENARIOS, SIZES, budget=3, slots=2)
    assert p.unit_seconds == pytest.approx((7.584 + 8.672) / 2)
