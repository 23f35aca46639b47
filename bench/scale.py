"""Scale on paper and in simulation: what a paper-sized sweep costs, and how it spreads.

    python bench/scale.py [--corpora-dir ../shared/corpora] [--cache DIR] [--epochs 2]
                          [--sweep-epochs 30] [--configs 20 50 100] [--nodes 1 4 16]
                          [--cores 2 16] [--efficiency 0.85] [--prune-ratio R]
                          [--iemocap 5531] [--clock cpu|wall] [--skip-measure]
                          [--skip-cluster] [--sim tune|tasks]

Three parts, each printed as a table, each in its own module (whose docstring defines what
it prints):

1. **Measured epoch times** (``bench/scale_measure.py``): ``emodna.train.fit`` per epoch on
   real features at one thread, and ``sweep/cost.py``'s cost model fitted to them, on the
   wall and on the CPU clock. The extrapolation uses the CPU fit unless ``--clock wall``;
   ``--skip-measure --model A B C`` gives the model instead.
2. **A paper-sized sweep on K nodes** (``bench/scale_extrapolate.py``): CPU-hours and
   wall-clock hours of 30 scenarios x 2 tasks x 3 seeds per config from that model, with and
   without the Wilcoxon pruning's saving.
3. **A three-node Ray cluster on this machine** (``bench/scale_simulate.py``): the real
   sweep driver (``--sim tune``) or plain Ray tasks (``--sim tasks``) on a private
   ``ray.cluster_utils.Cluster``; where trials ran and where the corpora's objects are. The
   trials are watched through the trainable's hook (``$EMODNA_TRIAL_HOOK``), not patched.

The cost model is the one the sweep's plan uses (``sweep/cost.py``, ``sweep/plan.py``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scale_extrapolate import (  # noqa: E402
    OTHER_SIZES,
    print_extrapolation,
    pruning_ratios,
    search_workers,
)
from scale_measure import fit_models, measure, print_measured, shipped_sizes  # noqa: E402
from scale_simulate import simulate, simulate_in_child  # noqa: E402

from sweep.cost import CostModel  # noqa: E402


def parse_args(argv=None) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
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
    return ap, ap.parse_args(argv)


def main(argv=None) -> int:
    ap, args = parse_args(argv)
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
        model, sizes = CostModel(*args.model), shipped_sizes()
        print(f"  (skipped; --model {args.model})")
    else:
        rows, sizes = measure(args.corpora_dir, args.cache, args.epochs)
        models = fit_models(rows)
        print_measured(rows, models)
        model = models[args.clock]
        print(f"extrapolating with the {args.clock} fit (--clock)")

    print(
        f"\n== 2. A paper-sized sweep: 6 corpora, 30 scenarios x 2 tasks x 3 seeds, {args.sweep_epochs} epochs"
    )
    workers = sorted({search_workers(k * c) for k in args.nodes for c in args.cores})
    ratios, note = pruning_ratios(args, workers)
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
