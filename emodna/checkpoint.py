"""Checkpoints: one ``checkpoint.pt`` per run, plain tensors and primitives only, so they
load with ``torch.load(weights_only=True)``. ``emodna.train.fit`` writes and resumes from
them; ``emodna.predict`` and the sweep's exports read them."""

from __future__ import annotations

from pathlib import Path

import torch

from emodna.atomic import atomic_write
from emodna.config import TrainConfig
from emodna.errors import TrainingError

CHECKPOINT = "checkpoint.pt"


def read_checkpoint(path: Path, fix: str) -> dict:
    """The state dict in ``path``; a one-line TrainingError (ending in ``fix``) if it is not
    an emodna checkpoint."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        reason = " ".join(str(exc).split())[
            :200
        ]  # torch's messages span lines; errors are one line
        if "Weights only load failed" in reason:
            reason = "torch.load(weights_only=True) refused it: not a checkpoint written by emodna"
        raise TrainingError(f"{path}: not a readable checkpoint ({reason}); {fix}") from None
    if not isinstance(state, dict) or "model" not in state:
        raise TrainingError(f"{path}: not an emodna checkpoint (no model state); {fix}")
    return state


def save_checkpoint(
    path: Path,
    model,
    objective,
    optimizer,
    cfg: TrainConfig,
    history,
    gen,
    norm: dict | None = None,
    kept: dict | None = None,
    averaged=None,
) -> None:
    """The run's state. ``norm``: the input normalisation and the target's statistics (for
    predict); ``kept``: the model selected by ``select`` (or the averaged weights) when it is
    not the last one; ``averaged``: the weight averager (``weight_average``), to resume it."""
    state = {
        "model": model.state_dict(),
        "objective": objective.state_dict() if objective is not None else {},
        "optimizer": optimizer.state_dict() if optimizer is not None else {},
        "config": cfg.to_dict(),
        "model_shape": {"n_mfcc": model.n_mfcc, "n_classes": model.n_classes},
        "epoch": history[-1]["epoch"],
        "history": history,
        "rng": torch.get_rng_state(),
        "gen": gen.get_state() if gen is not None else torch.Generator().get_state(),
        "norm": norm or {"mode": cfg.normalize},
    }
    if kept is not None:
        state["kept"] = kept
    if averaged is not None:
        state["averaged"] = averaged.state_dict()
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: Path, model, objective=None, optimizer=None) -> dict:
    """Load a checkpoint into the given modules; TrainingError if it doesn't fit them."""
    state = read_checkpoint(path, "delete it to start afresh")
    shape = {
        "n_mfcc": getattr(model, "n_mfcc", None),
        "n_classes": getattr(model, "n_classes", None),
    }
    saved = state.get("model_shape") if isinstance(state, dict) else None
    if saved and saved != shape:
        have = ", ".join(f"{k}={v}" for k, v in saved.items())
        want = ", ".join(f"{k}={v}" for k, v in shape.items())
        raise TrainingError(
            f"{path}: checkpoint is of a model with {have}, this run's model has {want}; "
            "use a fresh --out folder (or delete the checkpoint) to start afresh"
        )
    try:
        model.load_state_dict(state["model"])
        if objective is not None:
            objective.load_state_dict(state["objective"])
        if optimizer is not None:
            optimizer.load_state_dict(state["optimizer"])
    except (KeyError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0][:200]
        raise TrainingError(
            f"{path}: checkpoint does not fit this model ({first}); it was written by another "
            "model shape or method: use a fresh --out folder"
        ) from exc
    return state
