"""Choosing without the target's labels: validators, honest rules and ensembles, after a sweep.

Every trial keeps its kept model's class probabilities (``predictions.parquet`` in its
folder, :func:`emodna.validators.prediction_table`). From them alone, for any subset of trials:

- **validators** (:mod:`emodna.validators`): label-free scores per trial;
- **rules**: a rule orders the configs of a scenario without its target's labels, and
  picks the first (``<rule>``) or averages the first K's probabilities (``<rule>+ens<K>``,
  one ensemble per seed, members at that seed). ``loto``: the configs' mean rank on the
  task's scenarios that do not touch the target corpus (neither as source nor as target:
  a user adapting to an unlabelled corpus has no labels for it either way); ``<validator>``:
  the configs' validator score on the scenario itself (mean over seeds);
- **honest recommendation** (:func:`honest`): for each target corpus T, the rule with the
  best mean score on the scenarios that do not touch T (each judged there with T left out
  too), applied to T's scenarios. Nothing about T's labels enters the choice.

Scores are per unit (scenario, seed): a rule chooses per scenario and is scored at each
seed, so rules, the defaults and the oracle pair over scenario-seeds. Only configs that
completed every unit of a scenario are candidates there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from emodna import validators as V
from emodna.metrics import scores as metric_scores
from emodna.validators import PREDICTIONS
from sweep.ranking import completed_units, rank_matrix, tasks_of

GATHERED = "predictions.parquet"  # all trials' kept probabilities, one file per sweep folder
ENSEMBLE_K = 3
VALIDATOR_NAMES = tuple(V.VALIDATORS)


# ----------------------------------------------------------------------------- evidence


def gather_predictions(folder: Path, trials: pd.DataFrame) -> pd.DataFrame:
    """Every completed trial's kept probabilities in one table (``trial_id`` + the columns
    of :func:`emodna.validators.prediction_table` but ``clip``), read from the trial folders
    (``trial_dir`` in trials.parquet); where they are gone, from ``<folder>/predictions.parquet``
    (what :func:`write_gathered` left, e.g. committed results)."""
    folder = Path(folder)
    done = trials[trials["status"] == "completed"]
    parts = []
    if "trial_dir" in done:
        for tid, tdir in zip(done["trial_id"], done["trial_dir"], strict=True):
            path = folder / str(tdir) / PREDICTIONS
            if isinstance(tdir, str) and path.exists():
                parts.append(pd.read_parquet(path).drop(columns="clip").assign(trial_id=tid))
    if not parts and (folder / GATHERED).exists():
        return pd.read_parquet(folder / GATHERED)
    if not parts:
        return pd.DataFrame(columns=["trial_id", "split", "row", "label", "weight"])
    table = pd.concat(parts, ignore_index=True)
    for c in [c for c in table.columns if c.startswith("p") and c[1:].isdigit()]:
        table[c] = table[c].astype(np.float32)
    return table


def write_gathered(folder: Path, table: pd.DataFrame) -> Path:
    path = Path(folder) / GATHERED
    table.to_parquet(path, index=False)
    return path


@dataclass
class Evidence:
    """What the rules work on: ``units`` has one row per completed trial (config_id,
    scenario, source, target, task, seed, trial_id, the metric and every validator);
    ``probs[trial_id]`` its target probabilities and ``labels[(scenario, seed)]`` the target's
    true classes (used only to score)."""

    units: pd.DataFrame
    probs: dict[str, np.ndarray]
    labels: dict[tuple[str, int], np.ndarray]
    metric: str
    candidates: dict[int, str]  # config id -> name of the space's candidates (defaults, ...)

    @property
    def defaults(self) -> int | None:
        """The config of the ``defaults`` candidate; config 0 in a sweep without candidates."""
        named = [c for c, n in self.candidates.items() if n == "defaults"]
        if named:
            return named[0]
        return 0 if not self.candidates and (self.units["config_id"] == 0).any() else None

    def score(self, trial_ids: list[str], scenario: str, seed: int) -> float:
        """The metric of the mean of these trials' probabilities (one trial: the trial's)."""
        p = np.mean([self.probs[t] for t in trial_ids], axis=0)
        y = self.labels[(scenario, seed)]
        key = self.metric.removeprefix("target_")
        return metric_scores(y, p.argmax(1), p.shape[1])[key]


def build_evidence(
    trials: pd.DataFrame, predictions: pd.DataFrame, metric: str = "target_uar"
) -> Evidence:
    """Validators per trial, from the gathered predictions of the completed trials."""
    done = completed_units(trials, metric)
    done = done[done["trial_id"].isin(set(predictions["trial_id"]))]
    by_trial = dict(tuple(predictions.groupby("trial_id", sort=False)))
    pcols = sorted(
        (c for c in predictions.columns if c.startswith("p") and c[1:].isdigit()),
        key=lambda c: int(c[1:]),
    )
    probs, val, labels = {}, {}, {}
    for tid, scen, seed in zip(done["trial_id"], done["scenario"], done["seed"], strict=True):
        t = by_trial[tid]
        tgt = t[t["split"] == "target"].sort_values("row")
        src = t[t["split"] == "source_val"].sort_values("row")
        probs[tid] = tgt[pcols].to_numpy(np.float64)
        val[tid] = (src[pcols].to_numpy(np.float64), src["label"].to_numpy(), src["weight"])
        labels.setdefault((scen, int(seed)), tgt["label"].to_numpy())
    rows = []
    for r in done.itertuples(index=False):
        p = probs[r.trial_id]
        p_val, y_val, w = val[r.trial_id]
        row = {
            "trial_id": r.trial_id,
            "config_id": int(r.config_id),
            "scenario": r.scenario,
            "source": r.source,
            "target": r.target,
            "task": r.task,
            "seed": int(r.seed),
            metric: float(getattr(r, metric)),
            "source_val_uar": metric_scores(y_val, p_val.argmax(1), p.shape[1])["uar"]
            if len(y_val)
            else np.nan,
            "neg_entropy": V.neg_entropy(p),
            "info_max": V.info_max(p),
            "bnm": V.bnm(p),
            "snd": V.snd(p),
            "dev": V.dev(p_val, y_val, w.to_numpy()) if len(y_val) > 1 else np.nan,
        }
        rows.append(row)
    units = pd.DataFrame(rows)
    if len(units):  # EnsV: agreement with the ensemble of every candidate on the unit
        ens = {
            key: np.mean([probs[t] for t in g["trial_id"]], axis=0)
            for key, g in units.groupby(["scenario", "seed"])
        }
        units["ensv"] = [
            V.ensv(probs[t], ens[(s, d)])
            for t, s, d in zip(units["trial_id"], units["scenario"], units["seed"], strict=True)
        ]
    names = {}
    if "hp_candidate" in trials:
        named = trials.dropna(subset=["hp_candidate"]).drop_duplicates("config_id")
        names = {
            int(c): str(n) for c, n in zip(named["config_id"], named["hp_candidate"], strict=True)
        }
    return Evidence(units, probs, labels, metric, names)


# ----------------------------------------------------------------------------- rules


def complete_configs(ev: Evidence, scenario: str) -> list[int]:
    """Configs with every seed of ``scenario`` done (the seeds any config completed there)."""
    u = ev.units[ev.units["scenario"] == scenario]
    seeds = set(u["seed"])
    return sorted(int(c) for c, g in u.groupby("config_id") if set(g["seed"]) == seeds)


def rule_names(k: int = ENSEMBLE_K) -> list[str]:
    base = ["loto", *VALIDATOR_NAMES]
    return base + [f"{b}+ens{k}" for b in base]


def parts_of(ev: Evidence) -> dict[str, tuple[str, str, str]]:
    u = ev.units.drop_duplicates("scenario")
    return dict(
        zip(u["scenario"], zip(u["source"], u["target"], u["task"], strict=True), strict=True)
    )


def loto_order(ev: Evidence, scenario: str, allowed: list[str]) -> list[int]:
    """The configs of ``scenario``, best mean rank first on the ``allowed`` scenarios (of the
    same task) that do not touch its target corpus; configs must be complete on all of them."""
    parts = parts_of(ev)
    _, target, task = parts[scenario]
    use = [s for s in allowed if parts[s][2] == task and target not in parts[s][:2]]
    configs = complete_configs(ev, scenario)
    for s in use:
        have = set(complete_configs(ev, s))
        configs = [c for c in configs if c in have]
    if not use or not configs:
        return []
    u = ev.units[ev.units["scenario"].isin(use) & ev.units["config_id"].isin(configs)]
    matrix = u.pivot_table(index="config_id", columns="scenario", values=ev.metric, aggfunc="mean")
    mean_rank = rank_matrix(matrix).mean(axis=1)
    mean_score = matrix.mean(axis=1)
    return sorted(configs, key=lambda c: (mean_rank[c], -mean_score[c], c))


def validator_order(ev: Evidence, scenario: str, name: str) -> list[int]:
    """The configs of ``scenario``, best mean validator score (over its seeds) first."""
    configs = complete_configs(ev, scenario)
    u = ev.units[(ev.units["scenario"] == scenario) & ev.units["config_id"].isin(configs)]
    value = u.groupby("config_id")[name].mean()
    return sorted(configs, key=lambda c: (-np.nan_to_num(value[c], nan=-np.inf), c))


def apply_rule(ev: Evidence, rule: str, scenario: str, allowed: list[str]) -> list[int]:
    """The configs ``rule`` puts together for ``scenario``: one, or the first K."""
    base, _, ens = rule.partition("+ens")
    order = (
        loto_order(ev, scenario, allowed) if base == "loto" else validator_order(ev, scenario, base)
    )
    return order[: int(ens)] if ens else order[:1]


def unit_scores(ev: Evidence, configs: list[int], scenario: str) -> dict[int, float]:
    """seed -> the metric of these configs' mean probabilities at that seed."""
    u = ev.units[(ev.units["scenario"] == scenario) & ev.units["config_id"].isin(configs)]
    out = {}
    for seed, g in u.groupby("seed"):
        if set(g["config_id"]) == set(configs):
            out[int(seed)] = ev.score(list(g["trial_id"]), scenario, int(seed))
    return out


