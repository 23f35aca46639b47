"""Train one scenario: a labelled source corpus, an unlabelled target corpus, one method.

``fit(config, source, target)`` is the single training loop behind ``emodna train`` and
every sweep trial. It takes arrays (no files, no Ray) and calls ``on_epoch(metrics)`` once
per epoch. Read it top to bottom:

1. seed everything, hold out 10% of the source for a label-free validation signal;
2. build the model and the method's objective (``emodna.methods``), RAdam;
3. resume from ``checkpoint_dir/checkpoint.pt`` when it is there;
4. each epoch is one pass over the larger corpus, source and target batches drawn
   together (the smaller one is reshuffled when it runs out);
5. after each epoch: evaluate on the whole target with its labels (the paper's protocol)
   and on the label-free signals, write the checkpoint, call ``on_epoch``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml

from emodna.errors import ConfigError, TrainingError
from emodna.labels import CLASSES, TASKS
from emodna.metrics import scores

CHECKPOINT = "checkpoint.pt"


@dataclass
class TrainConfig:
    """Everything that determines one training run. A sweep exports exactly this as YAML."""

    source: str = "EMODB"
    target: str = "CASIA"
    task: str = "arousal"
    method: str = "emodna"
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 0
    # Emo-DNA's hyperparameters (DESIGN.md; the paper's values as defaults)
    tau_p: float = 0.01  # prototype contrastive temperature, Eq. (4)-(5)
    tau_s: float = 0.01  # supervised contrastive temperature, Eq. (9)
    ema_lambda: float = 0.99  # threshold EMA momentum, Eq. (7); not given in the paper
    alpha_1: float = 0.1  # weight of SupCon in L_align, Eq. (11)
    mmd_multipliers: list[float] = field(default_factory=lambda: [0.25, 0.5, 1.0, 2.0, 4.0])
    decouple_negative: str = "same"  # "same" or "other" corpus prototype as the negative
    fixed_threshold: float = 0.9  # for the fixed_threshold ablation
    trade_off: float = 1.0  # weight of a baseline's alignment loss (DAN, DANN, JAN, CDAN, BSP)
    # data
    val_fraction: float = 0.1
    normalize_features: bool = False
    dropout: float = 0.1

    @classmethod
    def from_dict(cls, values: dict, origin: str = "config") -> TrainConfig:
        """Build from a dict; unknown keys and wrong types raise ConfigError naming them.

        The key ``origin`` (where an exported config came from) is kept aside and ignored.
        """
        fields = {f.name: f for f in dataclasses.fields(cls)}
        kwargs = {}
        for key, value in values.items():
            if key == "origin":
                continue
            if key not in fields:
                close = difflib.get_close_matches(key, fields, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(fields)}"
                raise ConfigError(f"{origin}: unknown key {key!r}{hint}")
            kwargs[key] = _coerce(key, value, fields[key], origin)
        config = cls(**kwargs)
        config.validate(origin)
        return config

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides) -> TrainConfig:
        try:
            values = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: cannot read the config ({exc})") from exc
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: a config is a mapping of keys to values, got {type(values).__name__}")
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(values, origin=str(path))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def validate(self, origin: str = "config") -> None:
        from emodna.methods import METHODS

        if self.task not in TASKS:
            raise ConfigError(f"{origin}: task {self.task!r} is not one of {', '.join(TASKS)}")
        if self.method not in METHODS:
            raise ConfigError(
                f"{origin}: unknown method {self.method!r}; `emodna methods` lists: {', '.join(METHODS)}"
            )
        if self.decouple_negative not in ("same", "other"):
            raise ConfigError(f"{origin}: decouple_negative must be 'same' or 'other'")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{origin}: {name} must be at least 1")
        for name in ("lr", "tau_p", "tau_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{origin}: {name} must be positive")
        if not 0 <= self.ema_lambda < 1:
            raise ConfigError(f"{origin}: ema_lambda must be in [0, 1)")
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"{origin}: val_fraction must be in [0, 1)")
        if not self.mmd_multipliers or min(self.mmd_multipliers) <= 0:
            raise ConfigError(f"{origin}: mmd_multipliers must be a non-empty list of positive numbers")


def _coerce(key: str, value, f: dataclasses.Field, origin: str):
    """Check one value against the field's type; ints are accepted where floats are."""
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    try:
        if kind == "bool":
            if not isinstance(value, bool):
                raise TypeError
            return value
        if kind == "int":
            if isinstance(value, bool) or not float(value).is_integer():
                raise TypeError
            return int(value)
        if kind == "float":
            if isinstance(value, bool):
                raise TypeError
            return float(value)
        if kind == "str":
            if not isinstance(value, str):
                raise TypeError
            return value
        if kind.startswith("list"):
            if not isinstance(value, list | tuple):
                raise TypeError
            return [float(v) for v in value]
    except (TypeError, ValueError):
        raise ConfigError(f"{origin}: {key} must be a {kind}, got {value!r}") from None
    return value


@dataclass
class Domain:
    """One corpus's arrays for a task: x [N, n_mfcc, frames] float32, y [N] int64."""

    x: np.ndarray
    y: np.ndarray
    name: str = ""


# ---------------------------------------------------------------------------------------


