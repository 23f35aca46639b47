"""Scale on paper and in simulation: what a paper-sized sweep costs, and how it spreads.

    python bench/scale.py [--corpora-dir ../shared/corpora] [--cache DIR] [--epochs 2]
                          [--sweep-epochs 30] [--configs 20 50 100] [--nodes 1 4 16]
                          [--cores 2 16] [--efficiency 0.85] [--prune-ratio R]
                          [--iemocap 5531] [--clock cpu|wall] [--skip-measure]
                          [--skip-cluster] [--sim tune|tasks]

Three parts, each printed as a table:

1. **Measured epoch times.** ``emodna.train.fit`` on real features (one thread,
   ``torch.set_num_threads(1)``) for a few scenarios, plus one scenario whose clips are
   stretched (tiled in time) to IEMOCAP's 606 frames, because the model's cost grows with
   the frames and the shipped corpora span only 172-215. The end-of-epoch evaluation is
   timed on its own (``emodna.train.evaluate`` on a fresh model). Two least-squares fits:

   * a training step: ``a + b * 64 * (f_s + f_t)`` seconds (64 source + 64 target clips of
     ``f_s`` and ``f_t`` frames), from ``(epoch - evaluation) / steps``;
   * the evaluation: ``c * (N_t * f_t + n_val * f_s)`` (the whole target plus the 10%
     source hold-out, forward only).

   One epoch is one pass over the larger of (source minus hold-out, target), in batches
   of 64, as in ``fit``; so ``epoch = steps * step + evaluation``. Both the wall time and
   the CPU time the process got (``time.process_time``) are fitted: on a loaded machine
   the wall time holds the waiting for a core; the CPU time is what a dedicated core would
   take, and is what the extrapolation uses unless ``--clock wall``.
2. **A paper-sized sweep on K nodes.** Six corpora -> 30 ordered scenarios x 2 tasks x 3
   seeds = 180 trials per config, ``--sweep-epochs`` each; CPU-hours from the fit, with and
   without the saving of the Wilcoxon pruning across scenarios, and wall-clock hours on
   K nodes of C cores at 1 CPU per trial and ``--efficiency`` (the share of the slots a
   sweep keeps busy). The pruning's saving is measured with ``bench/search.py``'s own
   simulation (TPE + Wilcoxon, a fixed budget of configs run to the end: units issued /
   configs x units per config) unless ``--prune-ratio`` gives it.
3. **A three-node Ray cluster on this machine** (``ray.cluster_utils.Cluster``: a head and
   two worker nodes, 1 CPU and 200 MiB of object store each, each worker node with its own
   temp folder as on separate machines, all in a private ``RAY_TMPDIR`` so no other Ray on
   the machine is seen or touched; ``RAY_FAKE_CLUSTER`` is the autoscaler's fake provider,
   started with ``ray stop --force`` + ``ray start --head``, not usable on a shared machine).
   ``--sim tune`` (default) runs the real sweep driver, ``sweep/run.py``'s ``main``, on it:
   two corpora (EMODB, EMOVO), one config, 2 scenarios x 3 seeds = 6 trials of one epoch;
   ``--sim tasks`` runs plain Ray tasks pinned to nodes that ``ray.get`` the corpora as
   trials do. Printed: the node of every trial, whether its arrays were read-only and (tune)
   whether its TensorBoard files reached ``--out``; per node, how many trials used each
   corpus and how many copies of it the node's object store holds
   (``ray.experimental.get_object_locations``), with the node's object-store usage (from its
   raylet); and (tune) how many trials ran at once. This part runs in a child process: a
   Ray driver whose GCS dies aborts its process instead of raising.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from emodna.config import TrainConfig  # noqa: E402
from emodna.corpora import load_corpora  # noqa: E402
from emodna.evaluation import evaluate  # noqa: E402
from emodna.features import HOP_LENGTH, PAPER_LENGTHS, corpus_features  # noqa: E402
from emodna.labels import CLASSES  # noqa: E402
from emodna.methods import build_objective  # noqa: E402
from emodna.model import EmoDNA  # noqa: E402
from emodna.train import Domain, fit, split_source  # noqa: E402

BATCH = 64
# (source, target) pairs timed on the real features; the stretched pair is added on top
MEASURED = [("EMODB", "CASIA"), ("RAVDESS", "EMOVO"), ("CASIA", "RAVDESS"), ("EMOVO", "EMODB")]
STRETCH = ("EMODB", "EMOVO")  # tiled in time to IEMOCAP's frames, STRETCH_CLIPS clips each
STRETCH_CLIPS = 320
PAPER_CORPORA = ["CASIA", "EMODB", "EMOVO", "IEMOCAP", "RAVDESS", "SAVEE"]
# clips of the paper's corpora that are not shipped here (IEMOCAP: the 4 classes commonly
# used; its 9-emotion vocabulary has ~7500); the shipped ones are counted from the features
OTHER_SIZES = {"IEMOCAP": 5531, "SAVEE": 480}
SIM_CORPORA = ["EMODB", "EMOVO"]
MIB = 2**20
PAPER_UNITS = 30 * 2 * 3  # scenarios x tasks x seeds: trials per config
SEARCH_UNITS = 12  # bench/search.py: 4 corpora -> 12 arousal scenarios, 1 seed


def frames(corpus: str) -> int:
    """Frames of the paper's fixed length: librosa's 1 + samples // hop."""
    return 1 + PAPER_LENGTHS[corpus] // HOP_LENGTH