def rule_table(
    ev: Evidence, rules: list[str], scenarios: list[str], allowed: list[str]
) -> pd.DataFrame:
    """One row per (rule, scenario, seed): the configs the rule chose and their score.
    LOTO ranks configs on ``allowed`` (less what touches each scenario's target)."""
    rows = []
    for scen in scenarios:
        for rule in rules:
            configs = apply_rule(ev, rule, scen, allowed)
            if not configs:
                continue
            for seed, value in unit_scores(ev, configs, scen).items():
                rows.append(
                    {
                        "rule": rule,
                        "scenario": scen,
                        "seed": seed,
                        "configs": configs,
                        "score": value,
                    }
                )
    return pd.DataFrame(rows, columns=["rule", "scenario", "seed", "configs", "score"])


def reference_rows(ev: Evidence, scenarios: list[str]) -> pd.DataFrame:
    """``defaults`` (the defaults candidate), each other candidate of the space by its name
    (e.g. the classical baselines) and ``oracle`` (per scenario the config with the best mean
    metric over seeds: uses the target's labels) per (scenario, seed)."""
    rows = []
    for scen in scenarios:
        configs = complete_configs(ev, scen)
        u = ev.units[(ev.units["scenario"] == scen) & ev.units["config_id"].isin(configs)]
        if u.empty:
            continue
        means = u.groupby("config_id")[ev.metric].mean()
        best = int(max(configs, key=lambda c: (means[c], -c)))
        named = [(n, c) for c, n in ev.candidates.items() if n != "defaults"]
        for name, cid in [("oracle", best), ("defaults", ev.defaults), *named]:
            if cid is None or cid not in configs:
                continue
            for seed, value in unit_scores(ev, [cid], scen).items():
                rows.append(
                    {"rule": name, "scenario": scen, "seed": seed, "configs": [cid], "score": value}
                )
    return pd.DataFrame(rows, columns=["rule", "scenario", "seed", "configs", "score"])


