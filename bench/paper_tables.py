"""The paper's Tables 2, 3 and 4 on the corpora at hand: every method, every scenario.

    python bench/paper_tables.py --epochs 10 --seeds 1 --methods emodna source_only dan
    python bench/paper_tables.py --tables-only            # print the tables of the rows so far

Runs ``emodna.train.fit`` for every method x ordered corpus pair x task x seed, in
``--workers`` processes (default: the cores), one torch thread each. Each finished run is
appended as a row to ``--results`` (Parquet, rewritten atomically after every run), so a
killed bench keeps its rows and a rerun skips the runs already there (a run is identified
by method, source, target, task, seed and epochs). Then prints, with pandas:

* Table 2 (arousal) and Table 3 (valence): rows are the source corpora and ``Average``,
  columns the methods; each cell is WAR / F1 of the positive class (the paper's F1), in %,
  built as ``summary.md`` builds its Tables 2 and 3 (``sweep.paper_table``): the mean over
  the row's scenarios (a source's targets; every scenario of the task for ``Average``) ± the
  std over seeds of each seed's mean over those scenarios. No ± with one seed; ``*`` where a
  method misses some of the row's scenarios.
* Table 4 (ablations): the ablation methods present (V1 = source only, V2-V5, full
  Emo-DNA) with the loss terms each switches on, and their average WAR / F1 per task.
* The per-scenario WAR of every method, for looking at where a method wins or loses.

How long it takes: a run costs ``epochs x`` one epoch, and an epoch is one pass over the
larger corpus of the pair (batches of 64 source + 64 target, 9 to 23 steps with these
corpora) plus an evaluation on the whole target. With one thread per run on an idle core
(torch 2.13 CPU) an epoch takes about 2-3 s when the pair is EMODB/EMOVO, 5-6 s with CASIA and
6-8 s with RAVDESS; emodna costs ~20% more than source_only. Four corpora give 12 ordered
pairs x 2 tasks = 24 scenarios. Measured on the shared 2-core machine (docs/paper_tables.md),
3 methods x 24 scenarios x 5 epochs = 72 runs with 2 workers took 63 min for seed 0 (other
jobs kept the load at 6-10, single runs 11-449 s) and 36 min for seed 1 (lighter load).
All 14 methods x 24 scenarios x 3 seeds x 30 epochs would take days on 2 cores: use the
sweep on a cluster (sweep/run.py) for that.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from itertools import permutations
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd

from emodna.atomic import atomic_write
from sweep.markdown import frame_table, pm
from sweep.paper_table import paper_cells

ROOT = Path(__file__).resolve().parents[1]
KEY = ["method", "source", "target", "task", "seed", "epochs"]
# Table 4: the variants in the paper's order, V1 (emotion encoder only) to the full method.
ABLATIONS = {
    "source_only": "V1",
    "v2_corpus_encoder_only": "V2",
    "v3_no_decouple": "V3",
    "v4_no_align": "V4",
    "v5_no_decoupling": "V5",
    "no_scl": "T6 no SupCon",  # the paper's Table 6: SupCon and its threshold
    "no_threshold": "T6 no threshold",
    "fixed_threshold": "T6 threshold 0.9",
    "emodna": "Emo-DNA",
}

# ---------------------------------------------------------------------------------------
# Worker side: features loaded once per process, one run per call

_DATA: dict = {}


def feature_paths(corpora: dict, feature_sets, cache=None, workers: int = 1) -> dict:
    """Feature set (a front-end) -> corpus -> its cached Parquet file, each extracted once:
    what :func:`run_jobs`' workers load."""
    from emodna.features import FeatureSettings, build_features

    return {
        fs: {
            name: str(
                build_features(
                    c, FeatureSettings(frontend=fs), cache, workers=workers, progress=False
                ).path
            )
            for name, c in corpora.items()
        }
        for fs in sorted(feature_sets)
    }


def _init_worker(paths: dict[str, dict[str, str]]) -> None:
    """``paths``: feature set (a front-end) -> corpus -> Parquet file (:func:`feature_paths`)."""
    import torch

    from emodna.features import load_features

    torch.set_num_threads(1)
    _DATA.update(
        {fs: {n: load_features(p) for n, p in files.items()} for fs, files in paths.items()}
    )


