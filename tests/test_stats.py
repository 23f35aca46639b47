"""sweep.stats on small examples worked by hand (Demsar 2006), not against its own formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sweep import stats as ST


def test_friedman_on_a_worked_example_without_ties():
    # 4 scenarios x 3 configs, higher is better; ranks per scenario (1 = best):
    #   (1, 2, 3), (1, 2, 3), (1, 3, 2), (2, 1, 3)  -> rank sums R = (5, 8, 11)
    # chi2 = 12 / (n k (k+1)) * sum R^2 - 3 n (k+1) = 12/48 * (25 + 64 + 121) - 48 = 4.5
    # p = chi2.sf(4.5, df 2) = exp(-4.5 / 2) = 0.105399
    # Iman-Davenport F = (n-1) chi2 / (n (k-1) - chi2) = 3 * 4.5 / (8 - 4.5) = 3.857143, on
    # (k-1, (k-1)(n-1)) = (2, 6) df; with 2 numerator df, sf = (1 + 2 F / 6) ** -3 = 0.083740
    x = [[0.9, 0.8, 0.7], [0.6, 0.5, 0.4], [0.9, 0.7, 0.8], [0.5, 0.6, 0.4]]
    got = ST.friedman(x, "max")
    assert (got["k"], got["n"]) == (3, 4)
    assert list(got["mean_ranks"]) == [1.25, 2.0, 2.75]
    assert got["statistic"] == pytest.approx(4.5)
    assert got["pvalue"] == pytest.approx(math.exp(-2.25))
    assert got["pvalue"] == pytest.approx(0.105399, abs=1e-6)
    assert got["f_statistic"] == pytest.approx(27 / 7)
    assert got["f_pvalue"] == pytest.approx(0.083740, abs=1e-6)
    # lower is better: the ranks turn around (4 - r), the statistic does not
    low = ST.friedman(x, "min")
    assert list(low["mean_ranks"]) == [2.75, 2.0, 1.25]
    assert low["statistic"] == pytest.approx(4.5)


def test_friedman_corrects_for_ties():
    # 2 scenarios x 3 configs: (0.9, 0.5, 0.5) ranks (1, 2.5, 2.5), (0.8, 0.7, 0.6) ranks (1, 2, 3)
    # R = (2, 4.5, 5.5): 12/24 * (4 + 20.25 + 30.25) - 24 = 3.25; one tie of 2 in 2 x 3 x 8:
    # C = 1 - (2^3 - 2) / (n k (k^2 - 1)) = 1 - 6/48 = 0.875; chi2 = 3.25 / 0.875 = 3.714286
    # scores equal up to float noise (0.1 + 0.2 vs 0.3) tie as well
    x = [[0.9, 0.1 + 0.2 + 0.2, 0.5], [0.8, 0.7, 0.6]]
    got = ST.friedman(x, "max")
    assert list(got["mean_ranks"]) == [1.0, 2.25, 2.75]
    assert got["statistic"] == pytest.approx(3.25 / 0.875)
    # Iman-Davenport: (n-1) chi2 / (n (k-1) - chi2) = 3.714286 / (4 - 3.714286) = 13.0
    assert got["f_statistic"] == pytest.approx(13.0)


def test_friedman_is_not_applicable_to_two_configs_one_scenario_or_all_ties():
    for x in ([[0.9, 0.8], [0.7, 0.6]], [[0.9, 0.8, 0.7]], [[0.5, 0.5, 0.5], [0.7, 0.7, 0.7]]):
        got = ST.friedman(x)
        assert math.isnan(got["statistic"]) and math.isnan(got["f_statistic"]), x
        assert len(got["mean_ranks"]) == len(x[0])
    with pytest.raises(ValueError, match="full 2-D matrix"):
        ST.friedman([[0.5, np.nan, 0.4], [0.1, 0.2, 0.3]])


def test_q_alpha_is_demsars_table():
    # k = 2: the range of two standard normals is sqrt(2) |Z|, so q_0.05 / sqrt(2) is the
    # two-sided 5% point of the normal, 1.959964
    assert ST.q_alpha(2) == pytest.approx(1.959964, abs=1e-6)
    # Demsar (2006), Table 5a, to its 3 decimals (cut, not rounded: 2.3437 is 2.343 there)
    table = {0.05: {3: 2.343, 4: 2.569, 10: 3.164}, 0.10: {2: 1.645, 5: 2.459, 10: 2.920}}
    for alpha, row in table.items():
        for k, q in row.items():
            assert ST.q_alpha(k, alpha) == pytest.approx(q, abs=1e-3), (alpha, k)
    # beyond the table: more configs need a larger range
    assert ST.q_alpha(10) < ST.q_alpha(12) < ST.q_alpha(20)
    with pytest.raises(ValueError):
        ST.q_alpha(1)


def test_nemenyi_critical_difference():
    # CD = q_alpha sqrt(k (k + 1) / (6 N)): k = 4, N = 10: 2.569 * sqrt(20 / 60) = 1.4832
    assert ST.nemenyi_cd(4, 10) == pytest.approx(1.4832, abs=5e-4)
    # k = 2, N = 5: 1.960 * sqrt(6 / 30) = 0.8765
    assert ST.nemenyi_cd(2, 5) == pytest.approx(0.8765, abs=5e-4)


def test_cliques_are_maximal_runs_within_cd():
    assert ST.cliques([1.0, 1.5, 3.0, 3.2], 1.0) == [(0, 1), (2, 3)]
    assert ST.cliques([1.0, 1.5, 1.9, 2.8], 1.0) == [(0, 2), (2, 3)]
    assert ST.cliques([1.0, 1.5, 1.9, 2.4], 1.0) == [(0, 2), (1, 3)]
    assert ST.cliques([1.0, 3.0], 1.0) == []
