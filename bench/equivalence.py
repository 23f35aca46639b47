"""Does a change to the training code keep its results in distribution? Two git revisions,
the default Emo-DNA config on the shipped scenarios, paired over scenario-seeds.

    python bench/equivalence.py BEFORE [AFTER] --out runs/equivalence [--resume]
        [--set-before KEY=VALUE ...] [--set-after KEY=VALUE ...] [--epochs 5] [--seeds 0 1 2]
        [--workers 2] [--corpora-dir ../shared/corpora] [--cache DIR]
    python bench/equivalence.py --report runs/equivalence      # the table of what is there

Each side is its revision exported with ``git archive`` into ``OUT/code/<side>`` and run with
that code first on PYTHONPATH (its own ``emodna``, asserted). It trains ``TrainConfig``'s
defaults plus the side's ``--set`` overrides and ``--epochs`` (5: the epochs of the README
main job, ``search_spaces/transfer.yaml``, and of the like-for-like table in
docs/results.md) on every ordered pair of the corpora found (EMODB, CASIA, EMOVO, RAVDESS:
12) x both tasks x the seeds: 72 runs per side by default. Runs are ``emodna.train.fit``
calls, no Ray, in ``--workers`` spawned processes with one torch thread each, features from
the feature cache as ``emodna train`` reads them.

Each finished run is one line of ``OUT/<side>.jsonl``, appended as it ends; ``--resume``
skips the runs already there (a run is its source, target, task, seed and epochs; a file
written by another revision or other overrides is refused). ``OUT/sides.jsonl`` holds the
wall time of each side's invocation: the trial-level speed.

The verdict, per task, over the (scenario, seed) pairs both sides have: d = after - before
in target UAR, in points (x100). Mean d with its 95% t-interval
(``scipy.stats.ttest_1samp(d).confidence_interval``), and the two-sided Wilcoxon signed-rank
p-value (``scipy.stats.wilcoxon``, zero differences dropped; p = 1 when every difference is
0). PASS when |mean d| <= 1 point on each task and p >= 0.05. With 36 pairs the interval is
about +/-1.3 points wide, so it informs, it does not decide (issue 23).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from itertools import permutations
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.stats
from revision import export

ROOT = Path(__file__).resolve().parents[1]
KEY = ["source", "target", "task", "seed", "epochs"]
SIDES = ("before", "after")
TOLERANCE = 1.0  # UAR points: the largest mean difference that passes (issue 23)
ALPHA = 0.05  # the Wilcoxon test must not find a difference at this level

# ---------------------------------------------------------------------------------------
# Statistics and verdict (no training: tests/test_equivalence.py)


def paired(before: pd.DataFrame, after: pd.DataFrame, metric: str = "target_uar") -> pd.DataFrame:
    """One row per (scenario, seed) both sides ran: task, ``before``, ``after`` and ``d``
    (after - before, in points of ``metric``)."""
    cols = [*KEY, metric]
    both = before[cols].merge(after[cols], on=KEY, suffixes=("_before", "_after"))
    both = both.rename(columns={f"{metric}_before": "before", f"{metric}_after": "after"})
    both["d"] = 100.0 * (both["after"] - both["before"])
    return both.sort_values(KEY, ignore_index=True)


def summarize(d: np.ndarray, tolerance: float = TOLERANCE, alpha: float = ALPHA) -> dict:
    """The verdict on one task's paired differences ``d`` (points): mean, 95% t-interval,
    Wilcoxon p, and ``pass`` (|mean| <= tolerance and p >= alpha)."""
    d = np.asarray(d, dtype=np.float64)
    n, mean = len(d), float(d.mean()) if len(d) else float("nan")
    low = high = p = float("nan")
    if n >= 2 and np.ptp(d) > 1e-9:
        ci = scipy.stats.ttest_1samp(d, 0.0).confidence_interval(0.95)
        low, high = float(ci.low), float(ci.high)
    elif n >= 2:  # every difference the same: no spread to make an interval of
        low = high = mean
    if n and np.all(d == 0):
        p = 1.0  # identical results: nothing to test (wilcoxon drops every zero)
    elif n:
        p = float(scipy.stats.wilcoxon(d).pvalue)
    better, worse = int((d > 0).sum()), int((d < 0).sum())
    ok = bool(n and abs(mean) <= tolerance and p >= alpha)
    return {
        "n": n,
        "mean_d": mean,
        "ci_low": low,
        "ci_high": high,
        "wilcoxon_p": p,
        "after_better": better,
        "after_worse": worse,
        "pass": ok,
    }


def verdict(pairs: pd.DataFrame, **kwargs) -> pd.DataFrame:
    """:func:`summarize` per task of :func:`paired`'s rows, plus the means of each side."""
    rows = []
    for task, group in pairs.groupby("task", sort=True):
        rows.append(
            {
                "task": task,
                "before": 100 * group["before"].mean(),
                "after": 100 * group["after"].mean(),
                **summarize(group["d"].to_numpy(), **kwargs),
            }
        )
    return pd.DataFrame(rows)