def split_sizes(n_source: int, val_fraction: float = 0.1) -> tuple[int, int]:
    """(train, hold-out) sizes of fit's stratified split (sklearn rounds the test part up)."""
    n_val = math.ceil(n_source * val_fraction)
    return n_source - n_val, n_val


def steps_per_epoch(n_source: int, n_target: int) -> int:
    return math.ceil(max(split_sizes(n_source)[0], n_target) / BATCH)


# ---------------------------------------------------------------------------------------
# 1. Measure


def stretch(x: np.ndarray, n: int, n_frames: int) -> np.ndarray:
    """The first ``n`` clips, tiled along time to ``n_frames`` frames (same statistics)."""
    reps = math.ceil(n_frames / x.shape[2])
    return np.ascontiguousarray(np.tile(x[:n], (1, 1, reps))[:, :, :n_frames])


def eval_seconds(source: Domain, target: Domain, task: str) -> tuple[float, float]:
    """The end-of-epoch evaluation of ``fit`` on a fresh model (same cost as a trained one):
    (wall, CPU) seconds."""
    cfg = TrainConfig(source=source.name, target=target.name, task=task, epochs=1)
    torch.manual_seed(0)
    _, val_idx = split_source(source.y, cfg.val_fraction, cfg.seed)
    n_classes = len(CLASSES[task])
    model = EmoDNA(n_mfcc=source.x.shape[1], n_classes=n_classes, dropout=cfg.dropout)
    objective = build_objective(cfg, n_classes=n_classes)
    t0, c0 = time.perf_counter(), time.process_time()
    evaluate(model, objective, source, target, val_idx, n_classes)
    return time.perf_counter() - t0, time.process_time() - c0


def measure(corpora_dir: Path, cache: Path | None, epochs: int) -> tuple[list[dict], dict]:
    """Time ``fit`` per epoch on real scenarios; returns the rows and corpus sizes."""
    names = sorted({n for pair in MEASURED + [STRETCH] for n in pair})
    feats = corpus_features(
        load_corpora(corpora_dir, names=names), cache_dir=cache, workers=2, progress=False
    )
    sizes = {n: (len(f.x), f.x.shape[2]) for n, f in feats.items()}
    task = "arousal"
    domains = {n: Domain(f.x, f.labels(task), n) for n, f in feats.items()}
    jobs = [(domains[s], domains[t], f"{s}->{t}") for s, t in MEASURED]
    long = frames("IEMOCAP")
    s, t = (domains[n] for n in STRETCH)
    jobs.append(
        (
            Domain(stretch(s.x, STRETCH_CLIPS, long), s.y[:STRETCH_CLIPS], f"{s.name}*"),
            Domain(stretch(t.x, STRETCH_CLIPS, long), t.y[:STRETCH_CLIPS], f"{t.name}*"),
            f"{s.name}->{t.name} @{long} frames, {STRETCH_CLIPS} clips each",
        )
    )
    rows = []
    for source, target, label in jobs:
        cfg = TrainConfig(source=source.name, target=target.name, task=task, epochs=epochs)
        walls: list[float] = []
        cpu = [time.process_time()]  # the CPU time this process got: the load shows as wall > CPU

        def on_epoch(m, walls=walls, cpu=cpu):
            walls.append(m["epoch_seconds"])
            cpu.append(time.process_time())

        fit(cfg, source, target, on_epoch=on_epoch)
        cpus = list(np.diff(cpu))
        ev_wall, ev_cpu = eval_seconds(source, target, task)
        n_s, n_t = len(source.x), len(target.x)
        f_s, f_t = source.x.shape[2], target.x.shape[2]
        rows.append(
            dict(
                label=label,
                n_s=n_s,
                n_t=n_t,
                f_s=f_s,
                f_t=f_t,
                steps=steps_per_epoch(n_s, n_t),
                n_val=split_sizes(n_s)[1],
                wall=(min(walls), ev_wall),
                cpu=(min(cpus), ev_cpu),
            )
        )
        print(
            f"  {label:<44} epochs: wall {', '.join(f'{x:.1f}' for x in walls)} s, "
            f"CPU {', '.join(f'{x:.1f}' for x in cpus)} s",
            flush=True,
        )
    return rows, sizes


