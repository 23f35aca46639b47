"""Which config to use on a scenario: the best one there (chosen with its labels, an upper
bound) and the *honest* one, chosen without the target corpus's labels.

Honest selection is leave-target-corpus-out (LOTO): for a scenario with target T, configs
are ranked on the task's scenarios that do not touch T (neither its source nor its target is
T: a user adapting to an unlabelled T has no labels of T at all), and the best of that
ranking is the choice; its score on the held-out scenario is what a user without T's labels would get.
Label-free signals the trials report (source validation accuracy, target entropy) are
compared the same way. ``sweep.summarize`` puts both into ``summary.md`` and ``best/``;
``bench/results.py`` uses :func:`honest_selection` for its ``sweep_loto`` rows.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from sweep.ranking import (
    SIGNALS,
    completed_units,
    rank_configs,
    scenario_parts,
    score_matrix,
    sort_scenarios,
    tasks_of,
)
from sweep.stats import TIE_DECIMALS


def _choose(values: pd.Series, mode: str, order: list[int]):
    """The config with the best value (ties: the better overall position)."""
    v = values.dropna().astype(float).round(TIE_DECIMALS)
    if v.empty:
        return None
    best = v.max() if mode == "max" else v.min()
    tied = [c for c in v.index if v[c] == best]
    pos = {c: i for i, c in enumerate(order)}
    return min(tied, key=lambda c: pos.get(c, len(pos)))


def best_per_scenario(
    scores: pd.DataFrame, ranking: pd.DataFrame, metric: str, mode: str
) -> pd.DataFrame:
    """The oracle: per scenario the config with the best mean metric (ties: better rank)."""
    order = list(ranking["config_id"])
    rows = []
    for scen in sort_scenarios(scores["scenario"], scenario_parts(scores)):
        sub = scores[scores["scenario"] == scen].set_index("config_id")
        cid = _choose(sub[metric], mode, order)
        r = sub.loc[cid]
        rows.append({"scenario": scen, "config_id": int(cid), **{k: r[k] for k in r.index}})
    return pd.DataFrame(rows)


def honest_selection(
    trials: pd.DataFrame,
    scores: pd.DataFrame,
    ranking: pd.DataFrame,
    metric: str,
    mode: str,
    states: dict[int, str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per scenario, the score of configs picked without looking at that scenario's labels.

    Returns (per_scenario, loto):

    - ``oracle``: the best config of the scenario (uses its target labels);
    - ``overall``: the best config by mean rank over all scenarios (uses every label);
    - ``loto``: leave-target-corpus-out -- for the scenario's task and target corpus T, the
      config ranked best on that task's scenarios that do not touch T, among the configs
      that ran the scenario;
    - ``val_acc``: the config with the highest source validation accuracy in the scenario;
    - ``entropy``: the config with the lowest mean prediction entropy on the target.

    ``loto``: one row per (task, held-out target): the config chosen and its score.
    """
    order = list(ranking["config_id"])
    matrix = score_matrix(scores, metric)
    signal = {s: score_matrix(scores, s) if s in scores else None for s in SIGNALS}
    top = order[0] if order else None
    loto_choice: dict[tuple[str, str], int | None] = {}
    loto_rows = []
    parts = scenario_parts(scores)
    for task in tasks_of(parts[s][2] for s in matrix.columns):
        scen_t = [s for s in matrix.columns if parts[s][2] == task]
        for target in sorted({parts[s][1] for s in scen_t}):
            held = [s for s in scen_t if parts[s][1] == target]
            # scenarios that do not touch T: no labels of T, as a target or as a source
            away = (trials["target"] != target) & (trials["source"] != target)
            rest = trials[(trials["task"] == task) & away]
            choice = None
            if len(rest) and len(completed_units(rest, metric)):
                sub = rank_configs(rest, metric, mode, states=states)
                ran = set(matrix.index[matrix[held].notna().any(axis=1)])
                for cid in sub["config_id"]:
                    if cid in ran and not math.isnan(
                        sub.set_index("config_id").loc[cid, "mean_rank"]
                    ):
                        choice = int(cid)
                        break
            loto_choice[(task, target)] = choice
            oracle = [matrix[s].max() if mode == "max" else matrix[s].min() for s in held]
            got = [matrix.loc[choice, s] if choice is not None else float("nan") for s in held]
            loto_rows.append(
                {
                    "task": task,
                    "held_out_target": target,
                    "n_scenarios": len(held),
                    "selected_config": choice,
                    "score": float(np.nanmean(got))
                    if choice is not None and not np.all(np.isnan(got))
                    else float("nan"),
                    "oracle": float(np.nanmean(oracle)),
                }
            )
    rows = []
    for scen in matrix.columns:
        col = matrix[scen]
        if col.dropna().empty:
            continue
        source, target, task = parts[scen]
        oracle_c = _choose(col, mode, order)
        row = {
            "scenario": scen,
            "task": task,
            "target": target,
            "oracle_config": oracle_c,
            "oracle": float(col[oracle_c]),
        }
        row["overall_config"] = top
        row["overall"] = float(col.get(top, float("nan"))) if top is not None else float("nan")
        lc = loto_choice.get((task, target))
        row["loto_config"] = lc
        row["loto"] = float(col[lc]) if lc is not None else float("nan")
        for name, sig, sig_mode in (
            ("val_acc", "source_val_acc", "max"),
            ("entropy", "target_entropy", "min"),
        ):
            m = signal.get(sig)
            c = (
                _choose(m[scen].reindex(col.dropna().index), sig_mode, order)
                if m is not None and scen in m
                else None
            )
            row[f"{name}_config"] = c
            row[name] = float(col[c]) if c is not None else float("nan")
        rows.append(row)
    per = pd.DataFrame(rows)
    loto = pd.DataFrame(loto_rows)
    if not loto.empty:
        loto["gap"] = loto["score"] - loto["oracle"]
    return per, loto


def selection_table(per: pd.DataFrame) -> pd.DataFrame:
    """Per task (and all): mean of each selection over scenarios, and its gap to the oracle."""
    rows = []
    groups = [(t, per[per["task"] == t]) for t in tasks_of(per["task"])] if len(per) else []
    if len(groups) > 1:
        groups.append(("all", per))
    for name, g in groups:
        row = {"task": name, "n_scenarios": len(g), "oracle": float(g["oracle"].mean())}
        for sel in ("overall", "loto", "val_acc", "entropy"):
            ok = g[sel].notna()
            row[sel] = float(g.loc[ok, sel].mean()) if ok.any() else float("nan")
            row[f"{sel}_gap"] = (
                float((g.loc[ok, sel] - g.loc[ok, "oracle"]).mean()) if ok.any() else float("nan")
            )
            row[f"{sel}_n"] = int(ok.sum())
        rows.append(row)
    return pd.DataFrame(rows)
