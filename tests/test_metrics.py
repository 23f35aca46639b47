"""The scores, against hand-computed values."""

from __future__ import annotations

import pytest

from emodna.metrics import scores


def test_f1_of_the_positive_class_and_macro_f1_by_hand():
    # y = 1 1 0 0 0 0, predicted 1 0 0 0 0 1
    s = scores([1, 1, 0, 0, 0, 0], [1, 0, 0, 0, 0, 1], n_classes=2)
    assert s["war"] == pytest.approx(4 / 6)
    assert s["uar"] == pytest.approx((1 / 2 + 3 / 4) / 2)
    # class 1: precision 1/2, recall 1/2 -> F1 1/2; class 0: precision 3/4, recall 3/4 -> 3/4
    assert s["f1_pos"] == pytest.approx(0.5)
    assert s["f1_macro"] == pytest.approx((0.5 + 0.75) / 2)


def test_f1_pos_can_exceed_war_as_in_the_paper():
    """Predict everything positive on a 70/30 target: WAR 0.7, F1 of class 1 is 2*0.7/1.7."""
    y = [1] * 7 + [0] * 3
    s = scores(y, [1] * 10, n_classes=2)
    assert s["war"] == pytest.approx(0.7)
    assert s["f1_pos"] == pytest.approx(2 * 0.7 / 1.7) and s["f1_pos"] > s["war"]
    assert s["f1_macro"] == pytest.approx((2 * 0.7 / 1.7 + 0) / 2)
    assert s["uar"] == pytest.approx(0.5)


def test_never_predicting_the_positive_class_scores_f1_pos_zero():
    s = scores([1, 0, 1, 0], [0, 0, 0, 0], n_classes=2)
    assert s["f1_pos"] == 0.0 and s["war"] == 0.5