def table(v: pd.DataFrame) -> str:
    """The verdict as a Markdown table."""
    lines = [
        "| task | pairs | before UAR | after UAR | mean d (after - before) | 95% t-interval "
        "| Wilcoxon p | after better / worse | verdict |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in v.to_dict("records"):
        lines.append(
            f"| {r['task']} | {r['n']} | {r['before']:.2f} | {r['after']:.2f} | {r['mean_d']:+.2f} | "
            f"[{r['ci_low']:+.2f}, {r['ci_high']:+.2f}] | {r['wilcoxon_p']:.3f} | "
            f"{r['after_better']} / {r['after_worse']} | {'PASS' if r['pass'] else 'FAIL'} |"
        )
    overall = bool(len(v)) and bool(v["pass"].all())
    lines.append(
        f"\noverall: {'PASS' if overall else 'FAIL'} (|mean d| <= {TOLERANCE} point "
        f"and Wilcoxon p >= {ALPHA} on each task)"
    )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# One side: run with the side's own code on PYTHONPATH (this file imports no emodna at the
# top, so the same functions drive any revision whose fit / Domain / features API matches)

_DATA: dict = {}


def _init_worker(paths: dict[str, str]) -> None:
    import torch

    from emodna.features import load_features

    torch.set_num_threads(1)
    _DATA.update({name: load_features(p) for name, p in paths.items()})


def run_one(job: dict) -> dict:
    """Train one scenario-seed with the side's code; its result row."""
    from emodna.config import TrainConfig
    from emodna.train import Domain, fit

    sets = job["sets"]
    cfg = TrainConfig.from_dict({**sets, **{k: job[k] for k in KEY}}, origin="equivalence")
    src, tgt = _DATA[cfg.source], _DATA[cfg.target]
    t0, c0 = time.perf_counter(), time.process_time()
    if hasattr(Domain, "of"):  # since 51f303e: with each clip's real frames, as training reads
        source, target = Domain.of(src, cfg.task), Domain.of(tgt, cfg.task)
    else:
        source, target = (
            Domain(d.x, d.labels(cfg.task), name, d.speakers())
            for d, name in ((src, cfg.source), (tgt, cfg.target))
        )
    final = fit(cfg, source, target)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    keep = {k: v for k, v in final.items() if isinstance(v, (int, float, str))}
    return {**{k: job[k] for k in KEY}, **keep, "seconds": wall, "cpu_seconds": cpu}


def run_side(args) -> int:
    """``--side``: every run of the plan not yet in the side's results file, appended as each
    ends. Runs in a process whose PYTHONPATH starts with the side's exported code."""
    import emodna
    from emodna.config import TrainConfig
    from emodna.corpora import load_corpora
    from emodna.features import FeatureSettings, build_features

    code = Path(args.code).resolve()
    assert Path(emodna.__file__).resolve().is_relative_to(code), (emodna.__file__, code)
    sets = json.loads(args.sets)
    corpora = load_corpora(args.corpora_dir, names=args.corpus)
    settings = FeatureSettings.for_config(TrainConfig.from_dict(sets, origin="--set"))
    paths = {
        n: str(build_features(c, settings, args.cache, workers=args.workers, progress=False).path)
        for n, c in corpora.items()
    }
    results = Path(args.results)
    done = {tuple(r[k] for k in KEY) for r in read_jsonl(results)}
    jobs = [
        {"source": s, "target": t, "task": task, "seed": seed, "epochs": args.epochs, "sets": sets}
        for seed in args.seeds
        for task in args.tasks
        for s, t in permutations(corpora, 2)
    ]
    jobs = [j for j in jobs if tuple(j[k] for k in KEY) not in done]
    print(f"{args.label}: {len(jobs)} runs to do, {len(done)} done", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    with ProcessPoolExecutor(
        args.workers, mp_context=get_context("spawn"), initializer=_init_worker, initargs=(paths,)
    ) as pool:
        futures = [pool.submit(run_one, j) for j in jobs]
        for finished, fut in enumerate(as_completed(futures), start=1):
            row = {"side": args.label, "rev": args.rev, "sets": sets, **fut.result()}
            with results.open("a") as f:  # one line per run, as it ends
                f.write(json.dumps(row) + "\n")
            print(
                f"[{args.label} {finished}/{len(jobs)} {time.perf_counter() - t0:6.0f} s] "
                f"{row['source']}->{row['target']} {row['task']} seed {row['seed']}: "
                f"UAR {row['target_uar']:.4f} ({row['seconds']:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
    return 0


# ---------------------------------------------------------------------------------------
# Driver


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def drive_side(label: str, rev: str, sets: dict, args) -> None:
    """Export ``rev``, check the results file belongs to it, run the side in its own code."""
    results = args.out / f"{label}.jsonl"
    code = args.out / "code" / label
    sha = export(rev, code)
    rows = read_jsonl(results)
    if rows and not args.resume:
        raise SystemExit(f"{results} holds {len(rows)} runs: pass --resume, or another --out")
    other = {(r["rev"], json.dumps(r["sets"], sort_keys=True)) for r in rows}
    if other - {(sha, json.dumps(sets, sort_keys=True))}:
        raise SystemExit(f"{results} was written by {other}, not {sha} with {sets}")
    command = [
        *(sys.executable, str(Path(__file__).resolve()), "--side", label, "--rev", sha),
        *(
            "--code",
            str(code.resolve()),
            "--sets",
            json.dumps(sets),
            "--results",
            str(results.resolve()),
        ),
        *("--corpora-dir", str(args.corpora_dir.resolve()), "--epochs", str(args.epochs)),
        *("--workers", str(args.workers), "--seeds", *map(str, args.seeds)),
        *("--tasks", *args.tasks),
        *(("--cache", str(args.cache.resolve())) if args.cache else ()),
        *(x for c in args.corpus or [] for x in ("--corpus", c)),
    ]
    env = {**os.environ, "PYTHONPATH": str(code.resolve())}
    t0 = time.perf_counter()
    subprocess.run(command, cwd=code, env=env, check=True)
    wall = time.perf_counter() - t0
    if len(read_jsonl(results)) == len(rows):
        return  # nothing was left to run: no invocation to time
    with (args.out / "sides.jsonl").open("a") as f:
        f.write(json.dumps({"side": label, "rev": sha, "sets": sets, "wall_s": wall,
                            "at": time.strftime("%Y-%m-%d %H:%M:%S")}) + "\n")  # fmt: skip


def report(out: Path) -> bool:
    """Print the verdict table and each side's time; True when it passes."""
    frames = {s: pd.DataFrame(read_jsonl(out / f"{s}.jsonl")) for s in SIDES}
    for side, df in frames.items():
        if len(df):
            revs = ", ".join(sorted({r[:10] for r in df["rev"]}))
            sets = df["sets"].iloc[0] or "defaults"
            print(
                f"{side}: {len(df)} runs of {revs} ({sets}); per run: median "
                f"{df['seconds'].median():.0f} s wall; CPU {df['cpu_seconds'].sum() / 60:.1f} min "
                f"over the {df['cpu_seconds'].notna().sum()} runs timed here"
            )
    for row in read_jsonl(out / "sides.jsonl"):
        print(f"  {row['side']} invocation at {row['at']}: {row['wall_s'] / 60:.1f} min wall")
    if not all(len(df) for df in frames.values()):
        print("no pairs yet: a side has no runs")
        return False
    timed = paired(frames["before"], frames["after"], "cpu_seconds").dropna(subset=["d"])
    if len(timed):  # the trial-level speed on a loaded machine: CPU time of the same runs
        ratio = (timed["after"] / timed["before"]).median()
        print(
            f"trial CPU time, after / before, over the {len(timed)} runs both sides timed: "
            f"median {ratio:.2f} ({timed['before'].sum() / 60:.1f} -> "
            f"{timed['after'].sum() / 60:.1f} CPU-min)"
        )
    v = verdict(paired(frames["before"], frames["after"]))
    print("\ntarget UAR in points; d = after - before, paired over (scenario, seed)\n")
    print(table(v))
    return bool(v["pass"].all())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("before", nargs="?")
    p.add_argument("after", nargs="?", default="HEAD")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "equivalence")
    p.add_argument("--resume", action="store_true", help="skip the runs already in --out")
    p.add_argument("--report", action="store_true", help="print the table of --out and stop")
    p.add_argument("--set-before", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--set-after", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--sides", nargs="+", default=list(SIDES), choices=SIDES)
    p.add_argument("--corpora-dir", type=Path, default=ROOT.parent / "shared" / "corpora")
    p.add_argument("--corpus", action="append", help="only these corpora (default: all found)")
    p.add_argument("--cache", type=Path, default=None, help="feature cache (default: emodna's)")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--tasks", nargs="+", default=["arousal", "valence"])
    p.add_argument("--workers", type=int, default=2)
    # the side process's own arguments (run_side)
    for name in ("--side", "--rev", "--code", "--sets", "--results"):
        p.add_argument(name, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.side:
        args.label = args.side
        return run_side(args)
    if not args.report:
        if args.before is None:
            p.error("name the BEFORE revision")
        args.out = args.out.resolve()
        args.out.mkdir(parents=True, exist_ok=True)
        # emodna train --set's reading, from the driver's code (a side imports its own)
        from emodna.cli_options import parse_sets
        from emodna.errors import ConfigError

        sides = {"before": (args.before, args.set_before), "after": (args.after, args.set_after)}
        try:
            sets = {label: parse_sets(sides[label][1]) for label in args.sides}
        except ConfigError as exc:
            p.error(str(exc))
        for label in args.sides:
            drive_side(label, sides[label][0], sets[label], args)
    return 0 if report(args.out) else 1


if __name__ == "__main__":
    sys.exit(main())
