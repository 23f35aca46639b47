"""Train one scenario: a labelled source corpus, an unlabelled target corpus, one method.

``fit(config, source, target)`` is the single training loop behind ``emodna train`` and
every sweep trial. It takes arrays (no files, no Ray) and calls ``on_epoch(metrics)`` once
per epoch. Read it top to bottom:

1. normalise the inputs (``cfg.normalize``, ``emodna.normalize``), seed everything, hold
   out 10% of the source for a label-free validation signal;
2. build the model and the method's objective (``emodna.methods``), RAdam;
3. resume from ``checkpoint_dir/checkpoint.pt`` when it is there;
4. each epoch is one pass over the larger corpus, source and target batches drawn
   together (the smaller one is reshuffled when it runs out; with ``class_balance:
   sampler`` source clips are drawn with probability inversely proportional to their
   class's frequency); the learning rate follows ``lr_schedule``;
5. after each epoch: evaluate on the whole target with its labels (the paper's protocol)
   and on the label-free signals, pick the model to keep (``select``), write the
   checkpoint, call ``on_epoch``.

The classical baseline (``functionals_lr``) has no epochs: :func:`emodna.classical.fit_classical` fits it
with scikit-learn and reports once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from emodna.checkpoint import CHECKPOINT, load_checkpoint, save_checkpoint
from emodna.classical import fit_classical
from emodna.config import METHODS, TrainConfig
from emodna.errors import TrainingError
from emodna.evaluation import evaluate
from emodna.labels import CLASSES
from emodna.losses import check_finite
from emodna.normalize import normalize, speaker_groups, stats
from emodna.speed import autocast_dtype, compile_model, keep_freed_memory
from emodna.validators import prediction_table, write_predictions


@dataclass
class Domain:
    """One corpus's arrays for a task: x [N, n_mfcc, frames] float32, y [N] int64, and one
    speaker id per clip for ``normalize: speaker`` (None: all unknown, so the corpus is
    normalised as one group)."""

    x: np.ndarray
    y: np.ndarray
    name: str = ""
    speaker: np.ndarray | None = None
    clip: np.ndarray | None = None  # one id per clip (its path), keys the kept predictions
    frames: np.ndarray | None = None  # [N, 2] each clip's real frames (None: all real)

    @classmethod
    def of(cls, features, task: str, mapping: dict | None = None) -> Domain:
        """One corpus's cached features (:class:`emodna.features.Features`) for ``task``."""
        return cls(
            features.x,
            features.labels(task, mapping),
            features.corpus,
            features.speakers(),
            features.clips(),
            features.frames(),
        )

    def normalized(self, mode: str) -> Domain:
        """This corpus with its MFCCs normalised (``emodna.normalize``, statistics over each
        clip's real frames); itself for ``none``."""
        if mode == "none":
            return self
        return replace(self, x=normalize(self.x, mode, self.speaker, self.frames))


def norm_state(target: Domain, mode: str) -> dict:
    """What predict needs to normalise new audio of the target corpus as training did.

    ``corpus``: the target's per-coefficient mean and std. ``speaker``: the statistics of a
    typical target speaker, for a clip whose speaker the user does not declare: the mean over
    the target's speakers of their means, and the root mean of their variances (each speaker
    weighted by their clips; clips of unknown speaker are one group, as in training). Those
    keep a clip's overall level (c0, energy), which a clip's own statistics would remove.
    All over the clips' real frames, as in training (``emodna.normalize``).
    """
    if mode == "none":
        return {"mode": mode}
    if mode == "corpus":
        mean, std = stats(target.x, target.frames)
    else:
        total_mean, total_var = np.zeros(target.x.shape[1]), np.zeros(target.x.shape[1])
        for rows, _, m, s in speaker_groups(target.x, target.speaker, target.frames):
            total_mean += len(rows) * m
            total_var += len(rows) * s**2
        mean, std = total_mean / len(target.x), np.sqrt(total_var / len(target.x))
    return {"mode": mode, "mean": torch.from_numpy(mean), "std": torch.from_numpy(std)}


def class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Inverse class frequencies, n / (K * n_k), so a balanced corpus gets weight 1 for all."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    return len(y) / (n_classes * np.maximum(counts, 1))


# ---------------------------------------------------------------------------------------


