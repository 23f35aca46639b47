"""The paper's scores, through scikit-learn (and nothing hand-written).

WAR:      weighted average recall, i.e. overall accuracy.
UAR:      unweighted average recall, the mean of the per-class recalls.
F1 (pos): the F1 of the positive class, label 1 (high arousal / positive valence). This is
          what the paper's tables call F1: it can exceed WAR (paper, arousal 79.9 vs 74.3)
          and is low when the positive class is rarely predicted (source-only valence 29.4
          at WAR 52.1), which a macro F1 cannot be.
F1 (macro): the unweighted mean of the per-class F1 scores.

Tables name which F1 they show; ``target_f1_pos`` and ``target_f1_macro`` are both reported.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

POSITIVE = 1  # high arousal / positive valence (emodna.labels.CLASSES)


def scores(y_true, y_pred, n_classes: int | None = None) -> dict[str, float]:
    """WAR, UAR, positive-class F1 and macro F1 of predictions, each in [0, 1].

    With ``n_classes``, macro F1 averages over all classes, including ones that never occur
    (a class absent from both ``y_true`` and ``y_pred`` scores 0), so that a model that
    predicts one class for everything cannot look better than it is.
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    labels = np.arange(n_classes) if n_classes else None
    return {
        "war": float(accuracy_score(y_true, y_pred)),
        "uar": float(balanced_accuracy_score(y_true, y_pred)),
        "f1_pos": float(
            f1_score(y_true, y_pred, pos_label=POSITIVE, average="binary", zero_division=0)
        ),
        "f1_macro": float(
            f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
        ),
    }
