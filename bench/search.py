"""Benchmark: how many scenario evaluations does TPE + cross-scenario pruning need?

A cheap synthetic objective stands in for training: a config's score on a scenario is
``f(config) * gain_s + offset_s + noise`` -- a smooth function of the Emo-DNA
hyperparameters, a per-scenario difficulty (offset) and sensitivity (gain), and seed noise.

Random search with the full budget B (default 40 configs x 12 scenarios = 480 units) sets
the bar: the best mean over scenarios it finds. ScenarioSearcher with TPE and the
Wilcoxon pruner then runs until one of its completed configs reaches that bar; the number
of units (scenario evaluations) it issued by then, over random's 480, is the ratio.
TPE without pruning is shown for reference. Units of a pruned config that were already
running still count (they used the compute). The searcher is driven directly, without
Ray, through a small event simulation with ``--workers`` parallel slots.

    python bench/search.py [--reps 20] [--budget 40] [--workers 1] [--seed 0]
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import optuna
from optuna.trial import TrialState

from sweep.search import ScenarioSearcher
from sweep.space import load_space

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ["EMODB", "CASIA", "EMOVO", "RAVDESS"]  # 4 corpora -> 12 ordered pairs


def true_score(c: dict) -> float:
    """A smooth landscape over the emodna.yaml parameters.

    Under random sampling: median 0.63, 90th percentile 0.72, 1 in 40 above 0.75, max 0.80.
    """
    lg = math.log10
    pen = (
        0.04 * (lg(c["tau_p"]) + 2.0) ** 2
        + 0.03 * (lg(c["tau_s"]) + 1.7) ** 2
        + 0.06 * (lg(c["alpha_1"]) + 1.0) ** 2
        + 0.12 * (lg(c["lr"]) + 2.8) ** 2
        + 8.00 * (c["ema_lambda"] - 0.99) ** 2
    )
    m = [lg(x) for x in c["mmd_multipliers"]]  # sorted, log2-ish spread around 1
    pen += 0.30 * (sum(m) / len(m)) ** 2 + 0.10 * (m[-1] - m[0] - 1.2) ** 2
    return 0.80 - pen


class Objective:
    """Per-scenario difficulty and sensitivity, per-evaluation noise (seeded)."""

    def __init__(self, scenarios: list[dict], seed: int, noise: float = 0.02):
        rng = np.random.default_rng(seed)
        keys = [f"{s['source']}-{s['target']}-{s['task']}" for s in scenarios]
        self.offset = dict(zip(keys, rng.normal(0.0, 0.08, len(keys)), strict=True))
        self.gain = dict(zip(keys, rng.uniform(0.7, 1.3, len(keys)), strict=True))
        self.noise = noise
        self.rng = np.random.default_rng(seed + 1)

    def __call__(self, config: dict) -> float:
        key = f"{config['source']}-{config['target']}-{config['task']}"
        return float(
            0.6
            + (true_score(config) - 0.6) * self.gain[key]
            + self.offset[key]
            + self.rng.normal(0.0, self.noise)
        )


def run(
    searcher: ScenarioSearcher, objective: Objective, workers: int, bar: float | None, seed: int
):
    """Event simulation: ``workers`` slots, unit durations U(0.5, 1.5).

    Returns (units issued when a told config first reached ``bar`` or None, best told mean,
    units issued in all).
    """
    rng = np.random.default_rng(seed)
    ids = (f"u{i}" for i in itertools.count())
    clock, events, running = 0.0, [], 0
    reached = None
    finished = False
    while True:
        while running < workers and not finished:
            tid = next(ids)
            cfg = searcher.suggest(tid)
            if cfg == "FINISHED":
                finished = True
            if not isinstance(cfg, dict):
                break
            heapq.heappush(events, (clock + rng.uniform(0.5, 1.5), tid, objective(cfg)))
            running += 1
        if not events:
            break
        clock, tid, value = heapq.heappop(events)
        running -= 1
        searcher.on_trial_complete(tid, {searcher.metric: value})
        if bar is not None and reached is None:
            best = _best(searcher)
            if best is not None and best >= bar:
                reached = searcher.n_units_issued
                break
    return reached, _best(searcher), searcher.n_units_issued


def _best(searcher: ScenarioSearcher) -> float | None:
    complete = searcher.study.get_trials(deepcopy=False, states=[TrialState.COMPLETE])
    told = [t.values[0] for t in complete]
    return max(told) if told else None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--budget", type=int, default=40, help="configs for random search")
    ap.add_argument(
        "--tpe-budget", type=int, default=None, help="config cap for TPE (default 2 x budget)"
    )
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--p-threshold", type=float, default=0.1, help="WilcoxonPruner p_threshold")
    ap.add_argument(
        "--wave",
        type=int,
        default=None,
        help="units a pruned config issues before its first report",
    )
    args = ap.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.ERROR)

    space = load_space(ROOT / "search_spaces" / "emodna.yaml")
    space.seeds = [0]
    scenarios = [s for s in space.scenarios(CORPORA) if s["task"] == "arousal"]
    n_units = len(scenarios) * len(space.seeds)
    tpe_budget = args.tpe_budget or 2 * args.budget
    print(
        f"{len(scenarios)} scenarios x {len(space.seeds)} seed; random: {args.budget} configs = "
        f"{args.budget * n_units} units; TPE cap {tpe_budget} configs; {args.workers} worker(s); "
        f"Wilcoxon p_threshold {args.p_threshold}; wave {args.wave or 'off (all units at once)'}\n"
    )
    header = f"{'rep':>3} {'random best':>11} {'rand units':>10} | {'TPE+prune units':>15} {'ratio':>6} {'pruned':>7} | {'TPE units':>9} {'ratio':>6}"
    print(header)
    print("-" * len(header))
    ratios, ratios_np, t0 = [], [], time.time()
    fixed = []  # (issued with pruning, issued without, best with, best without), same budget
    for rep in range(args.reps):
        seed = args.seed + 1000 * rep

        def make(sampler, budget, prune, name, seed=seed, wave=None):
            # TPE's start-up trials are random draws: seed them apart from the random run,
            # or the first ten configs of both would be the same.
            return ScenarioSearcher(
                space,
                scenarios,
                study_name=name,
                storage=None,
                sampler=sampler,
                budget=budget,
                seed=seed + (sampler == "tpe"),
                prune=prune,
                p_threshold=args.p_threshold,
                wave=wave,
            )

        rnd = make("random", args.budget, False, f"random-{rep}")
        _, bar, rnd_units = run(rnd, Objective(scenarios, seed), args.workers, None, seed)
        tpe = make("tpe", tpe_budget, True, f"tpe-prune-{rep}", wave=args.wave)
        reached, _, _ = run(tpe, Objective(scenarios, seed), args.workers, bar, seed)
        tnp = make("tpe", tpe_budget, False, f"tpe-{rep}")
        reached_np, _, _ = run(tnp, Objective(scenarios, seed), args.workers, bar, seed)
        # the same budget of configs with and without pruning: units issued, best config found
        _, best_p, issued_p = run(
            make("tpe", args.budget, True, f"fix-p-{rep}", wave=args.wave),
            Objective(scenarios, seed), args.workers, None, seed,
        )  # fmt: skip
        _, best_n, issued_n = run(
            make("tpe", args.budget, False, f"fix-n-{rep}"),
            Objective(scenarios, seed), args.workers, None, seed,
        )  # fmt: skip
        fixed.append((issued_p, issued_n, best_p, best_n))
        r = reached / rnd_units if reached else math.inf
        r_np = reached_np / rnd_units if reached_np else math.inf
        ratios.append(r)
        ratios_np.append(r_np)
        fmt = lambda u: f"{u:>15}" if u else f"{'not reached':>15}"  # noqa: E731
        print(
            f"{rep:>3} {bar:>11.4f} {rnd_units:>10} | {fmt(reached)} {r:>6.2f} "
            f"{len(tpe.pruned_config_ids):>3}/{tpe.n_asked:<3} | {fmt(reached_np)[-9:]} {r_np:>6.2f}"
        )
    print("-" * len(header))

    def summary(rs):
        finite = [x for x in rs if math.isfinite(x)]
        med = statistics.median(rs)
        mean = statistics.mean(finite) if finite else math.inf
        return f"mean {mean:.2f} (reached {len(finite)}/{len(rs)}), median {med:.2f}"

    print(
        f"TPE + Wilcoxon pruning: units to reach random's best / random's units: {summary(ratios)}"
    )
    print(
        f"TPE without pruning:    units to reach random's best / random's units: {summary(ratios_np)}"
    )
    issued_p, issued_n, best_p, best_n = (statistics.mean(x) for x in zip(*fixed, strict=True))
    print(
        f"Same budget ({args.budget} configs): pruning issues {issued_p:.0f} of {issued_n:.0f} "
        f"units (saves {100 * (1 - issued_p / issued_n):.0f}%); best config's mean "
        f"{best_p:.4f} with pruning, {best_n:.4f} without (mean over reps)"
    )
    print(f"({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