def fit(
    config: TrainConfig | dict,
    source: Domain,
    target: Domain,
    *,
    on_epoch: Callable[[dict], None] | None = None,
    checkpoint_dir: str | Path | None = None,
    predictions_path: str | Path | None = None,
) -> dict:
    """Train one scenario; return the kept model's metrics (see :func:`evaluate`).

    The target's labels are used only to evaluate. With ``checkpoint_dir``, a checkpoint
    is written after every epoch and a run started on a folder that holds one resumes.

    With ``select: source_val`` the metrics reported each epoch are those of the model that
    would be kept if training stopped then (the best source-validation epoch so far, named in
    ``selected_epoch``); that epoch's own target scores are ``epoch_target_*``.

    With ``predictions_path``, the kept model's class probabilities on the target and the
    source validation clips are written there at the end (:func:`emodna.validators.prediction_table`).
    """
    from emodna.methods import build_model, build_objective

    cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)
    n_classes = len(CLASSES[cfg.task])
    norm = norm_state(target, cfg.normalize)
    source, target = source.normalized(cfg.normalize), target.normalized(cfg.normalize)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    train_idx, val_idx = split_source(source.y, cfg.val_fraction, cfg.seed, source.speaker)
    ckpt_path = Path(checkpoint_dir) / CHECKPOINT if checkpoint_dir else None
    if METHODS[cfg.method].classical:
        return fit_classical(
            cfg, source, target, train_idx, val_idx, norm, on_epoch, ckpt_path, predictions_path
        )

    device = resolve_device(cfg.device)
    keep_freed_memory()  # no page faults on every step's tensors (emodna.speed)
    model = build_model(cfg.method, source.x.shape[1], n_classes, cfg.dropout, cfg.bn)
    weight = class_weights(source.y[train_idx], n_classes) if cfg.class_balance == "loss" else None
    objective = build_objective(cfg, n_classes=n_classes, class_weight=weight)
    model, objective = model.to(device), objective.to(device)
    model, amp = compile_model(model, cfg.compile), autocast_dtype(cfg.amp, device)
    optimizer = make_optimizer(model, objective, cfg)
    averaged = weight_averager(model, cfg)
    draw_p = None
    if cfg.class_balance == "sampler":  # P(clip) proportional to 1 / its class's count
        draw_p = class_weights(source.y[train_idx], n_classes)[source.y[train_idx]]

    start_epoch, history, kept = 0, [], None
    if ckpt_path is not None and ckpt_path.exists():
        state = load_checkpoint(ckpt_path, model, objective, optimizer)
        start_epoch, history, kept = state["epoch"], state["history"], state.get("kept")
        if averaged is not None and "averaged" in state:
            averaged.load_state_dict(state["averaged"])
        torch.set_rng_state(state["rng"])
        gen.set_state(state["gen"])

    steps = math.ceil(max(len(train_idx), len(target.x)) / cfg.batch_size)
    src, tgt = _Arrays(source, device), _Arrays(target, device)
    metrics = history[-1] if history else {}
    probs: dict = {}  # the last evaluation's class probabilities (prediction_table)
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        model.train()
        objective.train()
        src_batches = _batches(train_idx, cfg.batch_size, steps, gen, draw_p)
        tgt_batches = _batches(np.arange(len(target.x)), cfg.batch_size, steps, gen)
        rows = []  # each step's loss terms, kept on the device: one sync per epoch
        for step, (si, ti) in enumerate(zip(src_batches, tgt_batches, strict=True)):
            (xs, ys), (xt, _) = src[si], tgt[ti]
            progress = (epoch * steps + step) / (cfg.epochs * steps)
            if cfg.lr_schedule == "cosine":
                for group in optimizer.param_groups:
                    group["lr"] = cfg.lr * 0.5 * (1.0 + math.cos(math.pi * progress))
            terms = train_step(model, objective, optimizer, (xs, ys, xt), amp, progress)
            if cfg.weight_average == "ema":
                averaged.update_parameters(model)
            rows.append(torch.stack([v.detach() for v in terms.values()]))
            if device.type == "cpu":  # a sync costs nothing here: stop at the step that diverged
                _check_steps(rows[-1][None], list(terms), step, epoch, cfg)
        values = torch.stack(rows).double().cpu()  # [steps, terms]: the epoch's one sync
        if device.type != "cpu":  # the CPU checked every step above
            _check_steps(values, list(terms), 0, epoch, cfg)
        if cfg.weight_average == "swa" and epoch + 1 > cfg.epochs // 2:
            averaged.update_parameters(model)
        evaluated = averaged.module if averaged is not None else model
        sums = {"loss": float(values.sum())}
        sums.update({f"loss_{n}": float(values[:, j].sum()) for j, n in enumerate(terms)})
        metrics = {
            "epoch": epoch + 1,
            **{k: v / steps for k, v in sums.items()},
            **evaluate(evaluated, objective, source, target, val_idx, n_classes, probs),
            "epoch_seconds": time.perf_counter() - t0,
        }
        if cfg.select == "source_val":
            metrics, kept = _select(metrics, kept, evaluated)
        elif averaged is not None:  # predict and exports load the averaged weights
            kept = {"epoch": metrics["epoch"], "model": _state(evaluated)}
        history.append(metrics)
        if ckpt_path is not None:
            save_checkpoint(
                ckpt_path, model, objective, optimizer, cfg, history, gen, norm, kept, averaged
            )
        if on_epoch is not None:
            on_epoch(dict(metrics))
    if predictions_path is not None:
        # the kept model's probabilities: the last evaluation's, unless select kept an earlier
        # epoch or this run resumed a finished one (then one more evaluation)
        if cfg.select == "source_val" or not probs:
            probs = {}
            evaluate(kept_model(model, kept), objective, source, target, val_idx, n_classes, probs)
        write_predictions(predictions_path, prediction_table(source, target, val_idx, probs))
    return dict(metrics)


