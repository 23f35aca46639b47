"""Tune callbacks of a sweep: files a user can open while it runs.

``TrialTable`` appends every finished or failed trial to ``trials.parquet`` at once and,
when all units of a config are in, writes the config's aggregate to TensorBoard;
``trial_dirname`` names the trial folders.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
from ray import tune

from emodna.atomic import atomic_write


def trial_row(trial, status: str, out: Path | None = None) -> dict:
    """One row of trials.parquet: the config, the scenario, the final metrics, the status,
    and ``trial_dir``: the trial's folder relative to the sweep folder ``out`` (its
    checkpoint, TensorBoard events and ``predictions.parquet``).

    status: completed | diverged (a loss term became NaN/inf; ``error`` names it) | error
    (raised on every attempt; ``error`` is the exception's last line, ``failures`` the count).
    """
    config = dict(trial.config)
    result = trial.last_result or {}
    row = {"trial_id": trial.trial_id, "config_id": config.pop("config_id", None), "status": status}
    row.update({k: config.pop(k, None) for k in ("source", "target", "task", "seed", "method")})
    row.update(
        {
            f"hp_{k}": (json.dumps(v) if isinstance(v, list | dict) else v)
            for k, v in sorted(config.items())
        }
    )
    metrics = {
        k: v for k, v in result.items() if isinstance(v, int | float) and not isinstance(v, bool)
    }
    for key in (
        "config_id",
        "seed",
        "training_iteration",
        "timestamp",
        "pid",
        "time_this_iter_s",
        "time_since_restore",
        "iterations_since_restore",
        "done",
    ):
        metrics.pop(key, None)
    row.update(metrics)
    row["epochs_run"] = result.get("epoch", 0)
    row["device"] = result.get("device")  # where it trained, and the GPUs Ray gave it ("" none)
    row["gpu_ids"] = result.get("gpu_ids")
    row["wall_s"] = result.get("time_total_s")
    row["failures"] = trial.num_failures  # faults retried (and the last one, for an error)
    error = ""
    if status == "error" and trial.error_file and os.path.exists(trial.error_file):
        lines = [ln for ln in Path(trial.error_file).read_text().splitlines() if ln.strip()]
        error = lines[-1] if lines else "unknown error"
    if result.get("diverged"):  # NaN/inf loss (sweep/trainable.py): a result, not a fault
        row["status"], error = "diverged", result["diverged"]
    row["error"] = error
    path = getattr(trial, "path", None)
    row["trial_dir"] = (
        os.path.relpath(path, out) if path and out is not None else trial_dirname(trial)
    )
    return row


class TrialTable(tune.Callback):
    """Append each finished or failed trial to trials.parquet, at once (atomic rewrite)."""

    def __init__(self, path: Path, metric: str, units_per_config: int):
        self.path = Path(path)
        self.metric = metric
        self.units_per_config = units_per_config
        self.writer = None

    def append(self, trial, status: str) -> None:
        rows = pd.read_parquet(self.path).to_dict("records") if self.path.exists() else []
        if any(
            r["trial_id"] == trial.trial_id and r["status"] in ("completed", "diverged")
            for r in rows
        ):
            return  # done before the driver died; Tune's older snapshot made it run again
        rows = [r for r in rows if r["trial_id"] != trial.trial_id] + [
            trial_row(trial, status, self.path.parent)
        ]
        table = pd.DataFrame(rows)
        atomic_write(self.path, lambda tmp: table.to_parquet(tmp, index=False))
        self.write_aggregate(table, trial.config.get("config_id"))

    def write_aggregate(self, table: pd.DataFrame, config_id) -> None:
        """Once every unit of a config is in, one TensorBoard scalar for its aggregate."""
        done = table[(table["config_id"] == config_id) & (table["status"] == "completed")]
        if len(done) != self.units_per_config or self.metric not in done:
            return
        if self.writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.path.parent / "tensorboard-configs"))
        self.writer.add_scalar(
            f"config/{self.metric}_mean", float(done[self.metric].mean()), int(config_id)
        )
        self.writer.flush()

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.append(trial, "completed")

    def on_trial_error(self, iteration, trials, trial, **info):
        self.append(trial, "error")


def trial_dirname(trial) -> str:
    """Short, sortable trial folders: 0003-EMODB-CASIA-arousal-s0-<id>."""
    c = trial.config
    return f"{c['config_id']:04d}-{c['source']}-{c['target']}-{c['task']}-s{c['seed']}-{trial.trial_id}"