class CostModel:
    """step = a + b * 64 * (f_s + f_t); evaluation = c * (N_t f_t + n_val f_s); seconds.

    ``clock`` picks the rows' "wall" or "cpu" (epoch, evaluation) seconds."""

    def __init__(self, rows: list[dict], clock: str = "cpu"):
        self.clock = clock
        step = np.array([(r[clock][0] - r[clock][1]) / r["steps"] for r in rows])
        work = np.array([BATCH * (r["f_s"] + r["f_t"]) for r in rows], dtype=float)
        (self.a, self.b), *_ = np.linalg.lstsq(
            np.stack([np.ones_like(work), work], 1), step, rcond=None
        )
        if self.a < 0 or self.b <= 0:  # too noisy to split: all of it proportional to frames
            self.a, self.b = 0.0, float((step @ work) / (work @ work))
        ev_work = np.array([r["n_t"] * r["f_t"] + r["n_val"] * r["f_s"] for r in rows], dtype=float)
        ev = np.array([r[clock][1] for r in rows])
        self.c = float((ev @ ev_work) / (ev_work @ ev_work))

    def epoch(self, n_s: int, f_s: int, n_t: int, f_t: int) -> float:
        n_val = split_sizes(n_s)[1]
        step = self.a + self.b * BATCH * (f_s + f_t)
        return steps_per_epoch(n_s, n_t) * step + self.c * (n_t * f_t + n_val * f_s)


def print_measured(rows: list[dict], models: dict[str, CostModel]) -> None:
    print(
        f"\n{'scenario (arousal, 1 thread)':<44} {'clips':>10} {'frames':>8} {'steps':>5} | "
        f"{'wall: epoch':>11} {'eval':>5} {'s/step':>6} {'model':>6} | "
        f"{'CPU: epoch':>10} {'eval':>5} {'s/step':>6} {'model':>6}"
    )
    for r in rows:
        cells = []
        for clock, m in models.items():
            epoch, ev = r[clock]
            pred = m.epoch(r["n_s"], r["f_s"], r["n_t"], r["f_t"])
            cells.append(
                f"{epoch:>{11 if clock == 'wall' else 10}.2f} {ev:>5.2f} "
                f"{(epoch - ev) / r['steps']:>6.3f} {pred:>6.2f}"
            )
        print(
            f"{r['label']:<44} {r['n_s']:>4}+{r['n_t']:<5} {r['f_s']:>3}+{r['f_t']:<4} {r['steps']:>5} | "
            + " | ".join(cells)
        )
    print(
        "(epoch: the fastest of the epochs run, its evaluation included; eval: the evaluation "
        "alone; model: the fit below)"
    )
    for clock, m in models.items():
        print(
            f"fit ({clock:>4}): step = {1e3 * m.a:3.0f} ms + {1e6 * m.b:.2f} us x 64 x (f_s + f_t); "
            f"evaluation = {1e6 * m.c:.2f} us x (N_t f_t + n_val f_s)"
        )


# ---------------------------------------------------------------------------------------
# 2. Extrapolate


