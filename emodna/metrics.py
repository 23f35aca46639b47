"""The paper's three scores, through scikit-learn (and nothing hand-written).

WAR: weighted average recall, i.e. overall accuracy.
UAR: unweighted average recall, the mean of the per-class recalls.
F1:  macro F1, the unweighted mean of the per-class F1 scores.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score


def scores(y_true, y_pred, n_classes: int | None = None) -> dict[str, float]:
    """WAR, UAR and macro F1 of predictions, each in [0, 1].

    With ``n_classes``, F1 averages over all classes, including ones that never occur
    (a class absent from both ``y_true`` and ``y_pred`` scores 0), so that a model that
    predicts one class for everything cannot look better than it is.
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    labels = np.arange(n_classes) if n_classes else None
    return {
        "war": float(accuracy_score(y_true, y_pred)),
        "uar": float(balanced_accuracy_score(y_true, y_pred)),
        "f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
    }
