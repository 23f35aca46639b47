"""Part 2 of bench/scale.py: a paper-sized sweep on K nodes, from ``sweep/cost.py``'s model.

Six corpora -> 30 ordered scenarios x 2 tasks x 3 seeds = 180 trials per config,
``--sweep-epochs`` each; CPU-hours from the cost model, with and without the saving of the
Wilcoxon pruning across scenarios, and wall-clock hours on K nodes of C cores at 1 CPU per
trial and ``--efficiency`` (the share of the slots a sweep keeps busy), never under the
longest trial (``sweep.cost.wall_seconds``). The pruning's saving is measured with
``bench/search.py``'s own simulation (TPE + Wilcoxon, a fixed budget of configs run to the
end: units issued / configs x units per config) unless ``--prune-ratio`` gives it.
"""

from __future__ import annotations

import importlib.util
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scale_measure import frames  # noqa: E402

from sweep.cost import CostModel, wall_seconds  # noqa: E402

PAPER_CORPORA = ["CASIA", "EMODB", "EMOVO", "IEMOCAP", "RAVDESS", "SAVEE"]
# clips of the paper's corpora that are not shipped here (IEMOCAP: the 4 classes commonly
# used; its 9-emotion vocabulary has ~7500); the shipped ones are counted from the features
OTHER_SIZES = {"IEMOCAP": 5531, "SAVEE": 480}
MIB = 2**20
TASKS_X_SEEDS = 2 * 3
PAPER_UNITS = 30 * TASKS_X_SEEDS  # scenarios x tasks x seeds: trials per config
SEARCH_UNITS = 12  # bench/search.py: 4 corpora -> 12 arousal scenarios, 1 seed
PRUNE_BUDGET = 40  # configs of each pruning simulation
DEFAULT_RATIO = 0.6  # the pruning ratio when measuring it fails


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


def pruning_ratios(args, workers: list[int]) -> tuple[dict[int, float], str]:
    """Per bench/search.py worker count: the ratio (``--prune-ratio``, else measured), and
    where it came from."""
    if args.prune_ratio is not None:
        return dict.fromkeys(workers, args.prune_ratio), "--prune-ratio"
    try:
        ratios = pruning_ratio(args.prune_reps, PRUNE_BUDGET, workers)
    except Exception as exc:  # the searcher is being edited by others: fall back
        note = f"{DEFAULT_RATIO}, the default: measuring failed ({type(exc).__name__}: {exc})"
        return dict.fromkeys(workers, DEFAULT_RATIO), note
    note = (
        f"measured with bench/search.py's simulation: TPE + Wilcoxon, {PRUNE_BUDGET} configs x "
        f"{SEARCH_UNITS} units run to the end, mean of {args.prune_reps}"
    )
    return ratios, note


def sweep_cost(model: CostModel, sizes: dict, epochs: int) -> tuple[float, float, list]:
    """CPU-seconds of one config (30 scenarios x 2 tasks x 3 seeds), its longest trial, and
    the epoch seconds of each scenario."""
    per_scenario = [
        (s, t, model.epoch(*sizes[s], *sizes[t]))
        for s in PAPER_CORPORA
        for t in PAPER_CORPORA
        if s != t
    ]
    total = sum(e for *_, e in per_scenario) * epochs * TASKS_X_SEEDS
    longest = max(e for *_, e in per_scenario) * epochs
    return total, longest, per_scenario


def search_workers(slots: int) -> int:
    """bench/search.py's parallel slots that match ``slots`` on the paper sweep: the same
    slots per unit of a config (its 12 units per config against the sweep's 180)."""
    return max(1, round(SEARCH_UNITS * slots / PAPER_UNITS))


def paper_sizes(sizes: dict, iemocap: int) -> dict[str, tuple[int, int]]:
    """(clips, frames) of the six corpora: the measured ones, and the others at their size."""
    out = dict(sizes)
    out.update({n: (iemocap if n == "IEMOCAP" else OTHER_SIZES[n], frames(n)) for n in OTHER_SIZES})
    return out


def print_config_cost(model: CostModel, sizes: dict, epochs: int) -> tuple[float, float]:
    """The corpora, their features, and one config's cost; returns (CPU s, longest trial s)."""
    print("corpora: " + ", ".join(f"{n} {sizes[n][0]} x {sizes[n][1]} fr" for n in PAPER_CORPORA))
    mib = {n: sizes[n][0] * 40 * sizes[n][1] * 4 / MIB for n in PAPER_CORPORA}  # float32 MFCCs
    print(
        f"features (40 MFCCs, float32): {sum(mib.values()):.0f} MiB, IEMOCAP {mib['IEMOCAP']:.0f} "
        "of them; the head's object store holds all of them (the driver's ray.put), every "
        "other node one copy of each corpus its trials read"
    )
    config_s, longest_s, per_scenario = sweep_cost(model, sizes, epochs)
    per_scenario.sort(key=lambda r: -r[2])
    print(
        "epoch s per scenario, predicted: "
        + ", ".join(f"{s}->{t} {e:.0f}" for s, t, e in per_scenario[:3])
        + ", ..., "
        + ", ".join(f"{s}->{t} {e:.1f}" for s, t, e in per_scenario[-2:])
    )
    iemocap = sum(e for s, t, e in per_scenario if "IEMOCAP" in (s, t))
    print(
        f"one config = 30 scenarios x 2 tasks x 3 seeds = {PAPER_UNITS} trials x {epochs} "
        f"epochs = {config_s / 3600:.1f} CPU-h ({100 * iemocap / sum(e for *_, e in per_scenario):.0f}% "
        f"of it in the 10 IEMOCAP scenarios); longest trial {longest_s / 3600:.2f} h"
    )
    return config_s, longest_s


def print_extrapolation(
    model: CostModel, sizes: dict, args, ratios: dict[int, float], note: str
) -> None:
    sizes = paper_sizes(sizes, args.iemocap)
    config_s, longest_s = print_config_cost(model, sizes, args.sweep_epochs)

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
                wall_seconds(cpu[k * c], k * c, args.efficiency, longest_s / 3600) for k, c in slots
            ]
            print(
                f"{n:>7} {'yes' if prune else 'no':>7} {cpu_s:>11} | "
                + " ".join(f"{w:>7.1f}" for w in walls)
            )
    print(
        "(K x C: K nodes of C cores; with pruning, CPU-h depends on the slots: the range over the columns)"
    )