def train_step(model, objective, optimizer, batch, amp, progress: float = 0.0) -> dict:
    """One optimisation step on ``batch`` = (source x, source y, target x): the method's loss
    terms (the forward under bf16 autocast when ``amp`` is ``torch.bfloat16``, as
    ``emodna.speed.autocast_dtype`` says), their sum, Eq. (11), minimised by one ``optimizer``
    step. Returns the terms by name. ``fit``'s loop body, and the step the sweep's plan times."""
    xs, ys, xt = batch
    with torch.autocast(xs.device.type, torch.bfloat16, enabled=amp is not None):
        terms = objective(model, xs, ys, xt, progress=progress)
    loss = sum(terms.values())
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return terms


def make_optimizer(model, objective, cfg) -> torch.optim.RAdam:
    """RAdam over the model's and the objective's parameters. ``foreach``: one multi-tensor
    kernel per update op instead of a Python loop over the ~70 parameters, the same update
    (torch's default only on GPUs; on the CPU 1.7x faster, docs/scaling.md)."""
    params = [*model.parameters(), *objective.parameters()]
    return torch.optim.RAdam(params, lr=cfg.lr, foreach=True)


def kept_model(model, kept: dict | None):
    """The model a run keeps: ``model`` itself, or a copy holding ``kept["model"]`` (the
    epoch ``select`` chose, or the averaged weights)."""
    if not kept or "model" not in kept:
        return model
    import copy

    out = copy.deepcopy(model)
    out.load_state_dict(kept["model"])
    return out


def weight_averager(model, cfg: TrainConfig):
    """torch.optim.swa_utils.AveragedModel for ``weight_average`` ema / swa, else None.

    EMA: w_avg <- decay * w_avg + (1 - decay) * w after every step; SWA: the equal mean of
    the weights at the end of each epoch of the second half (Izmailov et al. 2018). BatchNorm
    statistics are averaged the same way (``use_buffers``), so no extra pass is needed.
    """
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    if cfg.weight_average == "none":
        return None
    if cfg.weight_average == "ema":
        fn = get_ema_multi_avg_fn(cfg.weight_ema_decay)
        return AveragedModel(model, multi_avg_fn=fn, use_buffers=True)
    return AveragedModel(model, use_buffers=True)


