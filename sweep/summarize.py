"""Summarize a sweep folder: ranking across scenarios, honest selection, exports, report.

    emodna summarize runs/NAME            # or: python -m sweep.summarize runs/NAME

Reads files only -- ``trials.parquet``, ``sweep.json``, the search-space file, the Optuna
study in its storage and the trial folders' checkpoints -- and needs neither Ray nor a
finished sweep: on a sweep that is still running the summary is written all the same and
marked *partial*. It writes into the sweep folder:

- ``summary.md``: the ranking, the Friedman test and critical-difference diagram, the best
  config per scenario, the honest-selection table, the paper's Tables 2 and 3 (arousal,
  valence) for the top configs and for every method, and the plots;
- ``ranking.parquet``: one row per config (the ranking table, hyperparameters included);
- ``best/<SOURCE>-<TARGET>-<task>.yaml`` (+ ``.pt``): the best config of each scenario, and
  ``best/overall.yaml`` (+ ``.pt``): the best config by mean rank. Each YAML is a complete
  :class:`emodna.train.TrainConfig` plus an ``origin`` mapping (ignored by training) that
  says where it came from; ``emodna train --config`` accepts it as it is, and the ``.pt``
  beside it (the trial's checkpoint) is what ``emodna predict`` loads;
- ``plots/heatmap.png``, ``plots/hyperparameters.png``, ``plots/critical_difference.png``.

Definitions (the report states them too):

- a config's *score* on a scenario is its metric's mean over the seeds that completed;
- in each scenario the configs that have a score there are ranked, 1 = best, ties get
  the mean of the ranks they span; a config's *mean rank* is the mean over the scenarios
  it covers;
- a config is *complete* when every (scenario, seed) unit completed; complete configs come
  first, ordered by mean rank (then mean score); incomplete (running, failed units) and
  pruned configs follow, ordered the same way and marked;
- the Friedman test and the Nemenyi critical difference (Demsar 2006) use the complete
  configs only (a complete block design), ranked among themselves.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy import stats

from emodna.errors import ConfigError, EmodnaError

TRIALS = "trials.parquet"
SETTINGS = "sweep.json"
SCORES = ("target_war", "target_uar", "target_f1")
SIGNALS = ("source_val_acc", "target_entropy")
TASK_ORDER = ("arousal", "valence")
TIE_DECIMALS = 10  # scores equal to 10 decimals tie (means of the same values in another order)
SHORT = {"target_war": "WAR", "target_uar": "UAR", "target_f1": "F1"}

# Nemenyi critical values q_alpha (Demsar 2006, Table 5a): the studentized range statistic
# divided by sqrt(2), for k = 2..10 classifiers. More than 10: computed with scipy.
Q_ALPHA = {
    0.05: (1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164),
    0.10: (1.645, 2.052, 2.291, 2.459, 2.589, 2.693, 2.780, 2.855, 2.920),
}


# ----------------------------------------------------------------------------- trials


def scenario_name(source: str, target: str, task: str) -> str:
    """``EMODB-CASIA-arousal``: a scenario's name in tables and export file names."""
    return f"{source}-{target}-{task}"


def _scenario_key(name: str) -> tuple:
    source, target, task = _split_scenario(name)
    order = TASK_ORDER.index(task) if task in TASK_ORDER else len(TASK_ORDER)
    return (order, task, source, target)


def _split_scenario(name: str) -> tuple[str, str, str]:
    rest, task = name.rsplit("-", 1)
    source, target = rest.rsplit("-", 1)
    return source, target, task


def sort_scenarios(names) -> list[str]:
    """Scenarios by task (arousal first), then source, then target."""
    return sorted(set(names), key=_scenario_key)


def decode_value(value):
    """A value of a ``hp_`` column: lists and dicts are stored JSON-encoded."""
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return _plain(value)


def _plain(value):
    """numpy / pandas scalars -> Python ones (YAML, JSON); NaN -> None."""
    if isinstance(value, dict):
        return {
            (_plain(k) if isinstance(k, int | np.integer) else str(k)): _plain(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(v) for v in value]
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
        # kept for _best_seed: the seeds' values and trial ids
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


def _best_seed(frame: pd.DataFrame, mode: str) -> pd.DataFrame:
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


def score_matrix(scores: pd.DataFrame, metric: str, configs=None, scenarios=None) -> pd.DataFrame:
    """configs x scenarios of the metric's mean over seeds (NaN where not covered)."""
    if scores.empty:
        m = pd.DataFrame(dtype=float)
    else:
        m = scores.pivot(index="config_id", columns="scenario", values=metric).astype(float)
    configs = sorted(m.index) if configs is None else list(configs)
    scenarios = sort_scenarios(m.columns) if scenarios is None else list(scenarios)
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
    scenarios: list[str] | None = None,
    n_units: int | None = None,
) -> pd.DataFrame:
    """The ranking across scenarios, one row per config, best first.

    ``trials``: the rows of ``trials.parquet`` (see :func:`prepare_trials`).
    ``states``: config_id -> the study's state (``complete``, ``pruned``, ``running``,
    ``failed``); a ``pruned`` config is marked so. ``scenarios``: every scenario of the
    sweep (default: those in ``trials``). ``n_units``: units per config (default: the
    scenarios times the seeds seen).

    Columns: rank, config_id, method, status (complete | incomplete | pruned), note,
    mean_rank, mean_metric (over covered scenarios), mean_metric_<task>, worst_scenario,
    worst_metric, n_scenarios, n_scenarios_total, n_units, n_units_expected, metric, and
    the config's ``hp_`` columns.
    """
    if mode not in ("max", "min"):
        raise ConfigError(f"mode must be 'max' or 'min', got {mode!r}")
    trials = trials if "scenario" in trials else prepare_trials(trials)
    states = states or {}
    pruned_after = pruned_after or {}
    scores = scenario_scores(trials, metric)
    all_scen = sort_scenarios(list(trials["scenario"]) + list(scenarios or []))
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
        for task in _tasks_of(all_scen):
            cols = [s for s in covered.index if s.endswith(f"-{task}")]
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
    return table


def _tasks_of(scenarios) -> list[str]:
    tasks = sorted(
        {_split_scenario(s)[2] for s in scenarios},
        key=lambda t: (TASK_ORDER.index(t) if t in TASK_ORDER else 9, t),
    )
    return tasks


# ----------------------------------------------------------------------------- statistics


