"""Label-free validators against hand-computed cases (emodna/validators.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emodna import validators as V

CONFIDENT = np.array([[0.9, 0.1], [0.1, 0.9]])
UNSURE = np.array([[0.5, 0.5], [0.5, 0.5]])
ONE_CLASS = np.array([[0.9, 0.1], [0.9, 0.1]])


def h(*p):
    return -sum(x * math.log(x) for x in p)


def test_entropy_and_information_maximisation_by_hand():
    assert V.neg_entropy(CONFIDENT) == pytest.approx(-h(0.9, 0.1))
    assert V.neg_entropy(UNSURE) == pytest.approx(-math.log(2))
    # IM = H(mean p) - mean H(p): confident and diverse scores log 2 - H(0.9, 0.1)
    assert V.info_max(CONFIDENT) == pytest.approx(math.log(2) - h(0.9, 0.1))
    # the same confidence in one class only: no diversity, IM 0 (entropy cannot tell them apart)
    assert V.info_max(ONE_CLASS) == pytest.approx(0.0, abs=1e-12)
    assert V.neg_entropy(ONE_CLASS) == pytest.approx(V.neg_entropy(CONFIDENT))


def test_bnm_is_the_nuclear_norm_over_n():
    # [[.9,.1],[.1,.9]] has singular values 1.0 and 0.8
    assert V.bnm(CONFIDENT) == pytest.approx((1.0 + 0.8) / 2)
    # rank one: one singular value, sqrt(2 * (0.81 + 0.01))
    assert V.bnm(ONE_CLASS) == pytest.approx(math.sqrt(2 * 0.82) / 2)


def test_snd_by_hand_on_three_points():
    p = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    # normalised rows; similarities off the diagonal: (0,1) = 1, (0,2) = (1,2) = 0
    # row 0: softmax([1, 0] / 0.05) over its two neighbours; row 2: both 0 -> uniform
    e = math.exp(20.0)
    s0 = [e / (e + 1), 1 / (e + 1)]
    expected = (2 * h(*s0) + math.log(2)) / 3
    assert V.snd(p) == pytest.approx(expected)


def test_dev_control_variate_by_hand():
    p = np.array([[0.8, 0.2], [0.4, 0.6], [0.3, 0.7]])
    y = np.array([0, 0, 1])
    w = np.array([0.5, 1.0, 2.0])
    loss = -np.log([0.8, 0.4, 0.7])
    weighted = w * loss
    eta = -np.cov(weighted, w)[0, 1] / np.var(w, ddof=1)
    risk = weighted.mean() + eta * w.mean() - eta
    assert V.dev(p, y, w) == pytest.approx(-risk)
    # with equal weights the control variate vanishes: minus the mean cross-entropy
    assert V.dev(p, y, np.ones(3)) == pytest.approx(-loss.mean())


def test_ensv_is_agreement_with_the_ensemble():
    ens = np.array([[0.6, 0.4], [0.3, 0.7], [0.2, 0.8], [0.9, 0.1]])
    mine = np.array([[0.7, 0.3], [0.6, 0.4], [0.1, 0.9], [0.4, 0.6]])
    assert V.ensv(mine, ens) == pytest.approx(0.5)


def test_importance_weights_favour_source_clips_that_look_like_the_target():
    rng = np.random.default_rng(0)
    source = np.r_[rng.normal(0, 1, (100, 3)), rng.normal(3, 1, (100, 3))]
    target = rng.normal(3, 1, (200, 3))
    w = V.importance_weights(source, target)
    assert w.shape == (200,) and (w > 0).all()
    assert w[100:].mean() > 5 * w[:100].mean()  # the half near the target weighs more
    assert np.array_equal(w, V.importance_weights(source, target))  # deterministic


def test_functionals_are_mean_and_std_per_channel():
    x = np.arange(12, dtype=np.float32).reshape(1, 2, 6)
    f = V.functionals(x)
    assert f.shape == (1, 4)
    assert f[0].tolist() == pytest.approx([2.5, 8.5, np.std(range(6)), np.std(range(6))])
