"""docs/results.md: named training variants on every scenario, with paired tests.

    python bench/results.py --epochs 10 --seeds 1                     # run what is missing
    python bench/results.py --epochs 10 --seeds 1 --only emodna_paper functionals_lr
    python bench/results.py --epochs 10 --tables-only                 # print the tables so far

A variant is a name and a set of ``TrainConfig`` fields (``bench/variants.yaml``). Every
variant runs on every ordered pair of the corpora found, both tasks and seeds 0..N-1, through
``emodna.train.fit`` in ``--workers`` processes with one torch thread each (the machinery of
``bench/paper_tables.py``: each finished run is a row of ``--results``, rewritten
atomically, and a rerun skips the rows already there). Variants run one after another, in
the file's order, so an interrupted bench has whole variants.

The tables: per task, each variant's mean over scenario-seeds of target UAR, WAR, F1 of the
positive class (the paper's F1) and macro F1, in %; then for the pairs ``--pair A B``, the
mean paired difference of UAR, wins / losses, and the two-sided Wilcoxon signed-rank p over
the scenario-seeds both have (scipy).

``--sweep runs/transfer`` adds two rows from a sweep's ``trials.parquet``, among the configs
of ``--sweep-method`` (default emodna): ``sweep_loto``, per scenario the config chosen
without that target corpus's labels (leave-target-corpus-out: the config ranked best on the
task's scenarios with other targets, as ``emodna summarize`` does), and ``sweep_oracle``, per
scenario the best config (chosen with its labels: an upper bound). Their rows carry the
sweep's seed and epochs, so pair them with variants run at the same.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from itertools import permutations
from pathlib import Path

import pandas as pd
import yaml

# paper_tables by file, not by putting bench/ on the path
_BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
_spec = importlib.util.spec_from_file_location("paper_tables", _BENCH / "paper_tables.py")
paper_tables = sys.modules.setdefault("paper_tables", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(paper_tables)
read_results = paper_tables.read_results

from sweep.markdown import frame_table, pm  # noqa: E402
from sweep.ranking import SCORE_LABELS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
KEY = ["variant", "source", "target", "task", "seed", "epochs"]
# the summarizer's names for the scores (sweep.ranking), UAR first
SCORES = {
    k: SCORE_LABELS[k] for k in ("target_uar", "target_war", "target_f1_pos", "target_f1_macro")
}


def load_variants(path: Path) -> dict[str, dict]:
    from emodna.config import TrainConfig

    variants = yaml.safe_load(path.read_text()) or {}
    for name, fields in variants.items():
        TrainConfig.from_dict(fields, origin=f"{path}: {name}")  # fail before any run
    return variants


def plan(variants: dict, corpora, tasks, seeds: int, epochs: int) -> list[dict]:
    return [
        {
            "variant": v,
            "overrides": fields,
            "source": s,
            "target": t,
            "task": task,
            "seed": seed,
            "epochs": epochs,
        }
        for v, fields in variants.items()
        for seed in range(seeds)
        for task in tasks
        for s, t in permutations(corpora, 2)
    ]


def score_table(df: pd.DataFrame, task: str, variants: list[str]) -> pd.DataFrame:
    """Rows: variants; columns: mean of each score over scenario-seeds (%), runs, seeds."""
    d = df[df.task == task]
    rows = []
    for v in [v for v in variants if v in set(d.variant)]:
        g = d[d.variant == v]
        row = {"variant": v}
        for col, label in SCORES.items():
            per_seed = g.groupby("seed")[col].mean()  # ± as in sweep.paper_table
            row[label] = pm(per_seed.mean(), per_seed.std(ddof=1) if len(per_seed) > 1 else None)
        row["runs"] = len(g)
        rows.append(row)
    return pd.DataFrame(rows).set_index("variant") if rows else pd.DataFrame()


def paired(df: pd.DataFrame, task: str, a: str, b: str, metric: str = "target_uar") -> dict | None:
    """A vs B on the scenario-seeds both have: mean difference (points), wins, Wilcoxon p."""
    from scipy.stats import wilcoxon

    d = df[df.task == task].pivot_table(
        index=["source", "target", "seed"], columns="variant", values=metric
    )
    if a not in d or b not in d:
        return None
    both = d[[a, b]].dropna()
    if len(both) < 2:
        return None
    diff = 100 * (both[a] - both[b])
    p = float(wilcoxon(diff).pvalue) if (diff != 0).any() else 1.0
    return {
        "task": task,
        "A": a,
        "B": b,
        "n": len(both),
        "A - B (UAR points)": f"{diff.mean():+.1f}",
        "A wins / losses": f"{int((diff > 0).sum())} / {int((diff < 0).sum())}",
        "Wilcoxon p": f"{p:.3g}",
    }


def sweep_rows(folder: Path, method: str = "emodna", metric: str = "target_uar") -> pd.DataFrame:
    """Per scenario, the scores of the LOTO-selected and of the oracle config of a sweep,
    among the configs of ``method`` (sweep.selection.honest_selection on those trials)."""
    from sweep.ranking import SCORES as SWEEP_SCORES
    from sweep.ranking import load_trials, pick_best_seed, rank_configs, scenario_scores
    from sweep.selection import honest_selection

    trials = load_trials(folder)
    trials = trials[trials["method"] == method]
    ranking = rank_configs(trials, metric, "max")
    scores = pick_best_seed(scenario_scores(trials, metric), "max").set_index(
        ["config_id", "scenario"]
    )
    per, _ = honest_selection(trials, scores.reset_index(), ranking, metric, "max")
    epochs = (
        int(trials["hp_epochs"].dropna().iloc[0])
        if "hp_epochs" in trials
        else int(trials["epoch"].max())
    )
    rows = []
    for _, r in per.iterrows():
        for name, cid in (("sweep_loto", r["loto_config"]), ("sweep_oracle", r["oracle_config"])):
            if cid is None or pd.isna(cid):
                continue
            got = scores.loc[(int(cid), r["scenario"])]
            rows.append(
                {
                    "variant": name,
                    "source": got["source"],
                    "target": got["target"],
                    "task": got["task"],
                    "seed": int(trials["seed"].min()),
                    "epochs": epochs,
                    "config_id": int(cid),
                    **{k: float(got[k]) for k in SWEEP_SCORES if k in got},
                }
            )
    return pd.DataFrame(rows)


def print_tables(df: pd.DataFrame, variants: list[str], pairs: list[tuple[str, str]]) -> None:
    if df.empty:
        print("no results yet")
        return
    epochs = ", ".join(str(int(e)) for e in sorted(df.epochs.unique()))
    print(
        f"{len(df)} runs; epochs: {epochs}; scores in %, mean over scenarios "
        "(± std over seeds where there are several)\n"
    )
    for task in ("arousal", "valence"):
        if task in set(df.task):
            n = df[df.task == task].groupby(["source", "target"]).ngroups
            print(f"{task}, {n} scenarios\n\n{frame_table(score_table(df, task, variants))}\n")
    rows = [r for task in ("arousal", "valence") for a, b in pairs if (r := paired(df, task, a, b))]
    if rows:
        print(
            f"Paired over scenario-seeds, target UAR\n\n{frame_table(pd.DataFrame(rows).set_index('task'))}\n"
        )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpora-dir", type=Path, default=ROOT.parent / "shared" / "corpora")
    p.add_argument("--variants", type=Path, default=ROOT / "bench" / "variants.yaml")
    p.add_argument(
        "--only",
        nargs="+",
        metavar="VARIANT",
        help="only these variants (default: all in the file)",
    )
    p.add_argument(
        "--tasks", nargs="+", default=["arousal", "valence"], choices=["arousal", "valence"]
    )
    p.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 (default 1)")
    p.add_argument("--epochs", type=int, default=10, help="epochs per deep run (default 10)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument(
        "--pair",
        nargs=2,
        action="append",
        default=[],
        metavar=("A", "B"),
        help="a paired comparison to print (repeatable)",
    )
    p.add_argument(
        "--results",
        type=Path,
        default=ROOT / "results" / "variants.parquet",
        help="one row per finished run, committed so the tables reproduce without rerunning",
    )
    p.add_argument(
        "--tables-only", action="store_true", help="print the tables of the results file and stop"
    )
    p.add_argument(
        "--sweep",
        type=Path,
        help="a sweep folder: add its LOTO-selected and oracle configs as rows",
    )
    p.add_argument(
        "--sweep-method",
        default="emodna",
        help="the sweep's configs of this method only (default emodna)",
    )
    args = p.parse_args(argv)

    variants = load_variants(args.variants)
    if args.only:
        unknown = [v for v in args.only if v not in variants]
        if unknown:
            p.error(
                f"unknown variant(s) {', '.join(unknown)}; {args.variants} has {', '.join(variants)}"
            )
        variants = {v: variants[v] for v in args.only}
    results = read_results(args.results)
    if args.tables_only:
        names = list(variants)
        if args.sweep is not None:
            results = pd.concat(
                [results, sweep_rows(args.sweep, args.sweep_method)], ignore_index=True
            )
            names += ["sweep_loto", "sweep_oracle"]
        # the sweep's rows keep the sweep's own epochs (said in the table's heading)
        at = (results.epochs == args.epochs) | results.variant.isin(["sweep_loto", "sweep_oracle"])
        print_tables(results[at & (results.seed < args.seeds)], names, args.pair)
        return 0

    from emodna.config import TrainConfig
    from emodna.corpora import load_corpora

    corpora = load_corpora(args.corpora_dir)
    if len(corpora) < 2:
        print(
            f"results: need at least two corpora, found {list(corpora)} in {args.corpora_dir}",
            file=sys.stderr,
        )
        return 2
    feature_sets = {TrainConfig.from_dict(fields, v).feature_set for v, fields in variants.items()}
    paths = paper_tables.feature_paths(corpora, feature_sets, workers=args.workers)
    jobs = paper_tables.not_done(
        plan(variants, list(corpora), args.tasks, args.seeds, args.epochs), results, KEY
    )
    print(
        f"{len(jobs)} runs to do ({len(results)} already in {args.results}), {args.workers} workers",
        file=sys.stderr,
        flush=True,
    )
    results = paper_tables.run_jobs(
        jobs,
        paths,
        args.workers,
        results,
        args.results,
        lambda row: (
            f"{row['variant']:<24} {row['source']}->{row['target']} {row['task']:<8} seed {row['seed']}: "
            f"UAR {row['target_uar']:.3f}"
        ),
    )
    print_tables(results[results.epochs == args.epochs], list(variants), args.pair)
    return 0


if __name__ == "__main__":
    sys.exit(main())