def pruning_ratio(reps: int, budget: int, workers: list[int], seed: int = 0) -> dict[int, float]:
    """Units a fixed budget issues with TPE + Wilcoxon pruning, over budget x units per config.

    Uses bench/search.py's simulation (its synthetic objective and event loop) unchanged.
    """
    import optuna

    spec = importlib.util.spec_from_file_location("bench_search", ROOT / "bench" / "search.py")
    search = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(search)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    space = search.load_space(ROOT / "search_spaces" / "emodna.yaml")
    space.seeds = [0]
    scenarios = [s for s in space.scenarios(search.CORPORA) if s["task"] == "arousal"]
    assert len(scenarios) == SEARCH_UNITS
    out = {}
    for w in workers:
        ratios = []
        for rep in range(reps):
            s = seed + 1000 * rep
            searcher = search.ScenarioSearcher(
                space,
                scenarios,
                study_name=f"scale-{w}-{rep}",
                storage=None,
                sampler="tpe",
                budget=budget,
                seed=s + 1,
                prune=True,
            )
            _, _, issued = search.run(searcher, search.Objective(scenarios, s), w, None, s)
            ratios.append(issued / (budget * len(scenarios)))
        out[w] = statistics.mean(ratios)
    return out


def sweep_cost(model: CostModel, sizes: dict, epochs: int) -> tuple[float, float, list]:
    """CPU-seconds of one config (30 scenarios x 2 tasks x 3 seeds) and its longest trial."""
    per_scenario = []
    for s in PAPER_CORPORA:
        for t in PAPER_CORPORA:
            if s != t:
                e = model.epoch(sizes[s][0], sizes[s][1], sizes[t][0], sizes[t][1])
                per_scenario.append((s, t, e))
    units = 2 * 3  # tasks x seeds
    total = sum(e for *_, e in per_scenario) * epochs * units
    longest = max(e for *_, e in per_scenario) * epochs
    return total, longest, per_scenario


def search_workers(slots: int) -> int:
    """bench/search.py's parallel slots that match ``slots`` on the paper sweep: the same
    slots per unit of a config (its 12 units per config against the sweep's 180)."""
    return max(1, round(SEARCH_UNITS * slots / PAPER_UNITS))


def print_extrapolation(
    model: CostModel, sizes: dict, args, ratios: dict[int, float], note: str
) -> None:
    sizes = dict(sizes)
    sizes.update(
        {n: (args.iemocap if n == "IEMOCAP" else OTHER_SIZES[n], frames(n)) for n in OTHER_SIZES}
    )
    print("corpora: " + ", ".join(f"{n} {sizes[n][0]} x {sizes[n][1]} fr" for n in PAPER_CORPORA))
    mib = {n: sizes[n][0] * 40 * sizes[n][1] * 4 / MIB for n in PAPER_CORPORA}  # float32 MFCCs
    print(
        f"features (40 MFCCs, float32): {sum(mib.values()):.0f} MiB, IEMOCAP {mib['IEMOCAP']:.0f} "
        "of them; the head's object store holds all of them (the driver's ray.put), every "
        "other node one copy of each corpus its trials read"
    )
    config_s, longest_s, per_scenario = sweep_cost(model, sizes, args.sweep_epochs)
    per_scenario.sort(key=lambda r: -r[2])
    print(
        "epoch s per scenario, predicted: "
        + ", ".join(f"{s}->{t} {e:.0f}" for s, t, e in per_scenario[:3])
        + ", ..., "
        + ", ".join(f"{s}->{t} {e:.1f}" for s, t, e in per_scenario[-2:])
    )
    iemocap = sum(e for s, t, e in per_scenario if "IEMOCAP" in (s, t))
    print(
        f"one config = 30 scenarios x 2 tasks x 3 seeds = {PAPER_UNITS} trials x {args.sweep_epochs} "
        f"epochs = {config_s / 3600:.1f} CPU-h ({100 * iemocap / sum(e for *_, e in per_scenario):.0f}% "
        f"of it in the 10 IEMOCAP scenarios); longest trial {longest_s / 3600:.2f} h"
    )

    slots = [(k, c) for c in args.cores for k in args.nodes]
    ratio = {k * c: ratios[search_workers(k * c)] for k, c in slots}
    print(
        f"\npruning: units issued with Wilcoxon pruning / without, for a fixed budget of configs ({note})"
    )
    print(f"{'sweep slots K x C':>17} " + " ".join(f"{k * c:>6}" for k, c in slots))
    print(f"{'search.py workers':>17} " + " ".join(f"{search_workers(k * c):>6}" for k, c in slots))
    print(f"{'ratio':>17} " + " ".join(f"{ratio[k * c]:>6.2f}" for k, c in slots))

    print(
        f"\nwall-clock hours = max(CPU-h / (K x C x {args.efficiency}), longest trial); 1 CPU per trial"
    )
    head = f"{'configs':>7} {'pruning':>7} {'CPU-h':>11} | " + " ".join(
        f"{f'{k}x{c}':>7}" for k, c in slots
    )
    print(head)
    print("-" * len(head))
    for n in args.configs:
        for prune in (False, True):
            cpu = {k * c: n * config_s / 3600 * (ratio[k * c] if prune else 1.0) for k, c in slots}
            lo, hi = min(cpu.values()), max(cpu.values())
            cpu_s = f"{lo:.0f}" if round(lo) == round(hi) else f"{lo:.0f}-{hi:.0f}"
            walls = [
                max(cpu[k * c] / (k * c * args.efficiency), longest_s / 3600) for k, c in slots
            ]
            print(
                f"{n:>7} {'yes' if prune else 'no':>7} {cpu_s:>11} | "
                + " ".join(f"{w:>7.1f}" for w in walls)
            )
    print(
        "(K x C: K nodes of C cores; with pruning, CPU-h depends on the slots: the range over the columns)"
    )