# ----------------------------------------------------------------------------- honest


def touches(parts: dict, scenario: str, corpus: str) -> bool:
    return corpus in parts[scenario][:2]


def honest(
    ev: Evidence, k: int = ENSEMBLE_K, rules: list[str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The honest recommendation per target corpus, judged on that target's scenarios.

    Returns (scores, choices). ``scores``: rows of :func:`rule_table` for every rule (each
    applied with LOTO's scenarios not touching the target), plus ``defaults``, ``oracle``
    and ``honest`` (the rule chosen for the target, below). ``choices``: per (task, target)
    the rule chosen and its mean score on the scenarios that do not touch the target, where
    every rule was judged with that target left out as well.
    """
    parts = parts_of(ev)
    rules = rules or rule_names(k)
    everything = sorted(parts)
    out = [reference_rows(ev, everything)]
    choices = []
    for task in tasks_of(p[2] for p in parts.values()):
        in_task = [s for s in everything if parts[s][2] == task]
        for target in sorted({parts[s][1] for s in in_task}):
            held = [s for s in in_task if parts[s][1] == target]
            away = [s for s in in_task if not touches(parts, s, target)]
            applied = rule_table(ev, rules, held, away)
            out.append(applied)
            judged = rule_table(ev, rules, away, away)  # LOTO inside: the target stays out
            means = judged.groupby("rule")["score"].mean() if len(judged) else pd.Series()
            choice = max(rules, key=lambda r: (means.get(r, -np.inf), -rules.index(r)))
            choices.append(
                {
                    "task": task,
                    "target": target,
                    "rule": choice if np.isfinite(means.get(choice, np.nan)) else None,
                    "judged_on": len(away),
                    "judged_score": float(means.get(choice, np.nan)),
                }
            )
            if choices[-1]["rule"] is not None:
                out.append(applied[applied["rule"] == choice].assign(rule="honest"))
    return pd.concat(out, ignore_index=True), pd.DataFrame(choices)


# ----------------------------------------------------------------------------- tables


def with_task(ev: Evidence, table: pd.DataFrame) -> pd.DataFrame:
    parts = parts_of(ev)
    return table.assign(task=[parts[s][2] for s in table["scenario"]])


def validator_table(ev: Evidence, scores: pd.DataFrame) -> pd.DataFrame:
    """Per task and single-pick rule: how well it tracks the metric across the configs of a
    scenario (Spearman, mean over scenarios), the mean regret to the oracle, the worst
    scenario's regret, and the mean gain over the defaults (score points, 0-1 scale)."""
    scores = with_task(ev, scores)
    per_scen = scores.groupby(["task", "rule", "scenario"])["score"].mean().unstack("rule")
    rows = []
    for task, g in per_scen.groupby(level="task"):
        g = g.droplevel("task")
        for rule in ["loto", *VALIDATOR_NAMES]:
            if rule not in g or "oracle" not in g:
                continue
            regret = (g["oracle"] - g[rule]).dropna()
            gain = (g[rule] - g["defaults"]).dropna() if "defaults" in g else pd.Series()
            rows.append(
                {
                    "task": task,
                    "rule": rule,
                    "spearman": _spearman(ev, rule, list(regret.index)),
                    "regret": float(regret.mean()),
                    "worst_scenario": str(regret.idxmax()) if len(regret) else "",
                    "worst_regret": float(regret.max()) if len(regret) else np.nan,
                    "gain_vs_defaults": float(gain.mean()) if len(gain) else np.nan,
                    "n_scenarios": int(len(regret)),
                }
            )
    return pd.DataFrame(rows)


def _spearman(ev: Evidence, rule: str, scenarios: list[str]) -> float:
    """Mean over scenarios of Spearman's rho between the rule's score of each config and
    the config's metric (means over seeds); for ``loto``, minus its mean rank elsewhere."""
    rhos = []
    for scen in scenarios:
        configs = complete_configs(ev, scen)
        if len(configs) < 3:
            continue
        u = ev.units[(ev.units["scenario"] == scen) & ev.units["config_id"].isin(configs)]
        metric = u.groupby("config_id")[ev.metric].mean()
        if rule == "loto":
            order = loto_order(ev, scen, sorted(parts_of(ev)))
            if len(order) < 3:
                continue
            value = pd.Series({c: -i for i, c in enumerate(order)})
        else:
            value = u.groupby("config_id")[rule].mean()
        both = pd.concat([value, metric], axis=1).dropna()
        if len(both) >= 3 and both.iloc[:, 0].nunique() > 1 and both.iloc[:, 1].nunique() > 1:
            rhos.append(stats.spearmanr(both.iloc[:, 0], both.iloc[:, 1]).statistic)
    return float(np.mean(rhos)) if rhos else np.nan


def rule_summary(ev: Evidence, scores: pd.DataFrame, against: str = "defaults") -> pd.DataFrame:
    """Per task and rule: mean score over scenario-seeds, and paired with ``against`` over
    the scenario-seeds both have: mean difference, wins / losses and the Wilcoxon p."""
    scores = with_task(ev, scores)
    rows = []
    for task, g in scores.groupby("task", sort=False):
        ref = g[g["rule"] == against].set_index(["scenario", "seed"])["score"]
        for rule, r in g.groupby("rule", sort=False):
            mine = r.set_index(["scenario", "seed"])["score"]
            both = pd.concat([mine, ref], axis=1, keys=["a", "b"]).dropna()
            d = both["a"] - both["b"]
            p = np.nan
            if rule != against and len(d) and (d.round(10) != 0).any():
                p = float(stats.wilcoxon(both["a"], both["b"], zero_method="wilcox").pvalue)
            rows.append(
                {
                    "task": task,
                    "rule": rule,
                    "score": float(mine.mean()),
                    "n": int(len(mine)),
                    "scenarios": int(r["scenario"].nunique()),
                    f"vs_{against}": float(d.mean()) if len(d) else np.nan,
                    "wins": int((d.round(10) > 0).sum()),
                    "losses": int((d.round(10) < 0).sum()),
                    "p": p,
                }
            )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- a sweep folder


def label_free_selection(folder: Path, trials: pd.DataFrame, metric: str, mode: str) -> dict | None:
    """Validators, honest rules and ensembles (``sweep.validate``) from the probabilities the
    trials kept; gathers them into ``<folder>/predictions.parquet`` (one file to keep or
    commit). None where no trial kept any, or the metric is not a target score to maximise."""
    if mode != "max" or metric.removeprefix("target_") not in ("war", "uar", "f1_pos", "f1_macro"):
        return None
    preds = gather_predictions(folder, trials)
    if preds.empty:
        return None
    dirs = trials["trial_dir"].dropna() if "trial_dir" in trials else []
    if any((folder / str(d) / PREDICTIONS).exists() for d in dirs):  # not when read from it
        write_gathered(folder, preds)
    ev = build_evidence(trials, preds, metric)
    if ev.units.empty:
        return None
    scores, choices = honest(ev)
    return {
        "evidence": ev,
        "scores": scores,
        "choices": choices,
        "validators": validator_table(ev, scores),
        "rules": rule_summary(ev, scores),
    }
