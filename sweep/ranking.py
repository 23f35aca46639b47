"""The trials table of a sweep, per-scenario scores, and the ranking of configs across
scenarios (the definitions are in :mod:`sweep.summarize`'s docstring).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from emodna.errors import ConfigError
from sweep import TRIALS
from sweep.stats import TIE_DECIMALS

SCORES = ("target_war", "target_uar", "target_f1_pos", "target_f1_macro")
# How tables name them (summary.md, bench/results.py): F1 pos is the paper's F1 (label 1 =
# high arousal / positive valence), F1 macro the mean over both classes
SCORE_LABELS = {
    "target_war": "WAR",
    "target_uar": "UAR",
    "target_f1_pos": "F1 pos",
    "target_f1_macro": "F1 macro",
}
SIGNALS = ("source_val_acc", "target_entropy")
TASK_ORDER = ("arousal", "valence")


def scenario_name(source: str, target: str, task: str) -> str:
    """``EMODB-CASIA-arousal``: a scenario's name in tables and export file names."""
    return f"{source}-{target}-{task}"


# A scenario's name is a label for tables and file names, never parsed back: corpus names
# may hold dashes (CREMA-D), so where source, target and task are needed they come from
# the columns every table carries, through this mapping.
Parts = dict[str, tuple[str, str, str]]  # scenario name -> (source, target, task)


def scenario_parts(*tables: pd.DataFrame, scenarios=()) -> Parts:
    """Each scenario name's (source, target, task), from tables with ``scenario``,
    ``source``, ``target`` and ``task`` columns and from scenario dicts (a space's)."""
    parts: Parts = {}
    for t in tables:
        if len(t):
            parts.update(
                zip(
                    t["scenario"],
                    zip(t["source"], t["target"], t["task"], strict=True),
                    strict=True,
                )
            )
    for sc in scenarios:
        parts[scenario_name(sc["source"], sc["target"], sc["task"])] = (
            sc["source"],
            sc["target"],
            sc["task"],
        )
    return parts


def _task_key(task: str) -> tuple:
    return (TASK_ORDER.index(task) if task in TASK_ORDER else len(TASK_ORDER), task)


def sort_scenarios(names, parts: Parts) -> list[str]:
    """Scenarios by task (arousal first), then source, then target."""
    return sorted(set(names), key=lambda n: (*_task_key(parts[n][2]), parts[n][0], parts[n][1]))


def decode_value(value):
    """A value of a ``hp_`` column: lists and dicts are stored JSON-encoded."""
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return to_plain(value)


