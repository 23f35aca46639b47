"""The classical baseline (``functionals_lr``): scikit-learn's logistic regression on each
clip's functionals, standardised per corpus. No epochs: :func:`fit_classical` fits it once
and reports once, through the same evaluation as the deep methods (``emodna.train``)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from emodna.checkpoint import save_checkpoint
from emodna.config import TrainConfig
from emodna.evaluation import evaluate
from emodna.labels import CLASSES
from emodna.model import SOURCE, TARGET
from emodna.validators import prediction_table, write_predictions


def fit_classical(
    cfg: TrainConfig,
    source,
    target,
    train_idx,
    val_idx,
    norm: dict,
    on_epoch=None,
    ckpt_path: Path | None = None,
    predictions_path: str | Path | None = None,
) -> dict:
    """The classical baseline: MFCC mean and std over time, standardised per corpus, into
    scikit-learn's LogisticRegression fitted on the source; one "epoch", one report."""
    from sklearn.linear_model import LogisticRegression

    from emodna.model import FunctionalsLR

    t0 = time.perf_counter()
    n_classes = len(CLASSES[cfg.task])
    model = FunctionalsLR(source.x.shape[1], n_classes)
    with torch.inference_mode():
        f_s = model.functionals(torch.from_numpy(np.array(source.x))).double()
        f_t = model.functionals(torch.from_numpy(np.array(target.x))).double()
    for domain, f in ((SOURCE, f_s), (TARGET, f_t)):  # each corpus by its own statistics
        model.mean[domain] = f.mean(0)
        model.std[domain] = f.std(0, correction=0).clamp_min(1e-8)
    z_s = ((f_s - model.mean[SOURCE]) / model.std[SOURCE]).numpy()
    clf = LogisticRegression(
        max_iter=2000, class_weight="balanced" if cfg.class_balance != "none" else None
    )
    clf.fit(z_s[train_idx], source.y[train_idx])
    with torch.no_grad():
        model.linear.weight.copy_(torch.from_numpy(clf.coef_))
        model.linear.bias.copy_(torch.from_numpy(clf.intercept_))
    probs: dict = {}
    metrics = {
        "epoch": 1,
        **evaluate(model, None, source, target, val_idx, n_classes, probs),
        "epoch_seconds": time.perf_counter() - t0,
    }
    if ckpt_path is not None:
        save_checkpoint(ckpt_path, model, None, None, cfg, [metrics], None, norm)
    if predictions_path is not None:
        write_predictions(predictions_path, prediction_table(source, target, val_idx, probs))
    if on_epoch is not None:
        on_epoch(dict(metrics))
    return metrics