# ---------------------------------------------------------------------------------------
# 3. Simulate a cluster


@contextlib.contextmanager
def private_cluster(tmp: Path, n_workers: int = 2, store: int = 200 * MIB):
    """A head and ``n_workers`` worker nodes on this machine, 1 CPU each, with ``tmp`` as
    RAY_TMPDIR: ``ray_current_cluster`` (what ``ray.init("auto")`` reads; ``Cluster``
    writes it on start and deletes it on shutdown) and the session live there, so other
    Ray users on the machine neither see nor lose anything."""
    import ray
    from ray.cluster_utils import Cluster

    old = os.environ.get("RAY_TMPDIR")
    os.environ["RAY_TMPDIR"] = str(tmp)
    cluster = None
    try:
        cluster = Cluster(
            initialize_head=True,
            head_node_args=dict(num_cpus=1, object_store_memory=store, include_dashboard=False),
        )
        # each worker node its own temp folder, as on separate machines: the session folder
        # (logs, spilled objects, Tune's per-trial staging folders) is per node there
        workers = [
            cluster.add_node(num_cpus=1, object_store_memory=store, temp_dir=str(tmp / f"w{i}"))
            for i in range(n_workers)
        ]
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False)
        yield cluster, workers
    finally:
        ray.shutdown()
        if cluster is not None:
            cluster.shutdown()
        if old is None:
            os.environ.pop("RAY_TMPDIR", None)
        else:
            os.environ["RAY_TMPDIR"] = old


def store_usage() -> dict[str, tuple[float, int, float]]:
    """Per node: (MiB used, objects, MiB of primary copies), from each raylet."""
    import ray
    from ray._private.internal_api import node_stats

    out = {}
    for n in ray.nodes():
        if n["Alive"]:
            st = node_stats(
                n["NodeManagerAddress"], n["NodeManagerPort"], include_memory_info=False
            ).store_stats
            out[n["NodeID"]] = (
                st.object_store_bytes_used / MIB,
                st.num_local_objects,
                st.object_store_bytes_primary_copy / MIB,
            )
    return out