def to_plain(value):
    """numpy / pandas scalars -> Python ones (YAML, JSON); NaN -> None."""
    if isinstance(value, dict):
        return {
            (to_plain(k) if isinstance(k, int | np.integer) else str(k)): to_plain(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | np.ndarray):
        return [to_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def load_trials(folder: str | Path) -> pd.DataFrame:
    """``trials.parquet`` of a sweep folder, with a ``scenario`` column added."""
    path = Path(folder) / TRIALS
    if not path.exists():
        raise ConfigError(
            f"{path}: no trials table; give a sweep folder written by sweep/run.py "
            "(it appears once the first trial finishes)"
        )
    try:
        trials = pd.read_parquet(path)
    except Exception as exc:
        raise ConfigError(f"{path}: not a readable Parquet file ({exc})") from exc
    return prepare_trials(trials, str(path))


def prepare_trials(trials: pd.DataFrame, origin: str = "trials") -> pd.DataFrame:
    need = {"config_id", "status", "source", "target", "task", "seed"}
    missing = sorted(need - set(trials.columns))
    if missing:
        raise ConfigError(
            f"{origin}: columns {', '.join(missing)} missing; not a sweep's trials table"
        )
    trials = trials.copy()
    if "method" not in trials:
        trials["method"] = "emodna"
    if "trial_id" not in trials:
        trials["trial_id"] = [f"row{i}" for i in range(len(trials))]
    trials["config_id"] = trials["config_id"].astype("int64")
    trials["seed"] = trials["seed"].astype("int64")
    trials["scenario"] = [
        scenario_name(s, t, k)
        for s, t, k in zip(trials["source"], trials["target"], trials["task"], strict=True)
    ]
    return trials


def completed_units(trials: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Completed rows with a finite metric, one per (config, scenario, seed) (the first)."""
    if metric not in trials:
        return trials.iloc[0:0]
    ok = (trials["status"] == "completed") & np.isfinite(
        pd.to_numeric(trials[metric], errors="coerce")
    )
    return trials[ok].drop_duplicates(["config_id", "scenario", "seed"], keep="first")


def scenario_scores(trials: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One row per (config, scenario): mean and std over seeds of the metric and the scores.

    Columns: config_id, scenario, source, target, task, method, n_seeds, seeds, and for
    each of the metric, WAR/UAR/F1 and the label-free signals present: ``<name>`` (mean)
    and ``<name>_std`` (sample std, NaN with one seed). Also ``best_seed`` and
    ``best_trial_id``: the seed whose metric was best (its checkpoint is exported).
    """
    done = completed_units(trials, metric)
    columns = [c for c in dict.fromkeys((metric, *SCORES, *SIGNALS)) if c in done]
    rows = []
    for (cid, scen), g in done.groupby(["config_id", "scenario"], sort=False):
        first = g.iloc[0]
        row = {
            "config_id": int(cid),
            "scenario": scen,
            "source": first["source"],
            "target": first["target"],
            "task": first["task"],
            "method": first["method"],
            "n_seeds": len(g),
            "seeds": sorted(int(s) for s in g["seed"]),
        }
        for c in columns:
            v = pd.to_numeric(g[c], errors="coerce").astype(float)
            row[c] = float(v.mean())
            row[f"{c}_std"] = float(v.std(ddof=1)) if v.notna().sum() > 1 else float("nan")
        # kept for pick_best_seed: the seeds' values and trial ids
        row["_vals"] = pd.to_numeric(g[metric], errors="coerce").astype(float).to_numpy()
        row["_trials"] = [str(t) for t in g["trial_id"]]
        row["_seeds"] = [int(x) for x in g["seed"]]
        rows.append(row)
    if not rows:
        return pd.DataFrame(
            columns=[
                "config_id",
                "scenario",
                "source",
                "target",
                "task",
                "method",
                "n_seeds",
                "seeds",
                "_vals",
                "_trials",
                "_seeds",
                metric,
            ]
        )
    return pd.DataFrame(rows)


def pick_best_seed(frame: pd.DataFrame, mode: str) -> pd.DataFrame:
    """Add best_seed / best_trial_id (per row: the seed with the best metric)."""
    frame = frame.copy()
    best_seed, best_trial = [], []
    for vals, tids, seeds in zip(frame["_vals"], frame["_trials"], frame["_seeds"], strict=True):
        i = int(np.nanargmax(vals) if mode == "max" else np.nanargmin(vals))
        best_seed.append(int(seeds[i]))
        best_trial.append(str(tids[i]))
    frame["best_seed"] = best_seed
    frame["best_trial_id"] = best_trial
    return frame.drop(columns=["_vals", "_trials", "_seeds"])


def score_matrix(
    scores: pd.DataFrame, metric: str, configs=None, scenarios: list[str] | None = None
) -> pd.DataFrame:
    """configs x scenarios of the metric's mean over seeds (NaN where not covered)."""
    if scores.empty:
        m = pd.DataFrame(dtype=float)
    else:
        m = scores.pivot(index="config_id", columns="scenario", values=metric).astype(float)
    configs = sorted(m.index) if configs is None else list(configs)
    scenarios = (
        sort_scenarios(m.columns, scenario_parts(scores)) if scenarios is None else list(scenarios)
    )
    return m.reindex(index=configs, columns=scenarios)


def rank_matrix(matrix: pd.DataFrame, mode: str = "max") -> pd.DataFrame:
    """Per scenario (column), rank the configs that have a score: 1 = best, ties averaged."""
    ranks = pd.DataFrame(np.nan, index=matrix.index, columns=matrix.columns)
    for col in matrix.columns:
        v = matrix[col].dropna()
        if v.empty:
            continue
        key = np.round(v.to_numpy(dtype=float), TIE_DECIMALS)  # float noise is not a difference
        ranks.loc[v.index, col] = stats.rankdata(-key if mode == "max" else key, method="average")
    return ranks


def _better(mode: str):
    return (lambda a, b: a > b) if mode == "max" else (lambda a, b: a < b)


def rank_configs(
    trials: pd.DataFrame,
    metric: str = "target_uar",
    mode: str = "max",
    *,
    states: dict[int, str] | None = None,
    pruned_after: dict[int, int] | None = None,
    scenarios: list[dict] | None = None,
    n_units: int | None = None,
) -> pd.DataFrame:
    """The ranking across scenarios, one row per config, best first.

    ``trials``: the rows of ``trials.parquet`` (see :func:`prepare_trials`).
    ``states``: config_id -> the study's state (``complete``, ``pruned``, ``running``,
    ``failed``); a ``pruned`` config is marked so. ``scenarios``: every scenario of the
    sweep as ``dict(source=, target=, task=)`` (default: those in ``trials``). ``n_units``: units per config (default: the
    scenarios times the seeds seen).

    Columns: rank, config_id, method, status (complete | incomplete | pruned), note,
    mean_rank, mean_metric (over covered scenarios), mean_metric_<task>, worst_scenario,
    worst_metric, n_scenarios, n_scenarios_total, n_units, n_units_expected, metric, the
    config's ``hp_`` columns, and the paired comparison with the rank-1 config on the
    scenarios both cover: vs_leader_diff (mean of this minus the leader; NaN for the
    leader), vs_leader_better (scenarios where this one is better), vs_leader_shared.
    """
    if mode not in ("max", "min"):
        raise ConfigError(f"mode must be 'max' or 'min', got {mode!r}")
    trials = trials if "scenario" in trials else prepare_trials(trials)
    states = states or {}
    pruned_after = pruned_after or {}
    scores = scenario_scores(trials, metric)
    parts = scenario_parts(trials, scenarios=scenarios or ())
    all_scen = sort_scenarios(parts, parts)
    configs = sorted(set(int(c) for c in trials["config_id"]) | set(states))
    matrix = score_matrix(scores, metric, configs, all_scen)
    ranks = rank_matrix(matrix, mode)
    seeds = sorted(set(int(s) for s in trials["seed"]))
    expected = n_units or len(all_scen) * max(1, len(seeds))
    done = completed_units(trials, metric)
    hp_cols = [c for c in trials.columns if c.startswith("hp_")]
    worse_first = _better("min" if mode == "max" else "max")
    rows = []
    for cid in configs:
        mine = trials[trials["config_id"] == cid]
        units = int((done["config_id"] == cid).sum())
        errors = int((mine["status"] == "error").sum())
        diverged = int((mine["status"] == "diverged").sum())
        state = states.get(cid)
        row_m = matrix.loc[cid]
        covered = row_m.dropna()
        if state == "pruned":
            status = "pruned"
            after = pruned_after.get(cid)
            note = (
                f"pruned after {after} unit{'s' if after != 1 else ''}"
                if after is not None
                else "pruned"
            )
        elif units >= expected:
            status, note = "complete", ""
        else:
            status = "incomplete"
            bits = [f"{expected - units} of {expected} units missing"]
            if errors:
                bits.append(f"{errors} failed")
            if diverged:
                bits.append(f"{diverged} diverged")
            if state == "running":
                bits.append("running")
            note = ", ".join(bits)
        worst_s, worst_v = None, float("nan")
        for s, v in covered.items():
            if worst_s is None or worse_first(v, worst_v):
                worst_s, worst_v = s, float(v)
        row = {
            "config_id": int(cid),
            "method": str(mine["method"].iloc[0]) if len(mine) else "",
            "status": status,
            "note": note,
            "mean_rank": float(ranks.loc[cid].mean()) if len(covered) else float("nan"),
            "mean_metric": float(covered.mean()) if len(covered) else float("nan"),
        }
        for task in tasks_of(parts[s][2] for s in all_scen):
            cols = [s for s in covered.index if parts[s][2] == task]
            row[f"mean_metric_{task}"] = float(covered[cols].mean()) if cols else float("nan")
        row.update(
            worst_scenario=worst_s or "",
            worst_metric=worst_v,
            n_scenarios=int(len(covered)),
            n_scenarios_total=len(all_scen),
            n_units=units,
            n_units_expected=int(expected),
            metric=metric,
        )
        for c in hp_cols:
            vals = mine[c].dropna()
            row[c] = vals.iloc[0] if len(vals) else None
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    sign = -1.0 if mode == "max" else 1.0
    table["_group"] = (table["status"] != "complete").astype(int)
    table["_score"] = sign * table["mean_metric"].round(TIE_DECIMALS)
    table = table.sort_values(
        ["_group", "mean_rank", "_score", "config_id"], na_position="last", kind="mergesort"
    )
    table = table.drop(columns=["_group", "_score"]).reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    # Paired with the rank-1 config on the scenarios both cover: an incomplete or pruned
    # config's mean can beat the leader's only because it covers other scenarios.
    leader = table["config_id"].iloc[0]
    diffs, better, shared = [], [], []
    for cid in table["config_id"]:
        both = matrix.loc[[cid, leader]].dropna(axis=1)
        d = (both.loc[cid] - both.loc[leader]).round(TIE_DECIMALS)
        own = cid == leader
        diffs.append(float("nan") if own or d.empty else float(d.mean()))
        better.append(0 if own else int((d > 0).sum() if mode == "max" else (d < 0).sum()))
        shared.append(0 if own else int(both.shape[1]))
    table["vs_leader_diff"], table["vs_leader_better"], table["vs_leader_shared"] = (
        diffs,
        better,
        shared,
    )
    return table


def tasks_of(tasks) -> list[str]:
    """The distinct tasks, arousal first."""
    return sorted(set(tasks), key=_task_key)
