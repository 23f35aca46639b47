"""The paper's Tables 2 and 3 (one per task): rows are the source corpora and ``Average``,
columns the configs or methods compared, each cell WAR and F1 of the positive class (the F1
the paper reports). One builder for ``summary.md`` and the benches (``bench/paper_tables.py``).

A cell is read from runs, one row per (config or method, scenario, seed):

* the number is the mean over the row's scenarios (a source's targets, or every scenario of
  the task for ``Average``) of each scenario's mean over seeds;
* ``±`` is the sample standard deviation over seeds of that seed's mean over the row's
  scenarios: how much the table's number moves when the whole table is rerun with another
  seed. No ``±`` with one seed;
* ``*``: the config or method misses some of the row's scenarios (the mean is over the ones
  it has).
"""

from __future__ import annotations

import math

import pandas as pd

from sweep.markdown import md_table, pm

METRICS = {"target_war": "WAR", "target_f1_pos": "F1 pos"}
SCENARIO = ["source", "target"]


def _cell(runs: pd.DataFrame, metric: str) -> tuple[float, float]:
    """(mean over scenarios of the mean over seeds, std over seeds of the mean over scenarios)."""
    values = pd.to_numeric(runs[metric], errors="coerce").astype(float)
    by_scenario = values.groupby([runs[c] for c in SCENARIO], sort=False)
    per_scenario = pd.Series([g.mean() for _, g in by_scenario], dtype=float)
    per_seed = values.groupby(runs["seed"]).mean().dropna()
    std = float(per_seed.std(ddof=1)) if len(per_seed) > 1 else math.nan
    return float(per_scenario.mean()), std


def paper_cells(
    runs: pd.DataFrame, task: str, columns: list[tuple[str, object]], key: str = "config_id"
) -> pd.DataFrame:
    """The cells of one table: index the task's sources (sorted) and ``Average``; columns
    (label, ``WAR`` or ``F1 pos``) for each (label, value of ``key``) of ``columns``; each cell
    ``mean ± std`` in %, ``*`` where the column misses some of the row's scenarios, ``–``
    where it has none (see the module's docstring)."""
    sub = runs[runs["task"] == task]
    rows = {src: sub[sub["source"] == src] for src in sorted(sub["source"].unique())}
    rows["Average"] = sub
    cells = {}
    for label, value in columns:
        for metric, name in METRICS.items():
            col = []
            for of_row in rows.values():
                mine = of_row[of_row[key] == value]
                if metric not in mine or mine.empty:
                    col.append("–")
                    continue
                want = set(zip(*(of_row[c] for c in SCENARIO), strict=True))
                star = "" if set(zip(*(mine[c] for c in SCENARIO), strict=True)) == want else "*"
                col.append(pm(*_cell(mine, metric)) + star)
            cells[(label, name)] = col
    return pd.DataFrame(cells, index=pd.Index(list(rows), name="source"))


def paper_table(
    runs: pd.DataFrame, task: str, columns: list[tuple[str, object]], key: str = "config_id"
) -> str:
    """:func:`paper_cells` as a pipe table, one column per label and score (``Average`` bold)."""
    cells = paper_cells(runs, task, columns, key)
    header = ["source", *(f"{label} {name}" for label, name in cells.columns)]
    rows = [["**Average**" if src == "Average" else src, *cells.loc[src]] for src in cells.index]
    return md_table(header, rows)
