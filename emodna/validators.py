"""Label-free validators: how good a trained model looks on the target without its labels.

Choosing hyperparameters for unsupervised domain adaptation cannot look at the target's
labels; these scores are what a user can look at instead. Each is computed from what a run
keeps (:func:`prediction_table`): class probabilities on the target clips and on
held-out (speaker-disjoint) source clips, with their labels and importance weights. All are
oriented so that **higher is better**.

skada (scikit-adaptation) has entropy, importance-weighted, DEV and SND scorers, but they
score a fitted scikit-learn estimator on raw inputs and call its ``predict_proba``; ours are
computed after a sweep from stored probabilities for any subset of trials, and skada has
no information maximisation, BNM or EnsV. So the formulas are written here, each with its
paper, and checked against hand-computed cases in ``tests/test_validators.py``.

Notation: ``P`` [N, K] target probabilities, ``H(p) = -sum_k p_k log p_k``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from emodna.atomic import atomic_write

EPS = 1e-12

# name -> what it is, for tables (sweep.validate uses these names as columns)
VALIDATORS = {
    "source_val_uar": "UAR on held-out source speakers",
    "neg_entropy": "minus the mean target prediction entropy",
    "info_max": "information maximisation: H(mean p) - mean H(p)",
    "bnm": "batch nuclear norm of the target predictions / N",
    "snd": "soft neighbourhood density of the target predictions",
    "dev": "minus DEV's importance-weighted source validation risk",
    "ensv": "accuracy against the ensemble of all candidates' predictions",
}


def _entropy(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1.0)
    return -(p * np.log(p)).sum(axis=-1)


def neg_entropy(p: np.ndarray) -> float:
    """``-mean_n H(P_n)``: confident predictions score high (Morerio et al. 2018)."""
    return float(-_entropy(p).mean())


def info_max(p: np.ndarray) -> float:
    """Information maximisation ``H(mean_n P_n) - mean_n H(P_n)`` (Shi & Sha 2012; Musgrave
    et al. 2022's IM): confident *and* diverse predictions; a model that puts every clip in
    one class scores 0."""
    p = np.asarray(p, dtype=np.float64)
    return float(_entropy(p.mean(axis=0)) - _entropy(p).mean())


def bnm(p: np.ndarray) -> float:
    """Batch nuclear-norm ``||P||_* / N`` (Cui et al., CVPR 2020): the sum of P's singular
    values, large when predictions are confident and spread over the classes."""
    p = np.asarray(p, dtype=np.float64)
    return float(np.linalg.norm(p, ord="nuc") / len(p))


def snd(p: np.ndarray, temperature: float = 0.05) -> float:
    """Soft neighbourhood density (Saito et al., ICCV 2021, Eq. 1-3) over the prediction
    vectors: L2-normalise each ``P_n``, similarities ``M = P P^T`` without the diagonal,
    ``S_n = softmax(M_n / temperature)``, score ``mean_n H(S_n)``: high when each clip has
    many close neighbours (dense clusters)."""
    f = np.asarray(p, dtype=np.float64)
    f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), EPS)
    m = f @ f.T / temperature
    np.fill_diagonal(m, -np.inf)
    m = m - m.max(axis=1, keepdims=True)
    s = np.exp(m)
    s = s / s.sum(axis=1, keepdims=True)
    return float(_entropy(s).mean())


def dev(p_val: np.ndarray, y_val: np.ndarray, weight: np.ndarray) -> float:
    """Minus Deep Embedded Validation's risk (You et al., ICML 2019, Eq. 7-8).

    Per held-out source clip the cross-entropy ``l_n`` and its importance weight ``w_n``
    (``p_T(x) / p_S(x)``, :func:`importance_weights`); ``L = w * l`` and the control variate
    ``eta = -Cov(L, w) / Var(w)``; risk ``= mean(L) + eta * mean(w) - eta``.
    """
    p_val = np.asarray(p_val, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64)
    loss = -np.log(np.clip(p_val[np.arange(len(p_val)), np.asarray(y_val)], EPS, 1.0))
    weighted = w * loss
    var = w.var(ddof=1) if len(w) > 1 else 0.0
    eta = -np.cov(weighted, w, ddof=1)[0, 1] / var if var > 0 else 0.0
    return float(-(weighted.mean() + eta * w.mean() - eta))


def ensv(p: np.ndarray, p_ensemble: np.ndarray) -> float:
    """EnsV (Hu et al., NeurIPS 2024): agreement (accuracy) of this model's target
    predictions with those of the ensemble of all candidate models (their mean
    probabilities), the ensemble standing in for the missing labels."""
    return float((np.argmax(p, axis=1) == np.argmax(p_ensemble, axis=1)).mean())


def functionals(x: np.ndarray) -> np.ndarray:
    """[N, F, T] inputs -> [N, 2F]: each channel's mean and std over frames (float64)."""
    x = np.asarray(x, dtype=np.float64)
    return np.concatenate([x.mean(axis=2), x.std(axis=2)], axis=1)


def importance_weights(f_source: np.ndarray, f_target: np.ndarray) -> np.ndarray:
    """``w(x) = p_T(x) / p_S(x)`` for each source row, as DEV estimates it: a logistic
    regression tells target rows from source rows (features standardised over both), and
    ``w = (n_S / n_T) * d(x) / (1 - d(x))`` with ``d(x) = P(target | x)``. Deterministic
    (lbfgs), so every config on a scenario gets the same weights."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.concatenate([f_source, f_target])
    d = np.r_[np.zeros(len(f_source)), np.ones(len(f_target))]
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    clf.fit(x, d)
    p_t = np.clip(clf.predict_proba(f_source)[:, 1], 1e-6, 1 - 1e-6)
    return (len(f_source) / len(f_target)) * p_t / (1.0 - p_t)


# ----------------------------------------------------------------------------- what a run keeps

PREDICTIONS = "predictions.parquet"


def prediction_table(source, target, val_idx: np.ndarray, probs: dict) -> pd.DataFrame:
    """What a run keeps of its evaluation, so validators and ensembles are computed later
    without retraining (``sweep.validate``): one row per target clip and per held-out source
    clip, with the class probabilities of the kept model.

    Columns: ``split`` (``target`` | ``source_val``), ``row`` (the clip's index in its
    corpus's arrays), ``clip`` (its id, the audio path, where known), ``label`` (the true
    class: used only to score, never by a validator on the target), ``p0`` .. ``p{K-1}``,
    and ``weight``: for source validation clips, the importance weight p_T(x) / p_S(x) that
    DEV needs (:func:`emodna.validators.importance_weights`, from the clips' inputs, so the
    same for every config on a scenario); 1 for target clips.
    """
    parts = []
    for split, domain, rows in (
        ("target", target, np.arange(len(target.y))),
        ("source_val", source, np.asarray(val_idx, dtype=np.int64)),
    ):
        p = np.asarray(probs[split], dtype=np.float64)
        frame = pd.DataFrame(
            {
                "split": split,
                "row": rows,
                "clip": domain.clip[rows] if domain.clip is not None else rows.astype(str),
                "label": domain.y[rows],
            }
        )
        for k in range(p.shape[1]):
            frame[f"p{k}"] = p[:, k]
        frame["weight"] = 1.0
        parts.append(frame)
    if len(val_idx):
        parts[1]["weight"] = importance_weights(
            functionals(source.x[val_idx]), functionals(target.x)
        )
    return pd.concat(parts, ignore_index=True)


def write_predictions(path: str | Path, table: pd.DataFrame) -> None:
    atomic_write(Path(path), lambda tmp: table.to_parquet(tmp, index=False))
