"""Friedman test, Nemenyi critical difference and cliques (Demsar 2006): the statistics of
the summary, independent of sweeps and of the paper.

Demsar, J. (2006). Statistical comparisons of classifiers over multiple data sets. JMLR 7.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

TIE_DECIMALS = 10  # scores equal to 10 decimals tie (means of the same values in another order)

# Nemenyi critical values q_alpha (Demsar 2006, Table 5a): the studentized range statistic
# divided by sqrt(2), for k = 2..10 classifiers. More than 10: computed with scipy.
Q_ALPHA = {
    0.05: (1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164),
    0.10: (1.645, 2.052, 2.291, 2.459, 2.589, 2.693, 2.780, 2.855, 2.920),
}


def friedman(values, mode: str = "max") -> dict:
    """Friedman test over configs (columns) by scenarios (rows, the blocks).

    ``values``: an array [n_scenarios, k_configs] without NaN. Ranks within each scenario
    (1 = best, ties averaged), then the tie-corrected chi-square statistic (the same as
    ``scipy.stats.friedmanchisquare``) and the Iman-Davenport F variant (Demsar 2006).
    Returns dict(k, n, mean_ranks, statistic, pvalue, f_statistic, f_pvalue).
    """
    x = np.asarray(values, dtype=float)
    if x.ndim != 2 or np.isnan(x).any():
        raise ValueError("friedman needs a full 2-D matrix of scenarios x configs")
    n, k = x.shape
    xr = np.round(x, TIE_DECIMALS)
    ranks = np.vstack([stats.rankdata(-r if mode == "max" else r, method="average") for r in xr])
    mean_ranks = ranks.mean(axis=0)
    if k < 3 or n < 2:
        return dict(
            k=k,
            n=n,
            mean_ranks=mean_ranks,
            statistic=float("nan"),
            pvalue=float("nan"),
            f_statistic=float("nan"),
            f_pvalue=float("nan"),
        )
    ties = 0.0
    for r in ranks:
        _, counts = np.unique(r, return_counts=True)
        ties += float((counts * (counts * counts - 1)).sum())
    c = 1.0 - ties / (k * (k * k - 1) * n)
    ssbn = float((ranks.sum(axis=0) ** 2).sum())
    chi2 = (12.0 / (k * n * (k + 1)) * ssbn - 3 * n * (k + 1)) / c if c > 0 else float("nan")
    p = float(stats.chi2.sf(chi2, k - 1)) if math.isfinite(chi2) else float("nan")
    denom = n * (k - 1) - chi2
    ff = (n - 1) * chi2 / denom if math.isfinite(chi2) and denom > 0 else float("nan")
    p_ff = float(stats.f.sf(ff, k - 1, (k - 1) * (n - 1))) if math.isfinite(ff) else float("nan")
    return dict(
        k=k,
        n=n,
        mean_ranks=mean_ranks,
        statistic=float(chi2),
        pvalue=p,
        f_statistic=float(ff),
        f_pvalue=p_ff,
    )


def q_alpha(k: int, alpha: float = 0.05) -> float:
    """Nemenyi's q_alpha for k classifiers (Demsar 2006 Table 5a; scipy beyond k=10)."""
    if k < 2:
        raise ValueError("q_alpha needs at least two classifiers")
    if alpha in Q_ALPHA and k <= 10:
        return Q_ALPHA[alpha][k - 2]
    return float(stats.studentized_range.ppf(1 - alpha, k, 1e6) / math.sqrt(2))


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