def run_one(job: dict) -> dict:
    """Train one (method, source, target, task, seed, epochs); return its result row."""
    from emodna.config import TrainConfig
    from emodna.train import Domain, fit

    base = {k: job[k] for k in ("method", "source", "target", "task", "seed", "epochs") if k in job}
    cfg = TrainConfig.from_dict(
        {**job.get("overrides", {}), **base}, origin=str(job.get("variant", "bench"))
    )
    src, tgt = _DATA[cfg.feature_set][job["source"]], _DATA[cfg.feature_set][job["target"]]
    t0 = time.perf_counter()
    final = fit(
        cfg,
        Domain.of(src, cfg.task),
        Domain.of(tgt, cfg.task),
    )
    row = {k: v for k, v in job.items() if k != "overrides"}
    return {**row, "method": cfg.method, **final, "seconds": time.perf_counter() - t0}


# ---------------------------------------------------------------------------------------
# Results file


def read_results(path: Path) -> pd.DataFrame:
    if path.exists():
        return pd.read_parquet(path)
    return pd.DataFrame(columns=KEY)


def write_results(df: pd.DataFrame, path: Path) -> None:
    atomic_write(path, lambda tmp: df.to_parquet(tmp, index=False))


def not_done(jobs: list[dict], results: pd.DataFrame, key: list[str]) -> list[dict]:
    """The ``jobs`` whose ``key`` values have no row in ``results`` yet: what a rerun runs."""
    done = set(results[key].itertuples(index=False, name=None)) if len(results) else set()
    return [j for j in jobs if tuple(j[k] for k in key) not in done]


