"""TensorBoard event files for one training run: per-epoch curves plus an HParams entry.

One place for the tag names, used by ``emodna train`` and by every sweep trial, so that
``tensorboard --logdir runs/NAME`` lines up curves of the same quantity across trials.
"""

from __future__ import annotations

from pathlib import Path

from torch.utils.tensorboard import SummaryWriter


def tag(name: str) -> str:
    """Group metrics in TensorBoard: loss/..., target/..., signal/..."""
    if name == "loss" or name.startswith("loss_"):
        return "loss/" + (name[5:] or "total")
    if name.startswith("target_") and name != "target_entropy":
        return "target/" + name[7:]
    return "signal/" + name


def hparam_value(value):
    """HParams accepts numbers, strings and bools; lists become strings."""
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


class RunLog:
    """Write ``on_epoch`` metrics as scalars; ``close(final)`` adds the HParams entry."""

    def __init__(self, log_dir: str | Path, hparams: dict):
        self.writer = SummaryWriter(log_dir=str(log_dir))
        self.hparams = {k: hparam_value(v) for k, v in hparams.items() if v is not None}

    def __call__(self, metrics: dict) -> None:
        step = int(metrics["epoch"])
        for name, value in metrics.items():
            if name != "epoch" and isinstance(value, int | float):
                self.writer.add_scalar(tag(name), value, step)
        self.writer.flush()

    def close(self, final: dict | None = None) -> None:
        if final:
            metrics = {f"final/{k}": v for k, v in final.items() if isinstance(v, int | float)}
            self.writer.add_hparams(self.hparams, metrics, run_name=".")
        self.writer.close()