def simulate_tune(
    cluster, workers, corpora_dir: Path, cache: Path | None, out: Path
) -> tuple[dict, list]:
    """The real sweep driver (sweep/run.py main) on the cluster; two hooks observe it."""
    import ray
    from ray import tune

    import sweep.run as run
    import sweep.trainable as trainable  # run() imports these two from here when it starts

    @ray.remote(num_cpus=0)
    class TrialLog:
        def __init__(self):
            self.rows = []

        def add(self, row):
            self.rows.append(row)

        def done(self, trial_id, end):
            for row in self.rows:
                if row["trial_id"] == trial_id:
                    row["end"] = end

        def get(self):
            return self.rows

    log = TrialLog.remote()
    refs: dict = {}
    real_put, real_train = trainable.put_corpora, trainable.train_scenario

    def put_corpora(features, *a, **k):  # the driver's one ray.put per corpus
        refs.update(real_put(features, *a, **k))
        return refs

    def train_scenario(config, corpora):  # the trial: record where it ran, then train
        src = ray.get(corpora["mfcc"][config["source"]])
        ray.get(
            log.add.remote(
                dict(
                    trial=f"{config['source']}->{config['target']} {config['task']} seed {config['seed']}",
                    trial_id=tune.get_context().get_trial_id(),
                    start=time.time(),
                    node=ray.get_runtime_context().get_node_id(),
                    pid=os.getpid(),
                    corpora=(config["source"], config["target"]),
                    read_only=not src["x"].flags.writeable,
                )
            )
        )
        del src
        real_train(config, corpora)
        ray.get(log.done.remote(tune.get_context().get_trial_id(), time.time()))

    space = out / "space.yaml"
    space.write_text(
        "method: emodna\nmetric: target_uar\nmode: max\nepochs: 1\nseeds: [0, 1, 2]\n"
        f"scenarios: {{corpora: [{', '.join(SIM_CORPORA)}], tasks: [arousal]}}\n"
        "params:\n  tau_p: {type: float, low: 0.001, high: 1.0, log: true}\n"
    )
    argv = [
        "--corpora-dir",
        str(corpora_dir),
        "--space",
        str(space),
        "--budget",
        "1",
        "--out",
        str(out / "sweep"),
        "--no-prune",
        "--max-failures",
        "0",
    ]
    if cache is not None:
        argv += ["--cache", str(cache)]
    trainable.put_corpora, trainable.train_scenario = put_corpora, train_scenario
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            run.main(argv)
    except BaseException:
        print(buf.getvalue()[-3000:])
        raise
    finally:
        trainable.put_corpora, trainable.train_scenario = real_put, real_train
    (out / "sweep.log").write_text(buf.getvalue())
    print(f"  python sweep/run.py {' '.join(argv)}  (log: {out / 'sweep.log'})")
    rows = ray.get(log.get.remote())
    for r in rows:  # did the trial's TensorBoard files reach the sweep folder (--out)?
        r["tensorboard"] = any((out / "sweep").glob(f"*-{r['trial_id']}/tensorboard/events.*"))
    return refs, rows