def run_jobs(
    jobs: list[dict], paths: dict, workers: int, results: pd.DataFrame, path: Path, describe
) -> pd.DataFrame:
    """Run ``jobs`` (:func:`run_one`) in ``workers`` spawned processes; append each finished
    row to ``results`` and rewrite ``path`` at once, printing ``describe(row)``."""
    t0 = time.perf_counter()
    with ProcessPoolExecutor(
        workers,
        mp_context=get_context("spawn"),
        initializer=_init_worker,
        initargs=(paths,),
    ) as pool:
        futures = [pool.submit(run_one, j) for j in jobs]
        for finished, fut in enumerate(as_completed(futures), start=1):
            row = fut.result()
            results = (
                pd.concat([results, pd.DataFrame([row])], ignore_index=True)
                if len(results)
                else pd.DataFrame([row])
            )
            write_results(results, path)
            print(
                f"[{finished}/{len(jobs)} {time.perf_counter() - t0:7.0f} s] {describe(row)} "
                f"({row['seconds']:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
    return results


def plan(methods, corpora, tasks, seeds, epochs) -> list[dict]:
    """All runs, seeds outermost, so an interrupted bench has whole seeds of every method."""
    return [
        {"method": m, "source": s, "target": t, "task": task, "seed": seed, "epochs": epochs}
        for seed in range(seeds)
        for task in tasks
        for s, t in permutations(corpora, 2)
        for m in methods
    ]


# ---------------------------------------------------------------------------------------
# Tables


def _cell(values: pd.Series) -> str:
    """Per-seed values: their mean ± their std over seeds (``sweep.paper_table``'s ±)."""
    values = values.dropna()
    if values.empty:
        return ""
    return pm(values.mean(), values.std(ddof=1) if len(values) > 1 else None)


def source_table(df: pd.DataFrame, task: str, methods: list[str]) -> pd.DataFrame:
    """Rows: source corpora + Average; columns: methods; cells 'WAR / F1' (sweep.paper_table)."""
    present = [m for m in methods if m in set(df[df.task == task].method)]
    cells = paper_cells(df, task, [(m, m) for m in present], key="method")
    return pd.DataFrame(
        {m: cells[(m, "WAR")] + " / " + cells[(m, "F1 pos")] for m in present}, index=cells.index
    )


def ablation_table(df: pd.DataFrame) -> pd.DataFrame:
    from emodna.config import METHODS

    rows = []
    for m, label in ABLATIONS.items():
        if m not in set(df.method):
            continue
        spec = METHODS[m]
        row = {"variant": label, "method": m}
        for part in ("corpus", "decouple", "mmd", "supcon"):
            row[part] = "x" if getattr(spec, part) else ""
        for task in ("arousal", "valence"):
            per_seed = (
                df[(df.method == m) & (df.task == task)]
                .groupby("seed")[["target_war", "target_f1_pos"]]
                .mean()
            )
            row[f"{task} WAR"] = _cell(per_seed.target_war)
            row[f"{task} F1"] = _cell(per_seed.target_f1_pos)
        rows.append(row)
    return pd.DataFrame(rows).set_index("variant") if rows else pd.DataFrame()


def scenario_table(
    df: pd.DataFrame, task: str, methods: list[str], metric: str = "target_war"
) -> pd.DataFrame:
    d = df[df.task == task]
    t = d.pivot_table(index=["source", "target"], columns="method", values=metric, aggfunc="mean")
    t = (100 * t[[m for m in methods if m in t.columns]]).round(1)
    return t


def print_tables(df: pd.DataFrame, methods: list[str]) -> None:
    if df.empty:
        print("no results yet")
        return
    seeds = df.groupby(["method", "task"]).seed.nunique()
    epochs = ", ".join(str(int(e)) for e in sorted(df.epochs.unique()))
    n_seeds = ", ".join(str(int(n)) for n in sorted(seeds.unique()))
    print(
        f"{len(df)} runs; epochs: {epochs}; seeds per method and task: {n_seeds}; "
        "cells: WAR / F1 (positive class, as the paper) in %, mean ± std over seeds of the "
        "mean over the row's scenarios\n"
    )
    for number, task in ((2, "arousal"), (3, "valence")):
        if task in set(df.task):
            n = df[df.task == task].groupby(["source", "target"]).ngroups
            print(f"Table {number} ({task}, {n} scenarios)\n")
            print(frame_table(source_table(df, task, methods)) + "\n")
    abl = ablation_table(df)
    if len(abl) > 1:
        print("Table 4 (ablations, and the paper's Table 6 variants; average over all scenarios)\n")
        print(frame_table(abl) + "\n")
    for task in ("arousal", "valence"):
        if task in set(df.task):
            print(f"Per scenario ({task}, target WAR %, mean over seeds)\n")
            print(frame_table(scenario_table(df, task, methods)) + "\n")


# ---------------------------------------------------------------------------------------


def main(argv=None) -> int:
    from emodna.config import METHODS

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpora-dir", type=Path, default=ROOT.parent / "shared" / "corpora")
    p.add_argument(
        "--corpus", action="append", help="only these corpora (repeatable; default all present)"
    )
    p.add_argument("--cache", type=Path, default=None, help="feature cache (default: emodna's)")
    p.add_argument(
        "--methods", nargs="+", default=list(METHODS), choices=list(METHODS), metavar="METHOD"
    )
    p.add_argument(
        "--tasks", nargs="+", default=["arousal", "valence"], choices=["arousal", "valence"]
    )
    p.add_argument(
        "--seeds",
        type=int,
        default=3,
        help="seeds 0..N-1 per run (default 3); with --tables-only: only the rows of those seeds",
    )
    p.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="epochs per run (default 30); with --tables-only: only the rows of this many epochs",
    )
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument(
        "--results", type=Path, default=ROOT / "runs" / "paper_tables" / "results.parquet"
    )
    p.add_argument(
        "--tables-only", action="store_true", help="print the tables of the results file and stop"
    )
    args = p.parse_args(argv)

    results = read_results(args.results)
    if args.tables_only:
        if args.epochs is not None:
            results = results[results.epochs == args.epochs]
        results = results[results.seed < args.seeds]
        print_tables(results, args.methods)
        return 0
    args.epochs = args.epochs or 30

    from emodna.corpora import load_corpora

    corpora = load_corpora(args.corpora_dir, names=args.corpus)
    if len(corpora) < 2:
        print(
            f"paper_tables: need at least two corpora, found {list(corpora)} in {args.corpora_dir}",
            file=sys.stderr,
        )
        return 2
    paths = feature_paths(corpora, ["mfcc"], args.cache, args.workers)
    jobs = not_done(
        plan(args.methods, list(corpora), args.tasks, args.seeds, args.epochs), results, KEY
    )
    print(
        f"{len(jobs)} runs to do ({len(results)} already in {args.results}), {args.workers} workers, "
        f"corpora {', '.join(corpora)}",
        file=sys.stderr,
        flush=True,
    )

    results = run_jobs(
        jobs,
        paths,
        args.workers,
        results,
        args.results,
        lambda row: (
            f"{row['method']:<12} {row['source']}->{row['target']} {row['task']:<8} seed {row['seed']}: "
            f"WAR {row['target_war']:.3f} F1 {row['target_f1_pos']:.3f}"
        ),
    )
    print_tables(results[results.epochs == args.epochs], args.methods)
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
