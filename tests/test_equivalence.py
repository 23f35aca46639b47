"""bench/equivalence.py's statistics and verdict on hand-computed numbers (no training)."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.helpers import load_bench

eq = load_bench("equivalence")


def test_mean_t_interval_and_exact_wilcoxon_by_hand():
    """d = (0.5, 2, 3, -1): mean 1.125, sd 1.75 (squared deviations sum to 9.1875, / 3),
    se 0.875, t(0.975, 3) = 3.182446 -> 1.125 +/- 2.784640. Ranks of |d|: 0.5 -> 1, 1 -> 2,
    2 -> 3, 3 -> 4; W- = 2, and of the 16 sign patterns 3 have W+ <= 2 ({}, {1}, {2}): exact
    two-sided p = 2 * 3/16 = 0.375. The mean is past 1 point: FAIL."""
    s = eq.summarize([0.5, 2.0, 3.0, -1.0])
    assert s["n"] == 4 and s["mean_d"] == pytest.approx(1.125)
    assert s["ci_low"] == pytest.approx(1.125 - 2.784640, abs=1e-5)
    assert s["ci_high"] == pytest.approx(1.125 + 2.784640, abs=1e-5)
    assert s["wilcoxon_p"] == pytest.approx(0.375)
    assert (s["after_better"], s["after_worse"], s["pass"]) == (3, 1, False)


def test_a_small_but_consistent_difference_fails_on_the_test():
    """Six differences all positive: W- = 0, exact two-sided p = 2/64 = 0.03125 < 0.05, so
    a mean of 0.35 points (inside the tolerance) still fails."""
    s = eq.summarize([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    assert s["mean_d"] == pytest.approx(0.35)
    assert s["wilcoxon_p"] == pytest.approx(0.03125)
    assert not s["pass"]


def test_noise_within_a_point_passes():
    """d = (1, -2, 3, -4, 0.5): mean -0.3; ranks 0.5 -> 1, 1 -> 2, 2 -> 3, 3 -> 4, 4 -> 5,
    W+ = 7, W- = 8; 16 of the 32 sign patterns have W+ <= 7, so two-sided p = 1."""
    s = eq.summarize([1.0, -2.0, 3.0, -4.0, 0.5])
    assert s["mean_d"] == pytest.approx(-0.3)
    assert s["wilcoxon_p"] == pytest.approx(1.0)
    assert s["pass"]


def test_identical_results_pass_with_p_one():
    s = eq.summarize([0.0, 0.0, 0.0])
    assert (s["mean_d"], s["ci_low"], s["ci_high"], s["wilcoxon_p"], s["pass"]) == (
        0.0,
        0.0,
        0.0,
        1.0,
        True,
    )


def test_pairs_are_matched_per_scenario_seed_and_judged_per_task():
    """d in UAR points; a run only one side has is not paired; each task has its verdict."""
    key = {"epochs": 5, "source": "EMODB", "target": "CASIA"}
    before = pd.DataFrame(
        [
            {**key, "task": "arousal", "seed": 0, "target_uar": 0.60},
            {**key, "task": "arousal", "seed": 1, "target_uar": 0.70},
            {**key, "task": "valence", "seed": 0, "target_uar": 0.50},
            {**key, "task": "valence", "seed": 1, "target_uar": 0.55},
            {**key, "task": "valence", "seed": 2, "target_uar": 0.40},  # no partner
        ]
    )
    after = before.iloc[:4].copy()
    after["target_uar"] = [0.61, 0.69, 0.53, 0.58]
    pairs = eq.paired(before, after)
    assert len(pairs) == 4
    assert list(pairs["d"]) == pytest.approx([1.0, -1.0, 3.0, 3.0])
    v = eq.verdict(pairs).set_index("task")
    assert v.loc["arousal", "mean_d"] == pytest.approx(0.0)
    assert v.loc["arousal", "before"] == pytest.approx(65.0)
    assert v.loc["valence", "mean_d"] == pytest.approx(3.0)
    assert bool(v.loc["arousal", "pass"]) and not bool(v.loc["valence", "pass"])
    text = eq.table(v.reset_index())
    assert "| arousal | 2 | 65.00 | 65.00 | +0.00 |" in text
    assert "overall: FAIL" in text
