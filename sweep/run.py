"""Run a sweep: Optuna proposes configs, Ray Tune trains one trial per (config, scenario, seed).

On one machine (an embedded local Ray is started when none is running)::

    python sweep/run.py --corpora-dir DATA/ --space search_spaces/emodna.yaml --budget 50 --out runs/emodna

On a Ray cluster, the same file, unchanged::

    ray submit cluster/cluster.yaml sweep/run.py -- --corpora-dir /data/corpora --space ...

The flow, top to bottom: read the space; find the corpora; build (or find cached) MFCCs
and put each corpus into Ray's object store once; create the searcher over the Optuna
study in ``--storage`` (SQLite in the sweep folder by default); run the Tuner with
callbacks that append every finished trial to ``trials.parquet`` and write each config's
aggregate to TensorBoard. ``--resume`` continues a sweep whose driver died: Tune restores
the trials and the searcher, Optuna's study is in its storage, and nothing done is redone.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
import time
from pathlib import Path

try:
    from emodna.errors import ConfigError, EmodnaError
    from sweep import SETTINGS, TRIALS
    from sweep.inputs import (
        check_writable,
        read_inputs,
        resume_space,
        saved_settings,
        write_settings,
    )
    from sweep.interrupts import Interrupts, units_done
    from sweep.lock import SweepLock
    from sweep.plan import show_plan
except ModuleNotFoundError as e:  # `python sweep/run.py` from a checkout that was never installed
    sys.exit(
        f"{e}: install the project first (pip install torch==2.13.0 -e .), then run "
        "`emodna-sweep ...` or `python sweep/run.py ...`"
    )


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="emodna-sweep" if Path(sys.argv[0]).name == "emodna-sweep" else "python sweep/run.py",
        description="Search Emo-DNA hyperparameters across cross-corpus scenarios with Ray Tune and Optuna.",
        epilog="examples:\n"
        "  python sweep/run.py --corpora-dir ../shared/corpora --space search_spaces/smoke.yaml --budget 2\n"
        "  python sweep/run.py --corpora-dir DATA/ --space search_spaces/emodna.yaml --budget 50 --out runs/emodna\n"
        "  python sweep/run.py --out runs/emodna --resume\n"
        "  python sweep/run.py --corpora-dir DATA/ --space search_spaces/transfer.yaml --budget 24 --dry-run\n"
        "  tensorboard --logdir runs/emodna",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "--corpora-dir", type=Path, help="folder with one subfolder per corpus (EMODB, CASIA, ...)"
    )
    ap.add_argument(
        "--speaker-pattern",
        metavar="REGEX",
        help="folder-per-emotion corpora: a regular expression whose first group, searched in "
        "each clip's path below its corpus folder, is the speaker (as emodna train takes it)",
    )
    ap.add_argument(
        "--space", type=Path, default=Path("search_spaces/emodna.yaml"), help="search-space YAML"
    )
    ap.add_argument(
        "--budget", type=int, default=20, help="number of configs Optuna proposes (default 20)"
    )
    ap.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="train every trial this many epochs instead of the space's (a quick look)",
    )
    ap.add_argument("--out", type=Path, help="sweep folder (default runs/<space name>)")
    ap.add_argument(
        "--storage",
        help="Optuna storage: an RDB URL, or a .log journal file for clusters "
        "(default sqlite:///<out>/study.db)",
    )
    ap.add_argument("--sampler", help="tpe (default), gp, cmaes, random, nsga2 (two objectives)")
    ap.add_argument(
        "--objectives",
        choices=["mean", "per-task"],
        default="mean",
        help="one objective (mean over all scenarios) or one per task (arousal, valence)",
    )
    ap.add_argument(
        "--no-prune", action="store_true", help="never stop a config early across scenarios"
    )
    ap.add_argument(
        "--wave",
        type=int,
        default=None,
        help="with pruning: units a config issues before the pruner has seen them (the rest "
        "follow once they report); set it on a big cluster, about a third of the units per "
        "config (docs/scaling.md), or every unit is running before the first reports "
        "(default: all at once)",
    )
    ap.add_argument(
        "--scheduler", choices=["fifo", "asha"], default="fifo", help="within-trial early stopping"
    )
    ap.add_argument(
        "--cpus-per-trial",
        type=float,
        default=1.0,
        help="CPUs Ray reserves per trial, also its torch threads (default 1: one trial per core)",
    )
    ap.add_argument(
        "--gpus-per-trial",
        type=float,
        default=None,
        help="GPUs per deep trial (default: the space's gpus_per_trial, else 0: CPU trials); "
        "fractions share one GPU, e.g. 0.25 runs four trials on each. A trial that gets a GPU "
        "trains on it (TrainConfig device auto)",
    )
    ap.add_argument(
        "--max-concurrent", type=int, default=None, help="trials at once (default: as CPUs allow)"
    )
    ap.add_argument(
        "--max-failures",
        type=int,
        default=2,
        help="retries of a failing trial (from its checkpoint)",
    )
    ap.add_argument(
        "--address",
        default=None,
        help="Ray cluster to join; 'local' always starts an embedded "
        "Ray (default: join the running cluster if there is one, as under `ray submit`)",
    )
    ap.add_argument(
        "--num-cpus", type=int, default=None, help="CPUs of the embedded local Ray (default: all)"
    )
    ap.add_argument(
        "--num-gpus",
        type=int,
        default=None,
        help="GPUs of the embedded local Ray (default: those Ray detects)",
    )
    ap.add_argument(
        "--object-store-memory",
        type=int,
        default=None,
        metavar="BYTES",
        help="object store size of the embedded local Ray (default: Ray's, 30%% of RAM)",
    )
    ap.add_argument("--cache", type=Path, default=None, help="feature cache folder")
    ap.add_argument("--seed", type=int, default=0, help="seed of the sampler")
    ap.add_argument(
        "--resume",
        action="store_true",
        help="continue the sweep in --out (required) after it was stopped or its driver died",
    )
    ap.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan (units, epochs, estimated wall time) and stop; starts no Ray",
    )
    ap.add_argument(
        "--verbose",
        action="store_true",
        help="also Ray Tune's status tables and the trials' own log lines (checkpoints)",
    )
    ap.add_argument("--version", action="version", version=f"%(prog)s (emodna-sweep) {_version()}")
    return ap.parse_args(argv)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("emodna-sweep")
    except PackageNotFoundError:
        return "unknown (not installed)"


def connect(
    address: str | None,
    num_cpus: int | None,
    object_store_memory: int | None = None,
    verbose: bool = False,
    num_gpus: int | None = None,
) -> None:
    """Join a Ray cluster, else start an embedded one.

    A cluster is joined when ``--address`` names one, or when ``RAY_ADDRESS`` is set or
    ``ray start`` recorded a cluster on this node (as on a head under ``ray submit``).
    Any other Ray processes on the machine (another user's sweep) are left alone.
    """
    import ray

    if ray.is_initialized():
        return
    temp = os.environ.get("RAY_TMPDIR") or os.environ.get("TMPDIR") or "/tmp"  # as Ray looks it up
    recorded = Path(temp) / "ray" / "ray_current_cluster"
    if address != "local" and (address or os.environ.get("RAY_ADDRESS") or recorded.exists()):
        ray.init(address=address, log_to_driver=verbose)
        print(f"joined the Ray cluster: {ray.cluster_resources().get('CPU', 0):.0f} CPUs")
        return
    ray.init(
        num_cpus=num_cpus,
        num_gpus=num_gpus,
        object_store_memory=object_store_memory,
        include_dashboard=False,
        log_to_driver=verbose,
    )  # the trials' log lines (a checkpoint line per epoch) only with --verbose
    have = ray.cluster_resources()
    gpus = f", {have['GPU']:.0f} GPUs" if have.get("GPU") else ""
    print(f"started a local Ray: {have.get('CPU', 0):.0f} CPUs{gpus}")


def check_object_store(nbytes: int) -> None:
    """Fail before any trial if the features cannot fit into the object store."""
    # Each node may hold a copy of every corpus (the driver's node holds all): the
    # smallest store must fit them, not the sum that cluster_resources() reports.
    import ray

    stores = [n["Resources"].get("object_store_memory", 0) for n in ray.nodes() if n["Alive"]]
    capacity = min(stores, default=0)
    needed = int(nbytes * 1.1) + 2**20  # the labels and Ray's own headers ride along
    if capacity < needed:
        raise ConfigError(
            f"the features need {needed / 2**20:.0f} MiB of Ray's object store but it has "
            f"{capacity / 2**20:.0f} MiB: raise --object-store-memory (embedded Ray) or "
            "`ray start --object-store-memory` on the nodes, or sweep fewer corpora"
        )


def main(argv=None) -> int:
    """The `emodna-sweep` command (and `python sweep/run.py`): 2 on bad input, with one line."""
    try:
        return start(parse_args(argv))
    except EmodnaError as exc:
        print(f"sweep: error: {exc}", file=sys.stderr)
        return 2


def start(args) -> int:
    if args.resume:
        if args.out is None:
            raise ConfigError(
                "--resume needs --out: the sweep folder to continue, e.g. --out runs/transfer"
            )
        out = args.out.resolve()
        from ray.tune import Tuner

        if not (out / SETTINGS).exists() or not Tuner.can_restore(str(out)):
            raise ConfigError(f"{out}: holds no sweep to resume; start one without --resume")
        saved = saved_settings(out)
        keep = ("resume", "dry_run", "verbose", "out")
        args = argparse.Namespace(
            **{**vars(args), **{k: v for k, v in saved.items() if k not in keep}}
        )
        args.corpora_dir = Path(args.corpora_dir) if args.corpora_dir else None
        args.space, note = resume_space(out, saved)  # the copy the sweep started with
        if note:
            print(note)
        args.cache = Path(args.cache) if args.cache else None
    out = (args.out or Path("runs") / args.space.stem).resolve()
    if args.epochs is not None and args.epochs < 1:
        raise ConfigError(f"--epochs must be at least 1, got {args.epochs}")
    if args.budget < 1:
        raise ConfigError(f"--budget must be at least 1 config, got {args.budget}")

    # Everything a user can get wrong is checked before a file is written or Ray starts.
    check_writable(out)
    space, corpora, scenarios = read_inputs(args)
    if args.gpus_per_trial is None:  # the command line wins over the space
        args.gpus_per_trial = space.gpus_per_trial
    if args.gpus_per_trial < 0:
        raise ConfigError(f"--gpus-per-trial must be 0 or more, got {args.gpus_per_trial:g}")
    local_slots = max(1, int((args.num_cpus or os.cpu_count() or 1) // args.cpus_per_trial))
    show_plan(space, corpora, scenarios, args, local_slots)
    if args.dry_run:
        return 0
    out.mkdir(parents=True, exist_ok=True)
    lock = SweepLock(out)
    took_over = lock.acquire()
    if took_over:
        print(took_over)
    try:
        return run(args, out, space, corpora, scenarios, lock)
    finally:
        lock.release()


def run(
    args, out: Path, space, corpora: dict, scenarios: list[dict], lock: SweepLock | None = None
) -> int:
    import ray
    from ray import tune
    from ray.tune import CheckpointConfig, FailureConfig, RunConfig, TuneConfig, Tuner
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    from emodna.features import FeatureSettings, corpus_features
    from sweep.callbacks import TrialTable, trial_dirname
    from sweep.search import ScenarioSearcher
    from sweep.trainable import put_corpora, train_scenario, trial_resources

    features = {}  # feature set (a front-end) -> corpus -> Features
    for i, frontend in enumerate(space.feature_sets()):  # bars on a cold cache
        report = print if i == 0 else None  # the file counts are the same for every front-end
        features[frontend] = corpus_features(
            corpora, FeatureSettings(frontend=frontend), args.cache, report=report
        )
    nbytes = sum(f.nbytes for by_corpus in features.values() for f in by_corpus.values())
    connect(args.address, args.num_cpus, args.object_store_memory, args.verbose, args.num_gpus)
    check_object_store(nbytes)
    refs = {frontend: put_corpora(by_corpus) for frontend, by_corpus in features.items()}
    print(
        f"{len(scenarios)} scenarios x {len(space.seeds)} seeds; features ({', '.join(features)}) "
        f"in the object store: {nbytes / 2**20:.0f} MiB"
    )
    # Tune lets a custom searcher have one pending trial at a time unless told otherwise,
    # which leaves nodes idle on a cluster: allow as many pending trials as there are slots.
    slots = max(1, int(ray.cluster_resources().get("CPU", 1) // args.cpus_per_trial))
    if args.gpus_per_trial > 0:  # a GPU trial needs both
        gpu_slots = int(ray.cluster_resources().get("GPU", 0) // args.gpus_per_trial)
        if gpu_slots == 0:
            raise ConfigError(
                f"--gpus-per-trial {args.gpus_per_trial:g}: the Ray cluster has no GPU; add GPU "
                "nodes (cluster/aws.yaml has a GPU worker type) or drop the flag"
            )
        slots = min(slots, gpu_slots)
    os.environ.setdefault("TUNE_MAX_PENDING_TRIALS_PG", str(args.max_concurrent or slots))
    # CheckpointConfig(num_to_keep=1) makes Tune snapshot the experiment after each trial
    # checkpoint, by design (a restore must not point at a deleted checkpoint); its warning
    # about frequent snapshots then fills the log (~4 lines per epoch) and tells nothing.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    trainable = tune.with_resources(
        tune.with_parameters(train_scenario, corpora=refs, metric=space.metric),
        trial_resources(args.cpus_per_trial, args.gpus_per_trial),
    )
    n_units = len(scenarios) * len(space.seeds)
    # Tune's result.json / progress.csv per trial, but not its TensorBoard logger: the
    # trainable writes each trial's TensorBoard files, and two would give two HParams rows
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    callbacks = [
        TrialTable(out / TRIALS, space.metric, n_units),
        JsonLoggerCallback(),
        CSVLoggerCallback(),
    ]
    run_config = dict(
        name=out.name,
        storage_path=str(out.parent),
        failure_config=FailureConfig(max_failures=args.max_failures),
        checkpoint_config=CheckpointConfig(num_to_keep=1),
        # each trial uploads its working directory (its TensorBoard files, see
        # sweep/trainable.py) to <out>/<trial> from whichever node runs it
        sync_config=tune.SyncConfig(sync_artifacts=True),
        callbacks=callbacks,
        verbose=None if args.verbose else 0,  # Tune's status tables only with --verbose
    )
    if args.resume:
        print(f"resuming {out}: {units_done(out)} units done")
        tuner = Tuner.restore(str(out), trainable=trainable, resume_errored=True)
    else:
        write_settings(out, args)  # sweep.json and the copy of the space file
        directions = [space.mode] * (2 if args.objectives == "per-task" else 1)
        searcher = ScenarioSearcher(
            space,
            scenarios,
            study_name=out.name,
            storage=args.storage or f"sqlite:///{out / 'study.db'}",
            sampler=args.sampler,
            budget=args.budget,
            seed=args.seed,
            prune=not args.no_prune,
            directions=directions,
            # Tune resumes in-flight trials from their checkpoints; the searcher waits for them
            reissue_unfinished=False,
            wave=args.wave,
            progress=functools.partial(print, flush=True),  # the [sweep] line after each unit
        )
        scheduler = None
        if args.scheduler == "asha":
            scheduler = tune.schedulers.ASHAScheduler(
                time_attr="epoch", max_t=space.epochs, grace_period=1
            )
        tuner = Tuner(
            trainable,
            tune_config=TuneConfig(
                search_alg=searcher,
                scheduler=scheduler,
                metric=space.metric,
                mode=space.mode,
                num_samples=-1,  # the searcher says when the budget is used up
                max_concurrent_trials=args.max_concurrent,
                trial_dirname_creator=trial_dirname,
                # a finished trial's worker process runs the next trial: no new process, no
                # second import of torch, per trial (trials differ only in their config)
                reuse_actors=True,
            ),
            run_config=RunConfig(**run_config),
        )
    if not args.verbose:
        # Tune's classic reporter at verbose=0 prints nothing (the new one still prints its
        # config box); the analysis' "could not fetch metrics" of unfinished trials is noise
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
        logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    interrupts = Interrupts(out, args.budget * n_units, lock)
    interrupts.install()
    t0 = time.perf_counter()
    results = tuner.fit()
    if interrupts.signal is not None:
        interrupts.exit()  # does not return
    errors = sum(1 for r in results if r.error)
    diverged = sum(1 for r in results if not r.error and r.metrics.get("diverged"))
    print(
        f"sweep done in {time.perf_counter() - t0:.0f} s: {len(results)} trials, "
        f"{errors} failed for good, {diverged} diverged"
    )
    print(f"trials: {out / TRIALS}\nTensorBoard: tensorboard --logdir {out}")
    if len(results) and errors == len(results):
        print(
            f"sweep: error: every trial failed; see the error column of {out / TRIALS}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
