"""Part 3 of bench/scale.py: a three-node Ray cluster on this machine, and what trials do on it.

``ray.cluster_utils.Cluster``: a head and two worker nodes, 1 CPU and 200 MiB of object
store each, each worker node with its own temp folder as on separate machines, all in a
private ``RAY_TMPDIR`` so no other Ray on the machine is seen or touched
(``RAY_FAKE_CLUSTER`` is the autoscaler's fake provider, started with ``ray stop --force``
+ ``ray start --head``, not usable on a shared machine).

``--sim tune`` (default) runs the real sweep driver, ``sweep/run.py``'s ``main``, on it
unchanged: two corpora (EMODB, EMOVO), one config, 2 scenarios x 3 seeds = 6 trials of one
epoch. It watches the trials through the trainable's documented hook,
``$EMODNA_TRIAL_HOOK`` (``sweep.trainable.trial_hook``) naming :func:`record_trial`, which
logs each trial's node, process, whether its arrays are read-only and the corpus refs it got
to a named actor. ``--sim tasks`` runs plain Ray tasks pinned to nodes that ``ray.get`` the
corpora as trials do. Printed: the node of every trial, whether its arrays were read-only
and (tune) whether its TensorBoard files reached ``--out``; per node, how many trials used
each corpus and how many copies of it the node's object store holds
(``ray.experimental.get_object_locations``), with the node's object-store usage (from its
raylet); and (tune) how many trials ran at once. This part runs in a child process: a Ray
driver whose GCS dies aborts its process instead of raising.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

SIM_CORPORA = ["EMODB", "EMOVO"]
MIB = 2**20
LOG_ACTOR, NAMESPACE = "trial-log", "emodna-scale"  # the named actor record_trial writes to
HOOK = "scale_simulate:record_trial"  # $EMODNA_TRIAL_HOOK in the cluster's trials


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


class TrialLog:
    """The trials' rows, kept by a named actor (``LOG_ACTOR``) the driver reads at the end."""

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


def record_trial(config: dict, corpora: dict):
    """The trial hook (``$EMODNA_TRIAL_HOOK``): log where this trial runs, whether its arrays
    are read-only, and the corpus refs it got (the driver's ``put_corpora``); returns what
    logs the trial's end."""
    import ray
    from ray import tune

    from sweep.trainable import train_config

    log = ray.get_actor(LOG_ACTOR, namespace=NAMESPACE)
    refs = corpora[train_config(config).feature_set]
    src = ray.get(refs[config["source"]])
    trial_id = tune.get_context().get_trial_id()
    row = dict(
        trial=f"{config['source']}->{config['target']} {config['task']} seed {config['seed']}",
        trial_id=trial_id,
        start=time.time(),
        node=ray.get_runtime_context().get_node_id(),
        pid=os.getpid(),
        corpora=(config["source"], config["target"]),
        read_only=not src["x"].flags.writeable,
        refs=refs,
    )
    del src
    ray.get(log.add.remote(row))
    return lambda: ray.get(log.done.remote(trial_id, time.time()))


def sim_space(path: Path) -> Path:
    path.write_text(
        "method: emodna\nmetric: target_uar\nmode: max\nepochs: 1\nseeds: [0, 1, 2]\n"
        f"scenarios: {{corpora: [{', '.join(SIM_CORPORA)}], tasks: [arousal]}}\n"
        "params:\n  tau_p: {type: float, low: 0.001, high: 1.0, log: true}\n"
    )
    return path