def simulate_tasks(cluster, workers, corpora_dir: Path, cache: Path | None) -> tuple[dict, list]:
    """Ray tasks pinned to nodes, each ``ray.get``-ting a corpus the way a trial does."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from sweep.trainable import put_corpora

    feats = corpus_features(
        load_corpora(corpora_dir, names=SIM_CORPORA), cache_dir=cache, progress=False
    )
    refs = put_corpora(feats)

    @ray.remote(num_cpus=1)
    def trial(corpora, name):
        x = ray.get(corpora[name])["x"]
        return dict(
            node=ray.get_runtime_context().get_node_id(),
            pid=os.getpid(),
            read_only=not x.flags.writeable,
        )

    head = cluster.head_node.node_id
    w1, w2 = (w.node_id for w in workers)
    plan = [
        ("EMODB", w1),
        ("EMODB", w1),
        ("EMODB", w2),
        ("EMOVO", w1),
        ("EMOVO", head),
        ("EMOVO", w1),
    ]
    futures = [
        trial.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)).remote(
            refs, name
        )
        for name, node in plan
    ]
    rows = [
        dict(trial=f"task {i} ray.get({name})", corpora=(name,), **r)
        for i, ((name, _), r) in enumerate(zip(plan, ray.get(futures), strict=True))
    ]
    return refs, rows


def simulate(args) -> None:
    import ray

    from sweep.trainable import corpus_copies

    t0 = time.perf_counter()
    out = args.ray_tmpdir / "out"
    out.mkdir()
    with private_cluster(args.ray_tmpdir) as (cluster, workers):
        names = {cluster.head_node.node_id: "head"}
        names.update({w.node_id: f"worker-{i + 1}" for i, w in enumerate(workers)})
        print(
            f"  cluster up in {time.perf_counter() - t0:.0f} s: "
            + ", ".join(f"{v} {k[:8]}" for k, v in names.items())
            + f"; driver on {names[ray.get_runtime_context().get_node_id()]}"
        )
        if args.sim == "tune":
            refs, rows = simulate_tune(cluster, workers, args.corpora_dir, args.cache, out)
        else:
            refs, rows = simulate_tasks(cluster, workers, args.corpora_dir, args.cache)
        used = {name: {r["node"] for r in rows if name in r["corpora"]} for name in refs}
        locs = {name: set(nodes) for name, nodes in corpus_copies(refs, used).items()}
        usage = store_usage()
        sizes = {
            name: ray.experimental.get_object_locations([ref])[ref]["object_size"] / MIB
            for name, ref in refs.items()
        }

    tb = "tensorboard" in rows[0]
    print(
        f"\n{'trial':<34} {'node':<9} {'pid':>7} {'arrays read-only':>16}"
        + (f" {'TensorBoard files in --out':>26}" if tb else "")
    )
    for r in sorted(rows, key=lambda r: (names[r["node"]], r["trial"])):
        print(
            f"{r['trial']:<34} {names[r['node']]:<9} {r['pid']:>7} {str(r['read_only']):>16}"
            + (f" {'yes' if r['tensorboard'] else 'MISSING':>26}" if tb else "")
        )
    cols = list(refs)
    print("\nper node: trials that used each corpus -> copies of its object in the node's store")
    head = (
        f"{'node':<9} {'trials':>6} "
        + " ".join(f"{c + ' (' + format(sizes[c], '.0f') + ' MiB)':>18}" for c in cols)
        + f" {'store MiB':>9} {'objects':>7} {'primary MiB':>11}"
    )
    print(head)
    print("-" * len(head))
    for node, name in names.items():
        n_trials = sum(r["node"] == node for r in rows)
        cells = []
        for c in cols:
            uses = sum(r["node"] == node and c in r["corpora"] for r in rows)
            copies = int(node in locs[c])
            cells.append(
                f"{uses:>2} trial{'s' if uses != 1 else ' '} -> {copies} cop{'y' if copies == 1 else 'ies'}"
            )
        mib, objects, primary = usage.get(node, (float("nan"), 0, float("nan")))
        print(
            f"{name:<9} {n_trials:>6} "
            + " ".join(f"{x:>18}" for x in cells)
            + f" {mib:>9.1f} {objects:>7} {primary:>11.1f}"
        )
    if all("end" in r for r in rows):
        events = sorted([(r["start"], 1) for r in rows] + [(r["end"], -1) for r in rows])
        running = np.cumsum([e for _, e in events])
        starts = np.diff(sorted(r["start"] for r in rows))
        busy = sum(r["end"] - r["start"] for r in rows) / (
            max(r["end"] for r in rows) - min(r["start"] for r in rows)
        )
        pending = os.environ.get("TUNE_MAX_PENDING_TRIALS_PG", "auto (1 for a custom searcher)")
        print(
            f"trials at once: at most {running.max()}, {busy:.1f} on average, of {len(names)} "
            f"one-CPU nodes; {np.median(starts):.1f} s between trial starts (median); "
            f"TUNE_MAX_PENDING_TRIALS_PG={pending}"
        )
    for c in cols:
        extra = locs[c] - used[c]
        note = (
            f"; also on {', '.join(names[n] for n in extra)} (the driver's ray.put: the primary copy)"
            if extra
            else ""
        )
        print(
            f"{c}: {len(locs[c])} copies on {len(locs[c])} nodes; used on {len(used[c])} nodes{note}"
        )
    print(f"({time.perf_counter() - t0:.0f} s)")


def simulate_in_child(args) -> bool:
    """Part 3 in a child process, tried twice. A Ray driver whose GCS dies does not raise:
    it aborts its process after 60 s (as when someone runs a machine-wide ``ray stop`` on a
    shared machine); parts 1-2 survive that here. The child's Ray processes die with it
    (Ray sets PR_SET_PDEATHSIG); its private RAY_TMPDIR is removed here."""
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--cluster-only",
        "--sim",
        args.sim,
        "--corpora-dir",
        str(args.corpora_dir),
    ]
    if args.cache is not None:
        cmd += ["--cache", str(args.cache)]
    for attempt in (1, 2):
        tmp = tempfile.mkdtemp(prefix="emo-scale-", dir="/tmp")  # short: socket paths < 108 chars
        sys.stdout.flush()
        try:
            rc = subprocess.run([*cmd, "--ray-tmpdir", tmp]).returncode
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if rc == 0:
            return True
        print(
            f"  the cluster simulation failed (exit {rc})" + ("; once more" if attempt == 1 else "")
        )
    return False


# ---------------------------------------------------------------------------------------


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--corpora-dir", type=Path, default=ROOT.parent / "shared" / "corpora")
    ap.add_argument("--cache", type=Path, default=None, help="feature cache (default: emodna's)")
    ap.add_argument(
        "--epochs", type=int, default=2, help="epochs timed per scenario (the fastest counts)"
    )
    ap.add_argument(
        "--sweep-epochs", type=int, default=30, help="epochs per trial of the paper-sized sweep"
    )
    ap.add_argument("--configs", type=int, nargs="+", default=[20, 50, 100], help="configs N")
    ap.add_argument("--nodes", type=int, nargs="+", default=[1, 4, 16], help="nodes K")
    ap.add_argument("--cores", type=int, nargs="+", default=[2, 16], help="cores per node C")
    ap.add_argument("--efficiency", type=float, default=0.85, help="share of the slots kept busy")
    ap.add_argument(
        "--prune-ratio",
        type=float,
        default=None,
        help="units issued with Wilcoxon pruning / without (default: measured with "
        "bench/search.py's simulation; 0.6 if that fails)",
    )
    ap.add_argument("--prune-reps", type=int, default=3, help="repetitions of that measurement")
    ap.add_argument(
        "--iemocap",
        type=int,
        default=OTHER_SIZES["IEMOCAP"],
        help="IEMOCAP clips (5531: 4 classes; ~7500: 9 emotions)",
    )
    ap.add_argument(
        "--skip-measure", action="store_true", help="parts 1-2 from --model a b c instead"
    )
    ap.add_argument(
        "--model",
        type=float,
        nargs=3,
        metavar=("A", "B", "C"),
        help="step = A + B x 64 x (f_s + f_t), evaluation = C x (N_t f_t + n_val f_s), seconds",
    )
    ap.add_argument(
        "--clock",
        choices=["cpu", "wall"],
        default="cpu",
        help="extrapolate from CPU seconds (what a dedicated core takes; default) or "
        "wall seconds (what this machine took under its load)",
    )
    ap.add_argument("--skip-cluster", action="store_true", help="no Ray cluster simulation")
    ap.add_argument(
        "--sim",
        choices=["tune", "tasks"],
        default="tune",
        help="the real sweep driver on the cluster, or plain Ray tasks",
    )
    ap.add_argument("--cluster-only", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--ray-tmpdir", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.cluster_only:  # the child of simulate_in_child
        simulate(args)
        return 0
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    print(
        f"torch {torch.__version__}, 1 thread; {os.cpu_count()} cores, load average "
        + " ".join(f"{x:.1f}" for x in os.getloadavg())
    )

    print(f"\n== 1. Epoch times of emodna.train.fit ({args.epochs} epochs per scenario)")
    if args.skip_measure:
        if not args.model:
            ap.error("--skip-measure needs --model A B C")
        model = CostModel.__new__(CostModel)
        model.a, model.b, model.c = args.model
        sizes = {
            n: (n_, frames(n))
            for n, n_ in {"CASIA": 1200, "EMODB": 535, "EMOVO": 588, "RAVDESS": 1440}.items()
        }
        print(f"  (skipped; --model {args.model})")
    else:
        rows, sizes = measure(args.corpora_dir, args.cache, args.epochs)
        models = {clock: CostModel(rows, clock) for clock in ("wall", "cpu")}
        print_measured(rows, models)
        model = models[args.clock]
        print(f"extrapolating with the {args.clock} fit (--clock)")

    print(
        f"\n== 2. A paper-sized sweep: 6 corpora, 30 scenarios x 2 tasks x 3 seeds, {args.sweep_epochs} epochs"
    )
    workers = sorted({search_workers(k * c) for k in args.nodes for c in args.cores})
    if args.prune_ratio is not None:
        ratios, note = dict.fromkeys(workers, args.prune_ratio), "--prune-ratio"
    else:
        try:
            ratios = pruning_ratio(args.prune_reps, 40, workers)
            note = (
                f"measured with bench/search.py's simulation: TPE + Wilcoxon, 40 configs x "
                f"{SEARCH_UNITS} units run to the end, mean of {args.prune_reps}"
            )
        except Exception as exc:  # the searcher is being edited by others: fall back
            ratios = dict.fromkeys(workers, 0.6)
            note = f"0.6, the default: measuring failed ({type(exc).__name__}: {exc})"
    print_extrapolation(model, sizes, args, ratios, note)

    if not args.skip_cluster:
        print(
            f"\n== 3. Three Ray nodes on this machine (ray.cluster_utils.Cluster), --sim {args.sim}"
        )
        simulate_in_child(args)
    print(
        f"\n(total {time.perf_counter() - t0:.0f} s; load average "
        + " ".join(f"{x:.1f}" for x in os.getloadavg())
        + ")"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