def friedman(values, mode: str = "max") -> dict:
    """Friedman test over configs (columns) by scenarios (rows, the blocks).

    ``values``: an array [n_scenarios, k_configs] without NaN. Ranks within each scenario
    (1 = best, ties averaged), then the tie-corrected chi-square statistic (the same as
    ``scipy.stats.friedmanchisquare``) and the Iman-Davenport F variant (Demsar 2006).
    Returns dict(k, n, mean_ranks, statistic, pvalue, f_statistic, f_pvalue).
    """
    x = np.asarray(values, dtype=float)
    if x.ndim != 2 or np.isnan(x).any():
        raise ValueError("friedman needs a full 2-D matrix of scenarios x configs")
    n, k = x.shape
    xr = np.round(x, TIE_DECIMALS)
    ranks = np.vstack([stats.rankdata(-r if mode == "max" else r, method="average") for r in xr])
    mean_ranks = ranks.mean(axis=0)
    if k < 3 or n < 2:
        return dict(
            k=k,
            n=n,
            mean_ranks=mean_ranks,
            statistic=float("nan"),
            pvalue=float("nan"),
            f_statistic=float("nan"),
            f_pvalue=float("nan"),
        )
    ties = 0.0
    for r in ranks:
        _, counts = np.unique(r, return_counts=True)
        ties += float((counts * (counts * counts - 1)).sum())
    c = 1.0 - ties / (k * (k * k - 1) * n)
    ssbn = float((ranks.sum(axis=0) ** 2).sum())
    chi2 = (12.0 / (k * n * (k + 1)) * ssbn - 3 * n * (k + 1)) / c if c > 0 else float("nan")
    p = float(stats.chi2.sf(chi2, k - 1)) if math.isfinite(chi2) else float("nan")
    denom = n * (k - 1) - chi2
    ff = (n - 1) * chi2 / denom if math.isfinite(chi2) and denom > 0 else float("nan")
    p_ff = float(stats.f.sf(ff, k - 1, (k - 1) * (n - 1))) if math.isfinite(ff) else float("nan")
    return dict(
        k=k,
        n=n,
        mean_ranks=mean_ranks,
        statistic=float(chi2),
        pvalue=p,
        f_statistic=float(ff),
        f_pvalue=p_ff,
    )


def q_alpha(k: int, alpha: float = 0.05) -> float:
    """Nemenyi's q_alpha for k classifiers (Demsar 2006 Table 5a; scipy beyond k=10)."""
    if k < 2:
        raise ValueError("q_alpha needs at least two classifiers")
    if alpha in Q_ALPHA and k <= 10:
        return Q_ALPHA[alpha][k - 2]
    return float(stats.studentized_range.ppf(1 - alpha, k, 1e6) / math.sqrt(2))


def nemenyi_cd(k: int, n: int, alpha: float = 0.05) -> float:
    """Critical difference of mean ranks: CD = q_alpha * sqrt(k (k + 1) / (6 N))."""
    return q_alpha(k, alpha) * math.sqrt(k * (k + 1) / (6.0 * n))


def cliques(ranks, cd: float) -> list[tuple[int, int]]:
    """Maximal runs i..j (in rank order) whose ranks differ by no more than CD (len >= 2)."""
    r = np.sort(np.asarray(ranks, dtype=float))
    runs = []
    for i in range(len(r)):
        j = i
        while j + 1 < len(r) and r[j + 1] - r[i] <= cd + 1e-12:
            j += 1
        if j > i and not any(a <= i and j <= b for a, b in runs):
            runs.append((i, j))
    return runs


# ----------------------------------------------------------------------------- sweep info


@dataclass
class SweepInfo:
    """What the summary knows about a sweep besides its trials table."""

    folder: Path
    metric: str = "target_uar"
    mode: str = "max"
    settings: dict = field(default_factory=dict)
    space: object | None = None
    scenarios: list[str] | None = None
    seeds: list[int] | None = None
    states: dict[int, str] = field(default_factory=dict)
    pruned_after: dict[int, int] = field(default_factory=dict)
    n_units: int | None = None
    budget: int | None = None
    n_configs: int | None = None
    study_note: str = ""
    partial: list[str] = field(default_factory=list)
    corpora_dir: Path | None = None
    cache: Path | None = None


def _resolve(path_text, folder: Path) -> Path | None:
    if not path_text:
        return None
    p = Path(str(path_text)).expanduser()
    if p.is_absolute():
        return p if p.exists() else None
    for base in (Path.cwd(), folder.parent.parent, folder, folder.parent):
        if (base / p).exists():
            return (base / p).resolve()
    return None


def _open_storage(text: str):
    """An Optuna storage from a URL, a journal file or an SQLite file path (as sweep/run.py)."""
    if "://" in text:
        return text
    p = Path(text).expanduser()
    if p.suffix in (".log", ".jsonl", ".journal"):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(str(p)))
    return f"sqlite:///{p.resolve()}"


