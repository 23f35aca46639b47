"""The Ray Tune trainable: one trial trains one (config, scenario, seed).

A plain function, as in Ray's own examples. It is the only place that adapts
``emodna.train.fit`` to Ray: it reads the scenario's two corpora from the object store
(each corpus was ``ray.put`` once by the driver, and ``ray.get`` returns read-only numpy
arrays backed by the node's shared memory, so concurrent trials on a node share one
copy), reports every epoch with ``tune.report`` together with a checkpoint, resumes from that
checkpoint when Tune retries the trial, and leaves the kept model's class probabilities in
the trial folder (``predictions.parquet``, ``emodna.validators.prediction_table``) for the
validators and ensembles ``emodna summarize`` computes.

Two kinds of failure are told apart. A trial whose loss becomes NaN or inf has *diverged*:
that is a property of its config (a retry from the last checkpoint diverges again), so it
is not raised to Tune but reported as a final result with the metric NaN and the loss term
in ``diverged``; the sweep records it and goes on. Anything else raised (a lost node, a full
disk, a bug) is a fault: Tune retries the trial from its checkpoint ``--max-failures`` times,
then records it as an error.
"""

from __future__ import annotations

import importlib
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import ray
import torch
from ray import tune
from ray.tune import PlacementGroupFactory

from emodna.config import METHODS, TRAIN_KEYS, TrainConfig
from emodna.errors import DivergedError
from emodna.labels import TASKS
from emodna.runlog import RunLog
from emodna.train import Domain, fit, resolve_device
from emodna.validators import PREDICTIONS
from sweep.ranking import scenario_name


def corpus_payload(features, mapping=None) -> dict:
    """What the driver puts in the object store for one corpus: x, y per task, speakers,
    clip names and each clip's real frames."""
    return {
        "x": features.x,
        "y": {task: features.labels(task, mapping) for task in TASKS},
        "speaker": features.speakers(),
        "clip": features.clips(),
        "frames": features.frames(),
    }


def put_corpora(features: dict, mapping=None) -> dict[str, ray.ObjectRef]:
    """``ray.put`` each corpus exactly once; trials receive the references."""
    return {name: ray.put(corpus_payload(f, mapping)) for name, f in features.items()}


def corpus_copies(
    refs: dict[str, ray.ObjectRef], expect: dict[str, set] | None = None, timeout: float = 15.0
) -> dict[str, list[str]]:
    """Ids of the nodes holding a copy of each corpus (from :func:`put_corpora`), as the
    driver, which owns the objects, knows them: one entry per copy.

    A node's copy reaches the owner's records a little after the node's ``ray.get``; with
    ``expect`` (corpus -> node ids), wait up to ``timeout`` s until every expected node is there.
    """
    deadline = time.monotonic() + timeout
    while True:
        locs = ray.experimental.get_object_locations(list(refs.values()))
        got = {name: list(locs[ref]["node_ids"]) for name, ref in refs.items()}
        if (
            expect is None
            or all(expect[n] <= set(got[n]) for n in refs)
            or time.monotonic() > deadline
        ):
            return got
        time.sleep(0.2)


def trial_resources(cpus: float, gpus: float):
    """Tune's resources per trial (``tune.with_resources``): ``cpus`` each, and ``gpus`` for a
    deep method; the classical baseline (seconds on one core) never waits for a GPU, so on a
    mixed cluster it runs on the CPU nodes while the deep trials take the GPU nodes."""

    def resources(config: dict) -> PlacementGroupFactory:
        method = METHODS.get(config.get("method", ""))
        gpu = 0.0 if method is not None and method.classical else gpus
        return PlacementGroupFactory([{"CPU": cpus, **({"GPU": gpu} if gpu else {})}])

    return resources


def train_config(config: dict) -> TrainConfig:
    """The TrainConfig part of a Tune config (Tune adds config_id and the like)."""
    return TrainConfig.from_dict(
        {k: v for k, v in config.items() if k in TRAIN_KEYS}, "trial config"
    )


def trial_log_dir() -> Path:
    """Tune's working directory for this trial, which Tune uploads to ``<out>/<trial dir>``.

    The upload needs ``RunConfig(sync_config=SyncConfig(sync_artifacts=True))`` (sweep/run.py)
    and works from any node. Not ``get_trial_dir()``: in Ray 2.60 that is the driver's staging
    folder for a trial's first actor (synced only on the driver's node) but the working
    directory for a reused actor (``reuse_actors=True``).
    """
    return Path(tune.get_context().get_storage().trial_working_directory)


