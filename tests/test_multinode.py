"""Several Ray nodes on one machine: trials spread over nodes, corpora are copied once per node.

``ray.cluster_utils.Cluster`` starts a head and two worker nodes (1 CPU and 150 MiB of
object store each) as separate raylets with separate object stores, which is what a real
cluster has. The driver puts two synthetic corpora (~20 MiB together) with
``sweep.trainable.put_corpora``, exactly as ``sweep/run.py`` does, and Ray tasks read them
the way ``sweep.trainable.train_scenario`` does (``ray.get`` on refs passed inside a dict).

What must hold: a corpus is in the object store of the head (the driver's ``ray.put``, the
primary copy) and of every node where a task read it, once per node however many tasks
read it there, and nowhere else; the arrays a task receives are read-only views of that
node's copy (zero-copy).

Other Ray users on this machine are left alone: the cluster lives in a private
``RAY_TMPDIR`` (``Cluster`` writes ``ray_current_cluster``, which ``ray.init("auto")``
reads, into the Ray temp folder on start and deletes it on shutdown), the driver connects
to it by address, and only its own nodes are shut down (no ``ray stop``).
"""

from __future__ import annotations

import shutil
import tempfile
import time

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.slow

MIB = 2**20
EMOTIONS = ["anger", "sadness", "happiness", "neutral", "fear", "boredom"]


def synthetic_features(name: str, n: int, n_frames: int, seed: int):
    """A Features object like the feature store's: x [n, 40, n_frames] float32, one meta row per clip."""
    from emodna.features import Features

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 40, n_frames), dtype=np.float32)
    meta = pd.DataFrame(
        {
            "label": [EMOTIONS[i % len(EMOTIONS)] for i in range(n)],
            "speaker": [f"{name}{i % 8}" for i in range(n)],
        }
    )
    return Features(corpus=name, x=x, meta=meta)


@pytest.fixture(scope="module")
def cluster():
    """(Cluster, [worker nodes]) with this process's driver connected to it."""
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    if ray.is_initialized():  # a Ray this test process started earlier: only a disconnect
        ray.shutdown()
    tmp = tempfile.mkdtemp(prefix="emo-mn-", dir="/tmp")  # short: socket paths < 108 chars
    mp = pytest.MonkeyPatch()
    mp.setenv("RAY_TMPDIR", tmp)
    mp.delenv("RAY_ADDRESS", raising=False)
    c = None
    try:
        c = Cluster(
            initialize_head=True,
            head_node_args=dict(num_cpus=1, object_store_memory=150 * MIB, include_dashboard=False),
        )
        workers = [c.add_node(num_cpus=1, object_store_memory=150 * MIB) for _ in range(2)]
        c.wait_for_nodes()
        ray.init(address=c.address, log_to_driver=False)
        assert ray.get_runtime_context().get_node_id() == c.head_node.node_id
        yield c, workers
    finally:
        ray.shutdown()
        if c is not None:
            c.shutdown()  # only this cluster's processes; deletes tmp's ray_current_cluster
        mp.undo()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def corpora(cluster):
    """Two corpora put once each by the driver (~20 MiB), freed after the test."""
    from sweep.trainable import put_corpora

    feats = {
        "ALPHA": synthetic_features("ALPHA", 400, 160, 0),  # 9.8 MiB
        "BETA": synthetic_features("BETA", 360, 180, 1),  # 8.9 MiB
    }
    refs = put_corpora(feats)
    yield feats, refs
    del refs


def read_corpus(corpora: dict, names: list[str], hold_s: float = 0.0) -> dict:
    """What a trial does with the object store: ray.get its corpora, use the arrays."""
    import ray

    got = ray.get([corpora[n] for n in names])
    out = {
        "node": ray.get_runtime_context().get_node_id(),
        "read_only": all(not a.flags.writeable for p in got for a in [p["x"], *p["y"].values()]),
        "checksum": [float(p["x"][:, :, :5].sum(dtype=np.float64)) for p in got],
    }
    try:
        got[0]["x"][0, 0, 0] = 1.0
        out["write"] = "allowed"
    except ValueError as exc:
        out["write"] = str(exc)
    time.sleep(hold_s)  # hold the CPU, as a trial does, so the scheduler must use other nodes
    return out


def test_pinned_tasks_one_copy_per_node(cluster, corpora):
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from sweep.trainable import corpus_copies

    c, workers = cluster
    feats, refs = corpora
    head, w1, w2 = c.head_node.node_id, workers[0].node_id, workers[1].node_id
    locs = ray.experimental.get_object_locations(list(refs.values()))
    for name, ref in refs.items():  # in plasma (not inlined) and only where the driver put it
        assert locs[ref]["object_size"] > feats[name].nbytes
        assert locs[ref]["node_ids"] == [head]

    task = ray.remote(num_cpus=1)(read_corpus)
    plan = [("ALPHA", w1), ("ALPHA", w1), ("ALPHA", w2), ("BETA", w1), ("BETA", head), ("BETA", w1)]
    results = ray.get(
        [
            task.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)
            ).remote(refs, [name])
            for name, node in plan
        ]
    )

    assert [r["node"] for r in results] == [node for _, node in plan]
    assert len({r["node"] for r in results}) == 3
    for (name, _), r in zip(plan, results, strict=True):
        assert r["read_only"], "ray.get should return read-only views of the node's object store"
        assert "read-only" in r["write"]
        assert r["checksum"] == [float(feats[name].x[:, :, :5].sum(dtype=np.float64))]

    # ALPHA: 2 tasks on worker-1 and 1 on worker-2; BETA: 2 tasks on worker-1, 1 on the head
    expect = {"ALPHA": {head, w1, w2}, "BETA": {head, w1}}
    got = corpus_copies(refs, expect)
    for name in refs:
        assert len(got[name]) == len(set(got[name])), f"{name}: two copies on one node: {got[name]}"
        assert set(got[name]) == expect[name], (
            f"{name}: copies on {got[name]}, expected {expect[name]}"
        )


def test_spread_trials_copy_each_corpus_once_per_node(cluster, corpora):
    """Trials that each read a source and a target corpus, spread by Ray (SPREAD)."""
    import ray

    from sweep.trainable import corpus_copies

    c, _ = cluster
    feats, refs = corpora
    head = c.head_node.node_id
    task = ray.remote(num_cpus=1, scheduling_strategy="SPREAD")(read_corpus)
    pairs = [["ALPHA", "BETA"], ["BETA", "ALPHA"]] * 2
    results = ray.get([task.remote(refs, pair, 1.0) for pair in pairs])

    nodes = [r["node"] for r in results]
    assert len(set(nodes)) >= 2, f"4 one-CPU trials on 3 one-CPU nodes all ran on {set(nodes)}"
    assert all(r["read_only"] for r in results)
    # every corpus was read on every node that ran a trial, plus the driver's primary copy
    expect = dict.fromkeys(refs, set(nodes) | {head})
    got = corpus_copies(refs, expect)
    for name in refs:
        assert sorted(got[name]) == sorted(expect[name]), f"{name}: copies on {got[name]}"
