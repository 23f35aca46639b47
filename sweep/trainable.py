"""The Ray Tune trainable: one trial trains one (config, scenario, seed).

A plain function, as in Ray's own examples. It is the only place that adapts
``emodna.train.fit`` to Ray: it reads the scenario's two corpora from the object store
(each corpus was ``ray.put`` once by the driver, and ``ray.get`` returns read-only numpy
arrays backed by the node's shared memory, so concurrent trials on a node share one
copy), reports every epoch with ``tune.report`` together with a checkpoint, and resumes
from that checkpoint when Tune retries the trial.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import numpy as np
import ray
import torch
from ray import tune

from emodna.labels import TASKS
from emodna.runlog import RunLog
from emodna.train import Domain, TrainConfig, fit

TRAIN_KEYS = {f.name for f in dataclasses.fields(TrainConfig)}


def corpus_payload(features, mapping=None) -> dict:
    """What the driver puts in the object store for one corpus: x and y per task."""
    return {"x": features.x, "y": {task: features.labels(task, mapping) for task in TASKS}}


def put_corpora(features: dict, mapping=None) -> dict[str, ray.ObjectRef]:
    """``ray.put`` each corpus exactly once; trials receive the references."""
    return {name: ray.put(corpus_payload(f, mapping)) for name, f in features.items()}


def train_config(config: dict) -> TrainConfig:
    """The TrainConfig part of a Tune config (Tune adds config_id and the like)."""
    return TrainConfig.from_dict({k: v for k, v in config.items() if k in TRAIN_KEYS}, "trial config")


def trial_log_dir() -> Path:
    """Tune's working directory for this trial, which Tune uploads to ``<out>/<trial dir>``.

    The upload needs ``RunConfig(sync_config=SyncConfig(sync_artifacts=True))`` (sweep/run.py)
    and works from any node. Not ``get_trial_dir()``: in Ray 2.60 that is the driver's staging
    folder for a trial's first actor (synced only on the driver's node) but the working
    directory for a reused actor (``reuse_actors=True``).
    """
    return Path(tune.get_context().get_storage().trial_working_directory)


def train_scenario(config: dict, corpora: dict[str, ray.ObjectRef]) -> None:
    """Tune trainable. ``corpora`` maps corpus name -> object ref of :func:`corpus_payload`."""
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
    torch.set_num_threads(max(1, int(cpus)))
    cfg = train_config(config)
    src, tgt = ray.get([corpora[cfg.source], corpora[cfg.target]])
    source = Domain(src["x"], np.asarray(src["y"][cfg.task]), cfg.source)
    target = Domain(tgt["x"], np.asarray(tgt["y"][cfg.task]), cfg.target)
    extra = {"config_id": config.get("config_id"), "scenario": f"{cfg.source}-{cfg.target}-{cfg.task}"}

    log = RunLog(trial_log_dir() / "tensorboard", {**cfg.to_dict(), "config_id": extra["config_id"]})
    with tempfile.TemporaryDirectory() as workdir:
        checkpoint = tune.get_checkpoint()
        if checkpoint is not None:  # a retried trial: fit resumes from its own checkpoint
            checkpoint.to_directory(workdir)

        def on_epoch(metrics: dict) -> None:
            log(metrics)
            tune.report({**metrics, **extra}, checkpoint=tune.Checkpoint.from_directory(workdir))

        final = fit(cfg, source, target, on_epoch=on_epoch, checkpoint_dir=workdir)
    log.close(final)
