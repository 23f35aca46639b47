"""Friedman test, Nemenyi critical difference and cliques (Demsar 2006): the statistics of
the summary, independent of sweeps and of the paper.

Demsar, J. (2006). Statistical comparisons of classifiers over multiple data sets. JMLR 7.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

TIE_DECIMALS = 10  # scores equal to 10 decimals tie (means of the same values in another order)


def friedman(values, mode: str = "max") -> dict:
    """Friedman test over configs (columns) by scenarios (rows, the blocks).

    ``values``: an array [n_scenarios, k_configs] without NaN. Ranks within each scenario
    (1 = best, ties averaged), their means, the tie-corrected chi-square statistic and its p
    (``scipy.stats.friedmanchisquare``) and the Iman-Davenport F variant (Demsar 2006), which
    scipy does not give. Statistics are NaN with fewer than 3 configs or 2 scenarios, or where
    every scenario ties all its configs. Returns dict(k, n, mean_ranks, statistic, pvalue,
    f_statistic, f_pvalue).
    """
    x = np.asarray(values, dtype=float)
    if x.ndim != 2 or np.isnan(x).any():
        raise ValueError("friedman needs a full 2-D matrix of scenarios x configs")
    n, k = x.shape
    xr = np.round(x, TIE_DECIMALS)
    ranks = stats.rankdata(-xr if mode == "max" else xr, method="average", axis=1)
    nan = float("nan")
    out = dict(k=k, n=n, mean_ranks=ranks.mean(axis=0), statistic=nan, pvalue=nan)
    out.update(f_statistic=nan, f_pvalue=nan)
    if k < 3 or n < 2 or (xr == xr[:, :1]).all():
        return out
    # the statistic is the same for either direction of the ranks
    chi2, p = stats.friedmanchisquare(*xr.T)
    out.update(statistic=float(chi2), pvalue=float(p))
    denom = n * (k - 1) - chi2
    if denom > 0:
        ff = (n - 1) * chi2 / denom
        out.update(f_statistic=float(ff), f_pvalue=float(stats.f.sf(ff, k - 1, (k - 1) * (n - 1))))
    return out


def q_alpha(k: int, alpha: float = 0.05) -> float:
    """Nemenyi's q_alpha for k classifiers: the studentized range's 1 - alpha quantile with
    infinite degrees of freedom, divided by sqrt(2) (Demsar 2006, Table 5a, to 3 decimals)."""
    if k < 2:
        raise ValueError("q_alpha needs at least two classifiers")
    return float(stats.studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2))


def nemenyi_cd(k: int, n: int, alpha: float = 0.05) -> float:
    """Critical difference of mean ranks: CD = q_alpha * sqrt(k (k + 1) / (6 N))."""
    return q_alpha(k, alpha) * math.sqrt(k * (k + 1) / (6.0 * n))


def cliques(ranks, cd: float) -> list[tuple[int, int]]:
    """Maximal runs i..j (in rank order) whose ranks differ by no more than CD (len >= 2)."""
    r = np.sort(np.asarray(ranks, dtype=float))
    runs = []
    for i in range(len(r)):
        j = i
        while j + 1 < len(r) and r[j + 1] - r[i] <= cd + 1e-12:
            j += 1
        if j > i and not any(a <= i and j <= b for a, b in runs):
            runs.append((i, j))
    return runs