def read_study(folder: Path, settings: dict):
    """The sweep's Optuna study, or (None, why not)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = settings.get("storage")
    if storage and "://" not in str(storage):
        resolved = _resolve(storage, folder)
        storage = str(resolved) if resolved else None
    if not storage:
        db = folder / "study.db"
        if not db.exists():
            return None, "no Optuna study found (study.db)"
        storage = str(db)
    try:
        store = _open_storage(str(storage))
        names = [s.study_name for s in optuna.get_all_study_summaries(store)]
        name = folder.name if folder.name in names else (names[0] if len(names) == 1 else None)
        if name is None:
            return None, f"study {folder.name!r} not in {storage}"
        return optuna.load_study(study_name=name, storage=store), ""
    except Exception as exc:  # a locked or foreign database must not stop the summary
        return None, f"study not readable ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})"


def sweep_info(
    folder: str | Path, trials: pd.DataFrame, metric: str | None = None, mode: str | None = None
) -> SweepInfo:
    """Read sweep.json, the space file and the study; decide whether the sweep is partial."""
    folder = Path(folder).resolve()
    info = SweepInfo(folder=folder)
    sfile = folder / SETTINGS
    if sfile.exists():
        try:
            info.settings = json.loads(sfile.read_text())
        except ValueError:
            info.settings = {}
    info.corpora_dir = _resolve(info.settings.get("corpora_dir"), folder)
    info.cache = (
        _resolve(info.settings.get("cache"), folder) if info.settings.get("cache") else None
    )
    space_path = _resolve(info.settings.get("space"), folder)
    if space_path is not None:
        try:
            from sweep.space import load_space

            info.space = load_space(space_path)
        except EmodnaError:
            info.space = None
    sp = info.space
    study, info.study_note = read_study(folder, info.settings)
    study_mode = None
    if study is not None:
        from optuna.trial import TrialState

        names = {
            TrialState.COMPLETE: "complete",
            TrialState.PRUNED: "pruned",
            TrialState.RUNNING: "running",
            TrialState.WAITING: "running",
            TrialState.FAIL: "failed",
        }
        study_trials = study.get_trials(deepcopy=False)
        for t in study_trials:
            info.states[t.number] = names.get(t.state, "failed")
            if t.user_attrs.get("pruned_after") is not None:
                info.pruned_after[t.number] = int(t.user_attrs["pruned_after"])
            if t.user_attrs.get("n_units"):
                info.n_units = max(info.n_units or 0, int(t.user_attrs["n_units"]))
        info.n_configs = len(study_trials)
        if len(study.directions) == 1:
            study_mode = "max" if study.direction.name == "MAXIMIZE" else "min"
    info.metric = metric or (sp.metric if sp is not None else None) or "target_uar"
    info.mode = mode or (sp.mode if sp is not None else None) or study_mode or "max"
    if sp is not None:
        info.seeds = list(sp.seeds)
        try:
            available = None
            if info.corpora_dir is not None:
                from emodna.corpora import find_corpora

                available = list(find_corpora(info.corpora_dir))
            if available is None:
                available = sorted(set(trials["source"]) | set(trials["target"]))
            info.scenarios = sort_scenarios(scenario_name(**s) for s in sp.scenarios(available))
        except EmodnaError:
            info.scenarios = None
        if info.n_units is None and info.scenarios:
            info.n_units = len(info.scenarios) * len(sp.seeds)
    budget = info.settings.get("budget")
    if isinstance(budget, int):
        if sp is not None and (info.settings.get("sampler") or sp.sampler) == "grid":
            grid = sp.grid()
            if grid:
                budget = min(budget, math.prod(len(v) for v in grid.values()))
        info.budget = budget
    # is the sweep still running (or stopped before its end)?
    running = sorted(c for c, s in info.states.items() if s == "running")
    if running:
        info.partial.append(
            f"{len(running)} config(s) still running ({', '.join(map(str, running[:8]))})"
        )
    if info.budget is not None and info.n_configs is not None and info.n_configs < info.budget:
        info.partial.append(f"{info.n_configs} of {info.budget} configs proposed so far")
    expected = info.n_units
    if expected is None:
        units = trials[["scenario", "seed"]].drop_duplicates()
        expected = len(units)
    rows = trials.drop_duplicates(["config_id", "scenario", "seed"]).groupby("config_id").size()
    lagging = [
        int(c)
        for c, n in rows.items()
        if n < expected and info.states.get(int(c)) not in ("pruned", "running")
    ]
    if lagging:
        info.partial.append(
            f"{len(lagging)} config(s) with units not yet in {TRIALS} ({', '.join(map(str, lagging[:8]))})"
        )
    return info


# ----------------------------------------------------------------------------- selection


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
    for scen in sort_scenarios(scores["scenario"]):
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
      config ranked best on that task's scenarios whose target is not T, among the configs
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
    for task in _tasks_of(matrix.columns):
        scen_t = [s for s in matrix.columns if _split_scenario(s)[2] == task]
        for target in sorted({_split_scenario(s)[1] for s in scen_t}):
            held = [s for s in scen_t if _split_scenario(s)[1] == target]
            rest = trials[(trials["task"] == task) & (trials["target"] != target)]
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
        source, target, task = _split_scenario(scen)
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
    groups = [(t, per[per["task"] == t]) for t in _tasks_of(per["scenario"])] if len(per) else []
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


# ----------------------------------------------------------------------------- export


def _trial_dirs(folder: Path) -> dict[str, list[Path]]:
    """trial_id -> folders whose name holds it as a token (ours or Ray's default names)."""
    index: dict[str, list[Path]] = {}
    for p in folder.iterdir():
        if p.is_dir() and p.name not in ("best", "plots"):
            for tok in set(re.split(r"[-_,=]", p.name)):
                index.setdefault(tok, []).append(p)
    return index


def latest_checkpoint(trial_dir: Path) -> Path | None:
    """``checkpoint_XXXXXX/checkpoint.pt`` with the highest number in a trial folder."""
    found = []
    for p in trial_dir.glob("checkpoint_*/checkpoint.pt"):
        m = re.fullmatch(r"checkpoint_(\d+)", p.parent.name)
        if m:
            found.append((int(m.group(1)), p))
    return max(found)[1] if found else None


def feature_origin(target: str, normalize: bool, info: SweepInfo, cache: dict) -> dict:
    """How the target corpus's features were computed: what predict needs to redo them."""
    from emodna.features import FeatureSettings

    settings = FeatureSettings(normalize=normalize)
    out = {
        "sample_rate": settings.sample_rate,
        "n_mfcc": settings.n_mfcc,
        "corpus": target,
        "length": settings.length_for(target),
        "normalize": bool(normalize),
    }
    out["length_from"] = "paper" if out["length"] is not None else None
    if out["length"] is None or normalize:
        key = (target, normalize)
        if key not in cache:
            cache[key] = _corpus_facts(target, normalize, info, settings)
        out.update(cache[key])
    return out


def _corpus_facts(target: str, normalize: bool, info: SweepInfo, settings) -> dict:
    """The percentile length and the normalisation statistics, from the corpus on disk."""
    facts: dict = {}
    if info.corpora_dir is None:
        if settings.length_for(target) is None:
            facts["length_from"] = "unknown: corpora folder not found; pass --length to predict"
        if normalize:
            facts.update(
                norm_mean=None,
                norm_std=None,
                norm_note="corpora folder not found: statistics not recorded",
            )
        return facts
    try:
        from emodna.corpora import load_corpora
        from emodna.features import _percentile_length, corpus_features

        corpus = load_corpora(info.corpora_dir, names=[target])[target]
        if settings.length_for(target) is None:
            facts["length"] = int(_percentile_length(corpus, settings))
            facts["length_from"] = (
                f"{settings.length_percentile:g}th percentile of {target}'s durations"
            )
        if normalize:
            from emodna.features import FeatureSettings

            raw = FeatureSettings(
                sample_rate=settings.sample_rate,
                n_mfcc=settings.n_mfcc,
                lengths=dict(settings.lengths),
                normalize=False,
            )
            workers = 1 if len(corpus.utterances) < 200 else None  # a pool costs more than it saves
            x = corpus_features({target: corpus}, raw, info.cache, progress=False, workers=workers)[
                target
            ].x
            facts["norm_mean"] = [float(v) for v in x.mean(axis=(0, 2))]
            facts["norm_std"] = [float(v) for v in x.std(axis=(0, 2)) + 1e-8]
            facts["norm_note"] = f"per-coefficient mean/std of {target}'s MFCCs (as in training)"
    except EmodnaError as exc:
        if normalize:
            facts.update(norm_mean=None, norm_std=None, norm_note=f"statistics not recorded: {exc}")
        facts.setdefault("length_from", f"unknown: {exc}")
    return facts


def train_values(row: pd.Series, seed: int) -> tuple[dict, dict]:
    """(TrainConfig dict, extra hyperparameters that TrainConfig does not know) for a config."""
    from emodna.train import TrainConfig

    names = {f.name for f in dataclasses.fields(TrainConfig)}
    values = TrainConfig().to_dict()
    extra = {}
    for col, v in row.items():
        if not str(col).startswith("hp_"):
            continue
        v = decode_value(v)
        if v is None:
            continue
        key = str(col)[3:]
        (values if key in names else extra)[key] = v
    values.update(
        source=str(row["source"]),
        target=str(row["target"]),
        task=str(row["task"]),
        method=str(row["method"]),
        seed=int(seed),
    )
    cfg = TrainConfig.from_dict(values, origin=f"config {row.get('config_id')}")
    return cfg.to_dict(), extra


def _write_yaml(path: Path, values: dict, origin: dict, header: list[str]) -> None:
    body = yaml.safe_dump(
        _plain({**values, "origin": origin}), sort_keys=False, default_flow_style=None, width=100
    )
    path.write_text("".join(f"# {line}\n" for line in header) + body)


def _display(path: Path) -> str:
    """A path as a user would type it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def export_best(
    folder: Path,
    trials: pd.DataFrame,
    scores: pd.DataFrame,
    ranking: pd.DataFrame,
    best: pd.DataFrame,
    info: SweepInfo,
    out: Path,
) -> dict[str, Path]:
    """Write ``best/*.yaml`` and copy the checkpoints; returns name -> yaml path."""
    metric, mode = info.metric, info.mode
    out.mkdir(parents=True, exist_ok=True)
    trial_index = _trial_dirs(folder)
    cache: dict = {}
    rank_of = ranking.set_index("config_id")
    first_row = trials.drop_duplicates("config_id").set_index("config_id")
    created = time.strftime("%Y-%m-%d %H:%M:%S")
    written: dict[str, Path] = {}

    def export(name: str, srow: pd.Series, selected_by: str, header: list[str]) -> None:
        cid = int(srow["config_id"])
        seed = int(srow["best_seed"])
        trial_id = str(srow["best_trial_id"])
        base = first_row.loc[cid].copy()
        base["source"], base["target"], base["task"] = srow["source"], srow["target"], srow["task"]
        base["method"] = srow["method"]
        base["config_id"] = cid
        values, extra = train_values(base, seed)
        units = completed_units(trials, metric)
        units = units[(units["config_id"] == cid) & (units["scenario"] == srow["scenario"])]
        scores_out = {}
        for c in dict.fromkeys((metric, *SCORES)):
            if c in srow.index and not pd.isna(srow[c]):
                scores_out[c] = {
                    "mean": srow[c],
                    "std": srow.get(f"{c}_std"),
                    "per_seed": {int(s): v for s, v in zip(units["seed"], units[c], strict=True)},
                }
        ckpt_name = None
        ckpt_note = ""
        dirs = trial_index.get(trial_id, [])
        src = next((latest_checkpoint(d) for d in dirs if latest_checkpoint(d) is not None), None)
        if src is not None:
            ckpt_name = f"{name}.pt"
            shutil.copy2(src, out / ckpt_name)
        else:
            ckpt_note = f"no checkpoint found for trial {trial_id} in {folder}"
        r = rank_of.loc[cid]
        origin = {
            "sweep": str(folder),
            "config_id": cid,
            "trial_id": trial_id,
            "scenario": srow["scenario"],
            "selected_by": selected_by,
            "metric": metric,
            "mode": mode,
            "seed_of_checkpoint": seed,
            "scores": scores_out,
            "rank": int(r["rank"]),
            "mean_rank": r["mean_rank"],
            "status": r["status"],
            "checkpoint": ckpt_name,
            "checkpoint_from": str(src.relative_to(folder)) if src is not None else None,
            "features": feature_origin(
                str(srow["target"]), bool(values["normalize_features"]), info, cache
            ),
            "partial_sweep": bool(info.partial),
            "created": created,
        }
        if ckpt_note:
            origin["checkpoint_note"] = ckpt_note
        if extra:
            origin["extra_hyperparameters"] = extra
        path = out / f"{name}.yaml"
        _write_yaml(path, values, origin, header)
        written[name] = path

    for _, b in best.iterrows():
        srow = scores[
            (scores["config_id"] == b["config_id"]) & (scores["scenario"] == b["scenario"])
        ].iloc[0]
        export(
            b["scenario"],
            srow,
            f"best mean {metric} over seeds in {b['scenario']} (oracle: uses its target labels); "
            f"seed {int(srow['best_seed'])} is the best of its seeds",
            [
                f"Best config of {b['scenario']} in sweep {folder.name}: config {int(b['config_id'])}, "
                f"{metric} {srow[metric]:.4f} (mean over {int(srow['n_seeds'])} seed(s)).",
                f"Train it again: emodna train --corpora-dir DATA/ --config {_display(folder)}/best/{b['scenario']}.yaml",
                "The origin mapping records where it came from; training ignores it.",
            ],
        )
    if len(ranking):
        top = ranking.iloc[0]
        cid = int(top["config_id"])
        mine = scores[scores["config_id"] == cid]
        if len(mine):
            sign = -1.0 if mode == "max" else 1.0
            pick = mine.assign(_k=sign * mine[metric]).sort_values(["_k", "scenario"]).iloc[0]
            export(
                "overall",
                pick.drop(labels="_k"),
                f"best mean rank over {int(top['n_scenarios'])} scenario(s) ({top['mean_rank']:.2f}); "
                f"scenario: where it scored its best {metric}",
                [
                    f"Best config of sweep {folder.name} by mean rank across scenarios: config {cid} "
                    f"(mean rank {top['mean_rank']:.2f}, mean {metric} {top['mean_metric']:.4f}).",
                    f"source/target/task: {pick['scenario']}, the scenario where this config scored its best "
                    f"{metric} ({pick[metric]:.4f});",
                    "point it at another scenario with --source/--target/--task, e.g.",
                    f"emodna train --corpora-dir DATA/ --config {_display(folder)}/best/overall.yaml --source EMODB --target CASIA --task valence",
                ],
            )
    return written


# ----------------------------------------------------------------------------- plots


def _figure(w: float, h: float):
    """A matplotlib Figure on the Agg canvas, without pyplot (no global backend state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> None:
    fig.savefig(path, bbox_inches="tight", pad_inches=0.15)


def plot_heatmap(best: pd.DataFrame, metric: str, path: Path) -> None:
    """Source x target heatmap of the best score per scenario, one panel (and scale) per task."""
    tasks = _tasks_of(best["scenario"]) if len(best) else []
    corpora = sorted(set(best["source"]) | set(best["target"])) if len(best) else []
    n = max(1, len(tasks))
    size = 1.4 + 0.85 * max(2, len(corpora))
    fig = _figure((size + 1.3) * n, size + 0.4)
    axes = fig.subplots(1, n, squeeze=False)[0]
    if not tasks:
        axes[0].text(0.5, 0.5, "no completed scenario yet", ha="center", va="center")
        axes[0].set_axis_off()
    for ax, task in zip(axes, tasks, strict=False):
        sub = best[best["task"] == task]
        grid = np.full((len(corpora), len(corpora)), np.nan)
        ids = {}
        for _, r in sub.iterrows():
            i, j = corpora.index(r["source"]), corpora.index(r["target"])
            grid[i, j] = r[metric]
            ids[(i, j)] = int(r["config_id"])
        vmin, vmax = float(np.nanmin(grid)), float(np.nanmax(grid))
        if vmax - vmin < 1e-6:
            vmin, vmax = vmin - 0.05, vmax + 0.05
        im = ax.imshow(np.ma.masked_invalid(grid), cmap="viridis", vmin=vmin, vmax=vmax)
        ax.set_facecolor("#dddddd")
        ax.set_xticks(range(len(corpora)), corpora, rotation=45, ha="right")
        ax.set_yticks(range(len(corpora)), corpora)
        ax.set_xlabel("target")
        ax.set_ylabel("source")
        ax.set_title(f"{task}: best {metric} (%)")
        for (i, j), cid in ids.items():
            v = grid[i, j]
            light = (v - vmin) / (vmax - vmin) < 0.6
            ax.text(
                j,
                i,
                f"{100 * v:.1f}\ncfg {cid}",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if light else "black",
            )
        fig.colorbar(im, ax=ax, shrink=0.75, format=lambda v, _: f"{100 * v:.3g}")
    fig.subplots_adjust(wspace=0.3)
    _save(fig, path)


def _hp_series(ranking: pd.DataFrame) -> dict[str, pd.Series]:
    """Hyperparameters that vary across configs, lists expanded element-wise."""
    out: dict[str, pd.Series] = {}
    cols = [c for c in ranking.columns if c.startswith("hp_")]
    if ranking["method"].nunique() > 1:
        out["method"] = ranking["method"]
    for c in cols:
        vals = ranking[c].map(decode_value)
        if vals.map(lambda v: isinstance(v, list)).any():
            width = max(len(v) for v in vals if isinstance(v, list))
            for i in range(width):
                s = vals.map(lambda v, i=i: v[i] if isinstance(v, list) and len(v) > i else None)
                if s.dropna().nunique() > 1:
                    out[f"{c[3:]}[{i}]"] = s
        elif vals.dropna().map(str).nunique() > 1:
            out[c[3:]] = vals
    return out


def plot_hyperparameters(ranking: pd.DataFrame, metric: str, path: Path, log_scale=()) -> None:
    """Mean metric per task against each varying hyperparameter, coloured by task.

    ``log_scale``: names drawn on a log axis (the space's ``log: true`` parameters); others
    too when positive and spanning more than a factor of 20.
    """
    from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullLocator

    hps = _hp_series(ranking) if len(ranking) else {}
    tasks = [c[len("mean_metric_") :] for c in ranking.columns if c.startswith("mean_metric_")]
    colours = {"arousal": "tab:red", "valence": "tab:blue"}
    n = max(1, len(hps))
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig = _figure(4.0 * cols, 3.2 * rows + 0.4)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    if not hps:
        axes[0].text(
            0.5, 0.5, "no hyperparameter varies across the configs", ha="center", va="center"
        )
        axes[0].set_axis_off()
    complete = (ranking["status"] == "complete").to_numpy() if len(ranking) else np.array([])
    for ax, (name, series) in zip(axes, hps.items(), strict=False):
        numeric = pd.to_numeric(series, errors="coerce")
        is_num = numeric.notna().all() and series.map(lambda v: not isinstance(v, str | bool)).all()
        if is_num:
            x = numeric.to_numpy(dtype=float)
            pos = x[np.isfinite(x)]
            base = name.split("[")[0]
            if len(pos) and pos.min() > 0 and (base in log_scale or pos.max() / pos.min() > 20):
                ax.set_xscale("log")
                ticks = sorted({float(f"{t:.2g}") for t in np.geomspace(pos.min(), pos.max(), 4)})
                ax.xaxis.set_major_locator(FixedLocator(ticks))
                ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.2g}"))
                ax.xaxis.set_minor_locator(NullLocator())
            else:
                ax.xaxis.set_major_locator(MaxNLocator(4))
        else:
            cats = sorted(series.map(str).unique())
            x = series.map(str).map({c: i for i, c in enumerate(cats)}).to_numpy(dtype=float)
            ax.set_xticks(range(len(cats)), cats, rotation=30, ha="right")
        for k, task in enumerate(tasks):
            y = ranking[f"mean_metric_{task}"].to_numpy(dtype=float)
            xx = x if is_num else x + (k - (len(tasks) - 1) / 2) * 0.12
            c = colours.get(task, f"C{k}")
            ax.scatter(xx[complete], y[complete], color=c, s=22, label=task)
            if (~complete).any():
                ax.scatter(
                    xx[~complete],
                    y[~complete],
                    facecolors="none",
                    edgecolors=c,
                    s=22,
                    label=f"{task} (incomplete/pruned)",
                )
        ax.set_xlabel(name)
        ax.set_ylabel(f"mean {metric}")
        ax.grid(alpha=0.3)
    for ax in axes[len(hps) :]:
        if hps:
            ax.set_axis_off()
    if hps:
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(
            handles, labels, loc="upper center", ncol=max(1, len(labels)), fontsize=8, frameon=False
        )
        fig.tight_layout(rect=(0, 0, 1, 0.93))
    _save(fig, path)


def plot_cd(names: list[str], ranks, cd: float | None, path: Path, title: str = "") -> None:
    """Critical-difference diagram (Demsar 2006): mean ranks on an axis, lines to the names,
    bars joining the groups whose mean ranks differ by no more than CD."""
    fig_w = 8.0
    if len(names) < 2 or cd is None:
        fig = _figure(fig_w, 1.2)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_axis_off()
        ax.text(
            0.5,
            0.5,
            title
            or "critical-difference diagram: needs two or more configs\ncomplete on every scenario",
            ha="center",
            va="center",
        )
        _save(fig, path)
        return
    ranks = np.asarray(ranks, dtype=float)
    order = np.argsort(ranks, kind="mergesort")
    names = [names[i] for i in order]
    ranks = ranks[order]
    k = len(ranks)
    lo, hi = 1, max(k, math.ceil(ranks.max()))
    span = hi - lo
    groups = cliques(ranks, cd)
    n_left = math.ceil(k / 2)
    n_rows = max(n_left, k - n_left)
    step = 0.5
    bar_gap = 0.3
    first_bar = -0.45
    label_top = first_bar - bar_gap * max(1, len(groups)) - 0.2
    bottom = label_top - step * (n_rows - 1) - 0.4
    top = 2.0 if title else 1.45
    fig = _figure(fig_w, 0.42 * (top - bottom) + 0.3)
    ax = fig.add_axes((0.01, 0.01, 0.98, 0.98))
    ax.set_axis_off()
    margin = max(1.2, 0.6 * span)
    ax.set_xlim(lo - margin, max(hi, lo + cd) + margin)
    ax.set_ylim(bottom, top)
    ax.plot([lo, hi], [0, 0], color="black", lw=1)
    for t in range(lo, hi + 1):
        ax.plot([t, t], [0, 0.12], color="black", lw=1)
        ax.text(t, 0.18, str(t), ha="center", va="bottom", fontsize=9)
    # CD bar above the axis
    y_cd = 0.95
    ax.plot([lo, lo + cd], [y_cd, y_cd], color="black", lw=1.5)
    for x in (lo, lo + cd):
        ax.plot([x, x], [y_cd - 0.08, y_cd + 0.08], color="black", lw=1.5)
    ax.text(lo + cd / 2, y_cd + 0.12, f"CD = {cd:.2f}", ha="center", va="bottom", fontsize=9)
    if title:
        ax.text(
            (lo + max(hi, lo + cd)) / 2,
            top - 0.05,
            title,
            ha="center",
            va="top",
            fontsize=9,
            style="italic",
        )
    # one line per config, best half to the left, the rest to the right
    for i in range(k):
        left = i < n_left
        y = label_top - step * (i if left else k - 1 - i)
        xe = lo - 0.2 * margin if left else hi + 0.2 * margin
        ax.plot([ranks[i], ranks[i], xe], [0, y, y], color="black", lw=0.8)
        if left:
            ax.text(
                xe - 0.04 * margin,
                y,
                f"{names[i]} ({ranks[i]:.2f})",
                ha="right",
                va="center",
                fontsize=9,
            )
        else:
            ax.text(
                xe + 0.04 * margin,
                y,
                f"({ranks[i]:.2f}) {names[i]}",
                ha="left",
                va="center",
                fontsize=9,
            )
    # cliques: groups not significantly different
    for c, (a, b) in enumerate(groups):
        y = first_bar - bar_gap * c
        ax.plot(
            [ranks[a] - 0.05, ranks[b] + 0.05],
            [y, y],
            color="tab:red",
            lw=3.5,
            solid_capstyle="round",
            zorder=3,
        )
    _save(fig, path)


# ----------------------------------------------------------------------------- report


def _pct(v, digits: int = 1) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.{digits}f}"


def _pm(mean, std) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    if std is None or (isinstance(std, float) and math.isnan(std)):
        return f"{100 * mean:.1f}"
    return f"{100 * mean:.1f} ± {100 * std:.1f}"


def _md_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _fmt_hp(v) -> str:
    v = decode_value(v)
    if v is None:
        return "–"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt_hp(x) for x in v) + "]"
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def paper_table(scores: pd.DataFrame, task: str, columns: list[tuple[str, int]]) -> str:
    """The paper's Table 2/3 layout: rows = source corpora + Average, per column WAR and F1.

    A cell is the mean over the source's targets of the per-scenario mean over seeds, ±
    the mean over those targets of the per-scenario std over seeds. ``*``: the config
    misses some of the row's scenarios.
    """
    sub = scores[scores["task"] == task]
    sources = sorted(sub["source"].unique())
    all_scen = {s: set(sub.loc[sub["source"] == s, "scenario"]) for s in sources}
    header = ["source"] + [f"{label} {m}" for label, _ in columns for m in ("WAR", "F1")]
    rows = []
    for src in [*sources, "Average"]:
        row = [src if src != "Average" else "**Average**"]
        for _, cid in columns:
            mine = sub[sub["config_id"] == cid]
            want = set(sub["scenario"]) if src == "Average" else all_scen[src]
            if src != "Average":
                mine = mine[mine["source"] == src]
            star = "*" if set(mine["scenario"]) != want else ""
            for m in ("target_war", "target_f1"):
                if m not in mine or mine.empty:
                    row.append("–")
                    continue
                std = mine[f"{m}_std"].mean() if mine[f"{m}_std"].notna().any() else float("nan")
                row.append(_pm(float(mine[m].mean()), float(std)) + star)
        rows.append(row)
    return _md_table(header, rows)


@dataclass
class Summary:
    """What :func:`summarize` computed and wrote."""

    folder: Path
    metric: str
    mode: str
    ranking: pd.DataFrame
    scores: pd.DataFrame
    best: pd.DataFrame
    selection: pd.DataFrame
    selection_per_scenario: pd.DataFrame
    loto: pd.DataFrame
    friedman: dict | None
    cd: dict | None
    partial: list[str]
    exports: dict[str, Path]
    files: dict[str, Path]
    markdown: str = ""


def _cd_items(
    ranking: pd.DataFrame, matrix: pd.DataFrame, top: int
) -> tuple[list[str], list[int], str]:
    """Configs for the CD diagram: the best complete config per method when several methods
    are present, otherwise the top complete configs."""
    complete = ranking[ranking["status"] == "complete"]
    if complete["method"].nunique() > 1:
        firsts = complete.drop_duplicates("method")
        return (
            [f"{m} (cfg {c})" for m, c in zip(firsts["method"], firsts["config_id"], strict=True)],
            [int(c) for c in firsts["config_id"]],
            "methods (each by its best config)",
        )
    chosen = complete.head(top)
    return (
        [f"cfg {c}" for c in chosen["config_id"]],
        [int(c) for c in chosen["config_id"]],
        f"top {len(chosen)} configs",
    )


def summarize(
    folder: str | Path,
    metric: str | None = None,
    mode: str | None = None,
    *,
    top: int = 3,
    cd_top: int = 10,
    export: bool = True,
    plots: bool = True,
    alpha: float = 0.05,
) -> Summary:
    """Summarize a sweep folder (see the module docstring); returns what it wrote."""
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise ConfigError(f"{folder}: no such sweep folder")
    trials = load_trials(folder)
    info = sweep_info(folder, trials, metric, mode)
    metric, mode = info.metric, info.mode
    if metric not in trials.columns:
        numeric = [c for c in trials.columns if c.startswith("target_") or c in SIGNALS]
        raise ConfigError(
            f"{folder / TRIALS}: no column {metric!r}; pick --metric among {', '.join(numeric)}"
        )
    if len(completed_units(trials, metric)) == 0:
        raise ConfigError(
            f"{folder / TRIALS}: no completed trial with a {metric} yet; try again later"
        )
    ranking = rank_configs(
        trials,
        metric,
        mode,
        states=info.states,
        pruned_after=info.pruned_after,
        scenarios=info.scenarios,
        n_units=info.n_units,
    )
    scores = _best_seed(scenario_scores(trials, metric), mode)
    best = best_per_scenario(scores, ranking, metric, mode)
    per, loto = honest_selection(trials, scores, ranking, metric, mode, info.states)
    sel = selection_table(per)
    # Friedman over the complete configs, CD over the top ones (or one per method)
    matrix = score_matrix(scores, metric, scenarios=sort_scenarios(scores["scenario"]))
    complete_ids = [int(c) for c in ranking.loc[ranking["status"] == "complete", "config_id"]]
    full = matrix.loc[complete_ids].dropna(axis=1, how="any") if complete_ids else matrix.iloc[0:0]
    fr = (
        friedman(full.to_numpy().T, mode) if len(complete_ids) >= 2 and full.shape[1] >= 1 else None
    )
    names, ids, cd_what = _cd_items(ranking, matrix, cd_top)
    cd = None
    if len(ids) >= 2 and full.shape[1] >= 1:
        sub = full.loc[ids]
        r = friedman(sub.to_numpy().T, mode)["mean_ranks"]
        cd = dict(
            names=names,
            config_ids=ids,
            ranks=[float(x) for x in r],
            what=cd_what,
            cd=nemenyi_cd(len(ids), sub.shape[1], alpha),
            alpha=alpha,
            n=sub.shape[1],
        )

    files: dict[str, Path] = {}
    exports: dict[str, Path] = {}
    if export:
        tmp = folder / ".best.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        exports = export_best(folder, trials, scores, ranking, best, info, tmp)
        final = folder / "best"
        old = folder / ".best.old"
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
        exports = {k: final / v.name for k, v in exports.items()}
    if plots:
        pdir = folder / "plots"
        pdir.mkdir(exist_ok=True)
        files["heatmap"] = pdir / "heatmap.png"
        plot_heatmap(best, metric, files["heatmap"])
        files["hyperparameters"] = pdir / "hyperparameters.png"
        logs = [n for n, p in getattr(info.space, "params", {}).items() if getattr(p, "log", False)]
        plot_hyperparameters(ranking, metric, files["hyperparameters"], logs)
        files["critical_difference"] = pdir / "critical_difference.png"
        if cd is not None:
            plot_cd(
                cd["names"],
                cd["ranks"],
                cd["cd"],
                files["critical_difference"],
                f"Nemenyi, alpha = {alpha}, {cd['what']}, N = {cd['n']} scenarios",
            )
        else:
            plot_cd([], [], None, files["critical_difference"])

    result = Summary(
        folder,
        metric,
        mode,
        ranking,
        scores,
        best,
        sel,
        per,
        loto,
        fr,
        cd,
        list(info.partial),
        exports,
        files,
    )
    files["ranking"] = folder / "ranking.parquet"
    table = ranking.copy()
    for c in table.columns:
        if table[c].dtype == object:
            kinds = {
                type(v)
                for v in table[c]
                if v is not None and not (isinstance(v, float) and math.isnan(v))
            }
            if len(kinds) > 1 or kinds & {list, dict}:  # mixed: one JSON string per cell
                table[c] = table[c].map(lambda v: None if v is None else json.dumps(_plain(v)))
    _atomic_write(files["ranking"], lambda p: table.to_parquet(p, index=False))
    result.markdown = render_markdown(result, info, trials, top)
    files["summary"] = folder / "summary.md"
    _atomic_write(files["summary"], lambda p: p.write_text(result.markdown))
    return result


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def render_markdown(s: Summary, info: SweepInfo, trials: pd.DataFrame, top: int = 3) -> str:
    m, mode = s.metric, s.mode
    short = SHORT.get(m, m)
    r = s.ranking
    n_scen = int(r["n_scenarios_total"].iloc[0]) if len(r) else 0
    seeds = sorted(set(int(x) for x in trials["seed"]))
    out = [f"# Sweep summary: {s.folder.name}", ""]
    out.append(
        f"`{s.folder}` · metric **{m}** ({'higher' if mode == 'max' else 'lower'} is better) · "
        f"{len(r)} configs · {n_scen} scenarios × {len(seeds)} seed(s) · "
        f"{int((trials['status'] == 'completed').sum())} trials completed, "
        f"{int((trials['status'] == 'error').sum())} failed, "
        f"{int((trials['status'] == 'diverged').sum())} diverged · generated {time.strftime('%Y-%m-%d %H:%M')}"
    )
    out.append("")
    if s.partial:
        out.append(
            "> **Partial summary: the sweep is not finished.** "
            + "; ".join(s.partial)
            + ". Numbers, ranks and exports will change; run `emodna summarize` again later."
        )
        out.append("")
    if info.study_note:
        out.append(
            f"_Optuna study: {info.study_note}; pruned configs cannot be told from incomplete ones._"
        )
        out.append("")
    out.append(
        "Scores are percentages. A config's score on a scenario is the mean of its seeds; "
        "ranks are per scenario (1 = best, ties averaged), averaged over the scenarios the "
        "config covers."
    )
    out.append("")

    # ------------------------------------------------------------- ranking
    out += ["## Ranking across scenarios", ""]
    hps = [
        c
        for c in r.columns
        if c.startswith("hp_")
        and r[c].map(lambda v: json.dumps(_plain(decode_value(v)))).nunique() > 1
    ]
    tasks = [c[len("mean_metric_") :] for c in r.columns if c.startswith("mean_metric_")]
    header = (
        ["#", "config", "method", "status", "mean rank", f"mean {short}"]
        + [f"{t}" for t in tasks]
        + ["worst scenario", "scenarios", "units"]
        + [h[3:] for h in hps]
    )
    rows = []
    for _, x in r.iterrows():
        status = x["status"] if x["status"] == "complete" else f"**{x['status']}** ({x['note']})"
        row = [
            x["rank"],
            x["config_id"],
            x["method"],
            status,
            f"{x['mean_rank']:.2f}" if not math.isnan(x["mean_rank"]) else "–",
            _pct(x["mean_metric"]),
        ]
        row += [_pct(x[f"mean_metric_{t}"]) for t in tasks]
        row += [
            f"{x['worst_scenario']} ({_pct(x['worst_metric'])})" if x["worst_scenario"] else "–",
            f"{x['n_scenarios']}/{x['n_scenarios_total']}",
            f"{x['n_units']}/{x['n_units_expected']}",
        ]
        row += [_fmt_hp(x[h]) for h in hps]
        rows.append(row)
    out += [_md_table(header, rows), ""]
    out.append(
        "Complete configs (every scenario and seed done) come first; incomplete and pruned "
        "ones follow, ranked on the scenarios they covered. Full table: `ranking.parquet`."
    )
    out.append("")
    if s.friedman is not None and math.isfinite(s.friedman["statistic"]):
        f = s.friedman
        out.append(
            f"**Friedman test** over the {f['k']} complete configs by {f['n']} scenarios: "
            f"χ²({f['k'] - 1}) = {f['statistic']:.2f}, p = {f['pvalue']:.3g}; "
            f"Iman-Davenport F = {f['f_statistic']:.2f}, p = {f['f_pvalue']:.3g}"
            + (" (the configs differ)." if f["pvalue"] < 0.05 else " (no significant difference).")
        )
    else:
        k = int((r["status"] == "complete").sum())
        out.append(
            f"**Friedman test**: not applicable ({k} complete config(s); it needs at least 3 "
            "configs complete on at least 2 scenarios)."
        )
    out.append("")
    if s.cd is not None:
        out.append(
            f"**Critical difference** (Nemenyi, α = {s.cd['alpha']}, {s.cd['what']}, N = {s.cd['n']}): "
            f"CD = q_α·√(k(k+1)/6N) = {s.cd['cd']:.2f}; configs joined by a bar are not "
            "significantly different."
        )
        out.append("")
    if "critical_difference" in s.files:
        out += ["![critical difference diagram](plots/critical_difference.png)", ""]

    # ------------------------------------------------------------- best per scenario
    out += ["## Best config per scenario (oracle)", ""]
    out.append(
        "Chosen with the target's labels, as in the paper's tables: an upper bound on what a "
        "user without target labels gets (see Honest selection). Exported to `best/`."
    )
    out.append("")
    rows = []
    for _, b in s.best.iterrows():
        link = f"[yaml](best/{b['scenario']}.yaml)" if b["scenario"] in s.exports else "–"
        pt = s.exports.get(b["scenario"])
        has_pt = pt is not None and pt.with_suffix(".pt").exists()
        rows.append(
            [
                b["scenario"],
                b["config_id"],
                b["method"],
                _pm(b[m], b.get(f"{m}_std")),
                *[_pm(b.get(c), b.get(f"{c}_std")) for c in SCORES if c != m],
                b["n_seeds"],
                link + (" + .pt" if has_pt else ""),
            ]
        )
    out += [
        _md_table(
            ["scenario", "config", "method", f"{short} mean ± std"]
            + [SHORT[c] for c in SCORES if c != m]
            + ["seeds", "export"],
            rows,
        ),
        "",
    ]
    if "overall" in s.exports:
        top_row = r.iloc[0]
        out.append(
            f"`best/overall.yaml`: config {top_row['config_id']} (rank 1, mean rank "
            f"{top_row['mean_rank']:.2f}), with source/target/task of the scenario where it "
            "scored best; override them with `--source/--target/--task`."
        )
        out.append("")

    # ------------------------------------------------------------- honest selection
    out += ["## Honest selection", ""]
    out.append(
        "What a config chosen without the scenario's target labels scores, beside the oracle "
        "(gap in points, negative = worse). *Oracle*: the best config per scenario. *Best overall*: "
        "the rank-1 config (still chosen with all labels). *LOTO*: leave-target-corpus-out — for "
        "each task and target corpus T, the config ranked best on that task's scenarios whose "
        "target is not T, scored on the scenarios whose target is T. *Max source val acc* / *min "
        "target entropy*: per scenario, the config with the best label-free signal recorded by "
        "training."
    )
    out.append("")
    rows = []
    for _, x in s.selection.iterrows():
        cells = [x["task"], x["n_scenarios"], _pct(x["oracle"])]
        for sel in ("overall", "loto", "val_acc", "entropy"):
            if x[f"{sel}_n"] == 0:
                cells.append("n/a")
                continue
            gap = x[f"{sel}_gap"]
            cell = f"{_pct(x[sel])} ({100 * gap:+.1f})"
            if x[f"{sel}_n"] < x["n_scenarios"]:
                cell += f" [{x[f'{sel}_n']}/{x['n_scenarios']}]"
            cells.append(cell)
        rows.append(cells)
    out += [
        _md_table(
            [
                "task",
                "scenarios",
                f"oracle {short}",
                "best overall",
                "LOTO",
                "max source val acc",
                "min target entropy",
            ],
            rows,
        ),
        "",
    ]
    if len(s.loto):
        rows = [
            [
                x["task"],
                x["held_out_target"],
                x["n_scenarios"],
                "–" if pd.isna(x["selected_config"]) else int(x["selected_config"]),
                _pct(x["score"]),
                _pct(x["oracle"]),
                "n/a" if math.isnan(x["gap"]) else f"{100 * x['gap']:+.1f}",
            ]
            for _, x in s.loto.iterrows()
        ]
        out += [
            "Leave-target-corpus-out, per held-out target:",
            "",
            _md_table(
                [
                    "task",
                    "held-out target",
                    "scenarios",
                    "selected config",
                    short,
                    f"oracle {short}",
                    "gap",
                ],
                rows,
            ),
            "",
        ]
        if s.loto["selected_config"].isna().any():
            out += ["n/a: no other scenario of the task with another target to select on.", ""]

    # ------------------------------------------------------------- paper tables
    out += ["## Tables 2 and 3 (paper layout)", ""]
    out.append(
        "Rows: source corpus (its targets averaged) and Average (all scenarios of the task). "
        "Cells: WAR and F1 in %, mean over the source's targets of the mean over seeds ± the "
        "mean of the per-scenario std over seeds (no ± with one seed). `*`: the config did not "
        "cover all of the row's scenarios."
    )
    out.append("")
    top_cols = [
        (f"#{int(x['rank'])} cfg {int(x['config_id'])}", int(x["config_id"]))
        for _, x in r.head(top).iterrows()
    ]
    methods = r.drop_duplicates("method")
    method_cols = [
        (f"{x['method']} (cfg {int(x['config_id'])})", int(x["config_id"]))
        for _, x in methods.iterrows()
    ]
    for number, task in ((2, "arousal"), (3, "valence")):
        if task not in set(s.scores["task"]):
            continue
        out += [
            f"### Table {number}: {task}, top configs",
            "",
            paper_table(s.scores, task, top_cols),
            "",
        ]
        if len(method_cols) > 1:
            out += [
                f"### Table {number}: {task}, every method (its best config)",
                "",
                paper_table(s.scores, task, method_cols),
                "",
            ]
        else:
            out += [
                f"One method in this sweep ({method_cols[0][0]}); its best config is #1 above.",
                "",
            ]

    # ------------------------------------------------------------- plots
    if "heatmap" in s.files:
        out += [
            "## Plots",
            "",
            f"Best {short} per scenario (source × target):",
            "",
            "![heatmap](plots/heatmap.png)",
            "",
            f"Mean {short} per task against each hyperparameter (hollow: incomplete or pruned):",
            "",
            "![hyperparameters](plots/hyperparameters.png)",
            "",
        ]
    return "\n".join(out)


# ----------------------------------------------------------------------------- command line


def print_summary(s: Summary, file=None) -> None:
    """A few lines for the terminal: where the files are and the top of the ranking."""
    file = file or sys.stdout
    if s.partial:
        print("partial summary (the sweep is not finished): " + "; ".join(s.partial), file=file)
    r = s.ranking
    short = SHORT.get(s.metric, s.metric)
    for _, x in r.head(5).iterrows():
        mark = "" if x["status"] == "complete" else f"  [{x['status']}: {x['note']}]"
        print(
            f"#{x['rank']}  config {x['config_id']} ({x['method']}): mean rank {x['mean_rank']:.2f}, "
            f"mean {short} {_pct(x['mean_metric'])}{mark}",
            file=file,
        )
    if len(r) > 5:
        print(f"... {len(r) - 5} more in ranking.parquet", file=file)
    print(f"summary: {s.files.get('summary')}", file=file)
    if s.exports:
        print(f"best configs: {len(s.exports)} in {s.folder / 'best'}", file=file)


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(
        prog="python -m sweep.summarize", description=__doc__.splitlines()[0]
    )
    add_arguments(ap)
    args = ap.parse_args(argv)
    try:
        s = summarize(
            args.sweep,
            args.metric,
            args.mode,
            top=args.top,
            export=not args.no_export,
            plots=not args.no_plots,
        )
    except EmodnaError as exc:
        print(f"summarize: error: {exc}", file=sys.stderr)
        return 2
    print_summary(s)
    return 0


def add_arguments(p) -> None:
    p.add_argument("sweep", type=Path, help="sweep folder, e.g. runs/emodna (holds trials.parquet)")
    p.add_argument("--metric", help="metric to rank by (default: the space's, e.g. target_uar)")
    p.add_argument("--mode", choices=["max", "min"], help="max or min (default: the space's)")
    p.add_argument(
        "--top", type=int, default=3, help="top configs in the paper-style tables (default 3)"
    )
    p.add_argument(
        "--no-export", action="store_true", help="do not write best/*.yaml and checkpoints"
    )
    p.add_argument("--no-plots", action="store_true", help="do not draw the PNG plots")


if __name__ == "__main__":
    sys.exit(main())