def _state(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def resolve_device(name: str) -> torch.device:
    """``auto``: the first CUDA GPU torch sees, else the CPU; ``cpu``; ``cuda`` / ``cuda:N``
    (a TrainingError naming this node when torch sees no such GPU)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        import socket

        index = device.index or 0
        if not torch.cuda.is_available() or index >= torch.cuda.device_count():
            raise TrainingError(
                f"device {name}: torch sees {torch.cuda.device_count()} GPU(s) on node "
                f"{socket.gethostname()} (torch {torch.__version__}, CUDA "
                f"{torch.version.cuda or 'none'}); install a CUDA build of torch there or use "
                "device cpu"
            )
    return device


class _Arrays:
    """A corpus's x and y as training draws batches of them. On the CPU each batch is indexed
    out of the numpy arrays (the corpus is never copied; in a sweep it stays in Ray's shared
    memory); on an accelerator the corpus is moved there once and indexed there."""

    def __init__(self, domain: Domain, device: torch.device):
        self.device = device
        self.x, self.y = domain.x, domain.y
        if device.type != "cpu":
            self.x = torch.from_numpy(np.array(domain.x)).to(device)
            self.y = torch.from_numpy(np.array(domain.y)).to(device)

    def __getitem__(self, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        if self.device.type == "cpu":
            return torch.from_numpy(self.x[idx]), torch.from_numpy(self.y[idx])
        i = torch.from_numpy(idx).to(self.device)
        return self.x[i], self.y[i]


def _check_steps(values: torch.Tensor, names: list[str], first_step: int, epoch: int, cfg) -> None:
    """Raise DivergedError for the first step whose loss terms (a row of ``values`` [steps,
    terms], the terms in ``names`` order) are not all finite, naming the term, epoch and step."""
    bad = (~torch.isfinite(values)).any(dim=1).nonzero()
    if len(bad):
        step = int(bad[0])
        where = f"at epoch {epoch + 1}, step {first_step + step + 1} ({cfg.source}->{cfg.target})"
        check_finite(dict(zip(names, values[step], strict=True)), where=where)


def _select(metrics: dict, kept: dict | None, model) -> tuple[dict, dict]:
    """Label-free model selection: keep the epoch with the best source validation accuracy
    (a later epoch wins a tie). Returns the metrics to report and the kept epoch's state."""
    if kept is None or metrics["source_val_acc"] >= kept["source_val_acc"]:
        kept = {
            "epoch": metrics["epoch"],
            "source_val_acc": metrics["source_val_acc"],
            "target": {k: v for k, v in metrics.items() if k.startswith("target_")},
            "model": _state(model),
        }
    reported = {("epoch_" + k if k.startswith("target_") else k): v for k, v in metrics.items()}
    return {**reported, **kept["target"], "selected_epoch": kept["epoch"]}, kept


def split_source(
    y: np.ndarray, val_fraction: float, seed: int, speakers: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """A hold-out of the source for validation (label-free model selection and validators).

    Speaker-disjoint where every clip's speaker is known and there are at least two: whole
    speakers go to validation (scikit-learn's StratifiedGroupKFold, one fold of
    ``round(1 / val_fraction)``, at most one per speaker, so at least one speaker and as
    class-balanced as the speakers allow); a validation set with training speakers in it
    measures speaker memory, not transfer. Otherwise stratified by label only
    (:func:`source_val_grouped` tells which).
    """
    from sklearn.model_selection import StratifiedGroupKFold, train_test_split

    idx = np.arange(len(y))
    if val_fraction <= 0:
        return idx, idx[:0]
    if source_val_grouped(speakers):
        n_speakers = len(np.unique(speakers))
        folds = StratifiedGroupKFold(
            n_splits=min(n_speakers, max(2, round(1 / val_fraction))),
            shuffle=True,
            random_state=seed,
        )
        train, val = next(folds.split(idx, y, groups=np.asarray(speakers)))
        return np.sort(train), np.sort(val)
    train, val = train_test_split(idx, test_size=val_fraction, random_state=seed, stratify=y)
    return np.sort(train), np.sort(val)


UNKNOWN_SPEAKERS = ("", "None", "nan", "unknown")


def source_val_grouped(speakers: np.ndarray | None) -> bool:
    """True when :func:`split_source` can hold out whole speakers: every clip's speaker is
    known (not None, "", "None", "nan", "unknown") and there are at least two."""
    if speakers is None or len(speakers) == 0:
        return False
    names = np.asarray(speakers).astype(str)
    return not np.isin(names, UNKNOWN_SPEAKERS).any() and len(np.unique(names)) >= 2


def _batches(
    idx: np.ndarray, batch_size: int, steps: int, gen: torch.Generator, p: np.ndarray | None = None
):
    """``steps`` batches of indices, reshuffling ``idx`` each time it runs out; with ``p``
    (one weight per index), each batch is drawn with replacement in proportion to ``p``."""
    if p is not None:
        weights = torch.as_tensor(p, dtype=torch.float64)
        for _ in range(steps):
            yield idx[
                torch.multinomial(weights, batch_size, replacement=True, generator=gen).numpy()
            ]
        return
    order = np.empty(0, dtype=np.int64)
    for _ in range(steps):
        if len(order) < batch_size:
            perm = idx[torch.randperm(len(idx), generator=gen).numpy()]
            order = np.concatenate([order, perm])
        yield order[:batch_size]
        order = order[batch_size:]
