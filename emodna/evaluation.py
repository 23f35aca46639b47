"""Evaluation of a trained model on a scenario: the target scores (the paper's protocol, with
the target's labels) and the label-free signals a user could watch, from the class
probabilities of :func:`predict_proba`. Used by ``emodna.train`` and ``emodna.classical``."""

from __future__ import annotations

import numpy as np
import torch

from emodna.metrics import scores
from emodna.model import SOURCE, TARGET


@torch.inference_mode()
def predict_proba(model, x: np.ndarray, batch_size: int = 256, domain: int = TARGET) -> np.ndarray:
    """Class probabilities [N, n_classes] of the emotion classifier, in eval mode, with the
    BatchNorm statistics of ``domain`` (0 = source, 1 = target) where the model keeps both."""
    model.eval()
    model.set_domain(domain)
    device = next(model.parameters()).device
    out = [
        torch.softmax(
            model.predict_logits(torch.from_numpy(np.array(x[i : i + batch_size])).to(device)),
            dim=1,
        )
        for i in range(0, len(x), batch_size)
    ]
    return torch.cat(out).cpu().numpy()


def evaluate(
    model, objective, source, target, val_idx, n_classes, keep: dict | None = None
) -> dict:
    """Target scores (with labels) and the label-free signals a user could watch.

    With ``keep`` (a dict), the class probabilities behind them are put into it: ``target``
    [N_target, K] and ``source_val`` [len(val_idx), K] (:func:`emodna.validators.prediction_table`).
    """
    p_t = predict_proba(model, target.x, domain=TARGET)
    pred_t = p_t.argmax(1)
    out = {f"target_{k}": v for k, v in scores(target.y, pred_t, n_classes).items()}
    p_v = np.zeros((0, n_classes), dtype=np.float32)
    if len(val_idx):
        p_v = predict_proba(model, source.x[val_idx], domain=SOURCE)
        y_v = source.y[val_idx]
        out["source_val_acc"] = float((p_v.argmax(1) == y_v).mean())
        out["source_val_uar"] = scores(y_v, p_v.argmax(1), n_classes)["uar"]
    entropy = -(p_t * np.log(np.clip(p_t, 1e-12, 1))).sum(1)
    out["target_entropy"] = float(entropy.mean())
    threshold = objective.threshold_value() if objective is not None else None
    if threshold is not None:
        out["threshold"] = threshold
        out["pseudo_fraction"] = float((p_t.max(1) >= threshold).mean())
    if keep is not None:
        keep.update(target=p_t, source_val=p_v)
    return out