def fit(
    config: TrainConfig | dict,
    source: Domain,
    target: Domain,
    *,
    on_epoch: Callable[[dict], None] | None = None,
    checkpoint_dir: str | Path | None = None,
) -> dict:
    """Train one scenario; return the last epoch's metrics (see :func:`evaluate`).

    The target's labels are used only to evaluate. With ``checkpoint_dir``, a checkpoint
    is written after every epoch and a run started on a folder that holds one resumes.
    """
    from emodna.losses import check_finite
    from emodna.methods import build_objective
    from emodna.model import EmoDNA

    cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)
    n_classes = len(CLASSES[cfg.task])
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    train_idx, val_idx = split_source(source.y, cfg.val_fraction, cfg.seed)

    model = EmoDNA(n_mfcc=source.x.shape[1], n_classes=n_classes, dropout=cfg.dropout)
    objective = build_objective(cfg, n_classes=n_classes)
    optimizer = torch.optim.RAdam([*model.parameters(), *objective.parameters()], lr=cfg.lr)

    start_epoch, history = 0, []
    ckpt_path = Path(checkpoint_dir) / CHECKPOINT if checkpoint_dir else None
    if ckpt_path is not None and ckpt_path.exists():
        state = load_checkpoint(ckpt_path, model, objective, optimizer)
        start_epoch, history = state["epoch"], state["history"]
        torch.set_rng_state(state["rng"])
        gen.set_state(state["gen"])

    steps = math.ceil(max(len(train_idx), len(target.x)) / cfg.batch_size)
    metrics = history[-1] if history else {}
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        model.train()
        objective.train()
        src_batches = _batches(train_idx, cfg.batch_size, steps, gen)
        tgt_batches = _batches(np.arange(len(target.x)), cfg.batch_size, steps, gen)
        sums: dict[str, float] = {}
        for step, (si, ti) in enumerate(zip(src_batches, tgt_batches, strict=True)):
            xs = torch.from_numpy(source.x[si])
            ys = torch.from_numpy(source.y[si])
            xt = torch.from_numpy(target.x[ti])
            progress = (epoch * steps + step) / (cfg.epochs * steps)
            terms = objective(model, xs, ys, xt, progress=progress)
            check_finite(terms, where=f"at epoch {epoch + 1}, step {step + 1} ({cfg.source}->{cfg.target})")
            loss = sum(terms.values())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            sums["loss"] = sums.get("loss", 0.0) + loss.item()
            for name, value in terms.items():
                sums[f"loss_{name}"] = sums.get(f"loss_{name}", 0.0) + value.item()
        metrics = {
            "epoch": epoch + 1,
            **{k: v / steps for k, v in sums.items()},
            **evaluate(model, objective, source, target, val_idx, n_classes, cfg.batch_size),
            "epoch_seconds": time.perf_counter() - t0,
        }
        history.append(metrics)
        if ckpt_path is not None:
            save_checkpoint(ckpt_path, model, objective, optimizer, cfg, history, gen)
        if on_epoch is not None:
            on_epoch(dict(metrics))
    return dict(metrics)


def split_source(y: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A stratified hold-out of the source for validation (label-free model selection)."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    if val_fraction <= 0:
        return idx, idx[:0]
    train, val = train_test_split(idx, test_size=val_fraction, random_state=seed, stratify=y)
    return np.sort(train), np.sort(val)


def _batches(idx: np.ndarray, batch_size: int, steps: int, gen: torch.Generator):
    """``steps`` batches of indices, reshuffling ``idx`` each time it runs out."""
    order = np.empty(0, dtype=np.int64)
    for _ in range(steps):
        if len(order) < batch_size:
            perm = idx[torch.randperm(len(idx), generator=gen).numpy()]
            order = np.concatenate([order, perm])
        yield order[:batch_size]
        order = order[batch_size:]


@torch.no_grad()
def predict_proba(model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Class probabilities [N, n_classes] of the emotion classifier, in eval mode."""
    model.eval()
    out = [
        torch.softmax(model.predict_logits(torch.from_numpy(np.array(x[i : i + batch_size]))), dim=1)
        for i in range(0, len(x), batch_size)
    ]
    return torch.cat(out).numpy()


def evaluate(model, objective, source: Domain, target: Domain, val_idx, n_classes, batch_size) -> dict:
    """Target scores (with labels) and the label-free signals a user could watch."""
    p_t = predict_proba(model, target.x)
    pred_t = p_t.argmax(1)
    out = {f"target_{k}": v for k, v in scores(target.y, pred_t, n_classes).items()}
    if len(val_idx):
        p_v = predict_proba(model, source.x[val_idx])
        out["source_val_acc"] = float((p_v.argmax(1) == source.y[val_idx]).mean())
    entropy = -(p_t * np.log(np.clip(p_t, 1e-12, 1))).sum(1)
    out["target_entropy"] = float(entropy.mean())
    threshold = objective.threshold_value()
    if threshold is not None:
        out["threshold"] = threshold
        out["pseudo_fraction"] = float((p_t.max(1) >= threshold).mean())
    return out


# ---------------------------------------------------------------------------------------
# Checkpoints: plain tensors and primitives only, so they load with weights_only=True


def save_checkpoint(path: Path, model, objective, optimizer, cfg: TrainConfig, history, gen) -> None:
    state = {
        "model": model.state_dict(),
        "objective": objective.state_dict(),
        "optimizer": optimizer.state_dict(),
        "config": cfg.to_dict(),
        "model_shape": {"n_mfcc": model.n_mfcc, "n_classes": model.n_classes},
        "epoch": history[-1]["epoch"],
        "history": history,
        "rng": torch.get_rng_state(),
        "gen": gen.get_state(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, model, objective=None, optimizer=None) -> dict:
    """Load a checkpoint into the given modules; TrainingError if it doesn't fit them."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        reason = " ".join(str(exc).split())[:200]  # torch's messages span lines; errors are one line
        if "Weights only load failed" in reason:
            reason = "torch.load(weights_only=True) refused it: not a checkpoint written by emodna"
        raise TrainingError(f"{path}: not a readable checkpoint ({reason}); delete it to start afresh") from exc
    shape = {"n_mfcc": getattr(model, "n_mfcc", None), "n_classes": getattr(model, "n_classes", None)}
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