def simulate_tune(
    cluster, workers, corpora_dir: Path, cache: Path | None, out: Path
) -> tuple[dict, list]:
    """The real sweep driver (sweep/run.py main) on the cluster, watched by :func:`record_trial`
    (the cluster's nodes were started with ``$EMODNA_TRIAL_HOOK`` set: :func:`simulate`)."""
    import ray

    import sweep.run as run

    log = ray.remote(num_cpus=0)(TrialLog).options(name=LOG_ACTOR, namespace=NAMESPACE).remote()
    argv = [
        "--corpora-dir",
        str(corpora_dir),
        "--space",
        str(sim_space(out / "space.yaml")),
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
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            run.main(argv)
    except BaseException:
        print(buf.getvalue()[-3000:])
        raise
    (out / "sweep.log").write_text(buf.getvalue())
    print(f"  python sweep/run.py {' '.join(argv)}  (log: {out / 'sweep.log'})")
    rows = ray.get(log.get.remote())
    if not rows:
        raise RuntimeError(f"no trial called the hook {HOOK} (EMODNA_TRIAL_HOOK)")
    for r in rows:  # did the trial's TensorBoard files reach the sweep folder (--out)?
        r["tensorboard"] = any((out / "sweep").glob(f"*-{r['trial_id']}/tensorboard/events.*"))
    return rows[0]["refs"], rows  # the refs the driver put, as the trials got them


def simulate_tasks(cluster, workers, corpora_dir: Path, cache: Path | None) -> tuple[dict, list]:
    """Ray tasks pinned to nodes, each ``ray.get``-ting a corpus the way a trial does."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from emodna.corpora import load_corpora
    from emodna.features import corpus_features
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


def print_trials(rows: list[dict], names: dict) -> None:
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


def print_nodes(rows: list[dict], names: dict, locs: dict, sizes: dict, usage: dict) -> None:
    cols = list(locs)
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


def print_concurrency(rows: list[dict], n_nodes: int) -> None:
    """How many trials ran at once (tune: the hook logged each trial's start and end)."""
    if not all("end" in r for r in rows):
        return
    events = sorted([(r["start"], 1) for r in rows] + [(r["end"], -1) for r in rows])
    running = np.cumsum([e for _, e in events])
    starts = np.diff(sorted(r["start"] for r in rows))
    busy = sum(r["end"] - r["start"] for r in rows) / (
        max(r["end"] for r in rows) - min(r["start"] for r in rows)
    )
    pending = os.environ.get("TUNE_MAX_PENDING_TRIALS_PG", "auto (1 for a custom searcher)")
    print(
        f"trials at once: at most {running.max()}, {busy:.1f} on average, of {n_nodes} "
        f"one-CPU nodes; {np.median(starts):.1f} s between trial starts (median); "
        f"TUNE_MAX_PENDING_TRIALS_PG={pending}"
    )


def print_copies(names: dict, locs: dict, used: dict) -> None:
    for c in locs:
        extra = locs[c] - used[c]
        note = (
            f"; also on {', '.join(names[n] for n in extra)} (the driver's ray.put: the primary copy)"
            if extra
            else ""
        )
        print(
            f"{c}: {len(locs[c])} copies on {len(locs[c])} nodes; used on {len(used[c])} nodes{note}"
        )


def simulate(args) -> None:
    import ray

    from sweep.trainable import corpus_copies

    t0 = time.perf_counter()
    out = args.ray_tmpdir / "out"
    out.mkdir()
    # the cluster's processes inherit these: every trial calls record_trial, importable there
    os.environ["EMODNA_TRIAL_HOOK"] = HOOK
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(BENCH), str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
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
    print_trials(rows, names)
    print_nodes(rows, names, locs, sizes, usage)
    print_concurrency(rows, len(names))
    print_copies(names, locs, used)
    print(f"({time.perf_counter() - t0:.0f} s)")


def simulate_in_child(args) -> bool:
    """Part 3 in a child process, tried twice. A Ray driver whose GCS dies does not raise:
    it aborts its process after 60 s (as when someone runs a machine-wide ``ray stop`` on a
    shared machine); parts 1-2 survive that here. The child's Ray processes die with it
    (Ray sets PR_SET_PDEATHSIG); its private RAY_TMPDIR is removed here."""
    cmd = [
        sys.executable,
        str(BENCH / "scale.py"),
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