def injected_fault(scenario: str, epoch: int, resumed: bool) -> None:
    """Fault drills: raise where ``$EMODNA_SWEEP_FAULT`` says, to test the retry path.

    The variable holds comma-separated ``SOURCE-TARGET-task@EPOCH`` (the trial of that
    scenario raises after that epoch's steps, before its report, in every attempt) or
    ``SOURCE-TARGET-task@EPOCH:once`` (only in an attempt that did not start from a
    checkpoint, so the retry succeeds). Unset, it does nothing. Used by tests/test_sweep.py;
    it reaches the trials of an embedded local Ray, whose workers inherit the driver's env.
    """
    for spec in filter(None, os.environ.get("EMODNA_SWEEP_FAULT", "").split(",")):
        where, _, mode = spec.strip().partition(":")
        name, _, at = where.partition("@")
        if name == scenario and int(at) == epoch and not (mode == "once" and resumed):
            raise RuntimeError(
                f"injected fault in {scenario} at epoch {epoch} (EMODNA_SWEEP_FAULT)"
            )


def trial_hook(config: dict, corpora: dict):
    """An observer of every trial, named by ``$EMODNA_TRIAL_HOOK`` as ``module:function``.

    The function is imported in the trial's process and called as the trial starts with the
    trainable's own ``config`` and ``corpora`` (the object refs); what it returns, if callable,
    is called with no arguments when the trial ends. Unset (the default), nothing happens.
    ``bench/scale_simulate.py`` uses it to see where trials run on a cluster; the module must
    be importable there (``PYTHONPATH`` is inherited like the variable itself).
    """
    spec = os.environ.get("EMODNA_TRIAL_HOOK")
    if not spec:
        return lambda: None
    module, _, name = spec.partition(":")
    done = getattr(importlib.import_module(module), name)(config, corpora)
    return done if callable(done) else lambda: None


def train_scenario(
    config: dict, corpora: dict[str, ray.ObjectRef], metric: str = "target_uar"
) -> None:
    """Tune trainable. ``corpora`` maps feature set (``TrainConfig.feature_set``) -> corpus
    name -> object ref of :func:`corpus_payload`; ``metric`` is the space's metric, reported
    as NaN when the config diverges."""
    done = trial_hook(config, corpora)
    assigned = ray.get_runtime_context().get_assigned_resources()
    torch.set_num_threads(max(1, int(assigned.get("CPU", 1))))
    cfg = train_config(config)
    gpu_ids = ray.get_gpu_ids()  # the GPUs Ray gave this trial (it sets CUDA_VISIBLE_DEVICES)
    # never a silent CPU run: given a GPU, device auto means it (resolve_device fails naming
    # this node when torch sees none); a config that says cpu trains on the CPU
    device = resolve_device("cuda" if gpu_ids and cfg.device == "auto" else cfg.device)
    by_corpus = corpora[cfg.feature_set]
    src, tgt = ray.get([by_corpus[cfg.source], by_corpus[cfg.target]])
    source, target = (
        Domain(
            d["x"], np.asarray(d["y"][cfg.task]), name, d["speaker"], d.get("clip"), d.get("frames")
        )
        for d, name in ((src, cfg.source), (tgt, cfg.target))
    )
    scenario = scenario_name(cfg.source, cfg.target, cfg.task)
    extra = {
        "config_id": config.get("config_id"),
        "scenario": scenario,
        "device": str(device),
        "gpu_ids": ",".join(map(str, gpu_ids)),
    }

    log = RunLog(
        trial_log_dir() / "tensorboard", {**cfg.to_dict(), "config_id": extra["config_id"]}
    )
    with tempfile.TemporaryDirectory() as workdir:
        checkpoint = tune.get_checkpoint()
        if checkpoint is not None:  # a retried trial: fit resumes from its own checkpoint
            checkpoint.to_directory(workdir)
        last_epoch = 0

        def on_epoch(metrics: dict) -> None:
            nonlocal last_epoch
            injected_fault(scenario, metrics["epoch"], resumed=checkpoint is not None)
            log(metrics)
            last_epoch = metrics["epoch"]
            tune.report({**metrics, **extra}, checkpoint=tune.Checkpoint.from_directory(workdir))

        try:
            final = fit(
                cfg,
                source,
                target,
                on_epoch=on_epoch,
                checkpoint_dir=workdir,
                predictions_path=trial_log_dir() / PREDICTIONS,
            )
        except DivergedError as exc:  # a result of this config, not a fault: no retry
            final = {
                metric: float("nan"),
                "epoch": last_epoch,
                "diverged": str(exc),
                "diverged_term": exc.term,
            }
            tune.report({**final, **extra})
    log.close(final)
    done()
