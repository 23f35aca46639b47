"""``summary.md``: the markdown report of a sweep, one function per section, with the paper's
Tables 2 and 3 layout (:mod:`sweep.paper_table`)."""

from __future__ import annotations

import json
import math
import time

import pandas as pd

from sweep.info import Summary, SweepInfo
from sweep.markdown import md_table, pct, pm
from sweep.paper_table import paper_table
from sweep.ranking import SCORE_LABELS as SHORT
from sweep.ranking import SCORES, completed_units, decode_value, to_plain
from sweep.report_validation import render_validation


def _fmt_hp(v) -> str:
    v = decode_value(v)
    if v is None:
        return "–"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt_hp(x) for x in v) + "]"
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def _feature_set(x) -> str:
    """The features a ranked config read (``TrainConfig.feature_set``), from its hp columns."""
    from emodna.config import TrainConfig

    values = {}
    for key in ("frontend", "functionals"):
        v = decode_value(x.get(f"hp_{key}")) if f"hp_{key}" in x else None
        if isinstance(v, str):
            values[key] = v
    return TrainConfig(method=str(x["method"]), **values).feature_set


def _by_features(r: pd.DataFrame, short: str) -> list[str]:
    """``## By front-end``: when the configs read more than one feature set, each set's
    config count, mean score over its configs, and its best config."""
    if r.empty:
        return []
    sets = r.apply(_feature_set, axis=1)
    if sets.nunique() < 2:
        return []
    rows = []
    for name, g in r.groupby(sets, sort=False):
        best = g.sort_values("rank").iloc[0]
        rows.append(
            [
                name,
                len(g),
                pct(g["mean_metric"].mean()),
                f"config {best['config_id']} ({best['method']}, #{best['rank']})",
                pct(best["mean_metric"]),
            ]
        )
    header = ["features", "configs", f"mean {short} of its configs", "best config", f"its {short}"]
    return [
        "",
        "## By front-end",
        "",
        md_table(header, rows),
        "",
        "The features each config read: its front-end, or `egemaps` (openSMILE's functionals) "
        "for the classical baseline with `functionals: egemaps`.",
        "",
    ]


def vs_leader(x) -> str:
    """'-1.3 (4/14)': paired with the rank-1 config (see ranking.rank_configs); '–' for it."""
    if not x["vs_leader_shared"]:
        return "–"
    return f"{100 * x['vs_leader_diff']:+.1f} ({x['vs_leader_better']}/{x['vs_leader_shared']})"


def _header(s: Summary, info: SweepInfo, trials: pd.DataFrame) -> list[str]:
    """The title, what was swept and how far it got, and how to read the scores."""
    m, r = s.metric, s.ranking
    n_scen = int(r["n_scenarios_total"].iloc[0]) if len(r) else 0
    seeds = sorted(set(int(x) for x in trials["seed"]))
    count = {k: int((trials["status"] == k).sum()) for k in ("completed", "error", "diverged")}
    out = [f"# Sweep summary: {s.folder.name}", ""]
    out.append(
        f"`{s.folder}` · metric **{m}** ({'higher' if s.mode == 'max' else 'lower'} is better) · "
        f"{len(r)} configs · {n_scen} scenarios × {len(seeds)} seed(s) · "
        f"{count['completed']} trials completed, {count['error']} failed, "
        f"{count['diverged']} diverged · generated {time.strftime('%Y-%m-%d %H:%M')}"
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
    return [*out, ""]


def _ranking_row(x, tasks: list[str], hps: list[str]) -> list:
    status = x["status"] if x["status"] == "complete" else f"**{x['status']}** ({x['note']})"
    return [
        x["rank"],
        x["config_id"],
        x["method"],
        status,
        f"{x['mean_rank']:.2f}" if not math.isnan(x["mean_rank"]) else "–",
        pct(x["mean_metric"]),
        vs_leader(x),
        *[pct(x[f"mean_metric_{t}"]) for t in tasks],
        f"{x['worst_scenario']} ({pct(x['worst_metric'])})" if x["worst_scenario"] else "–",
        f"{x['n_scenarios']}/{x['n_scenarios_total']}",
        f"{x['n_units']}/{x['n_units_expected']}",
        *[_fmt_hp(x[h]) for h in hps],
    ]


def _ranking(s: Summary) -> list[str]:
    """``## Ranking across scenarios``: one row per config, its searched values that vary."""
    r, short = s.ranking, SHORT.get(s.metric, s.metric)
    hps = [
        c
        for c in r.columns
        if c.startswith("hp_")
        and r[c].map(lambda v: json.dumps(to_plain(decode_value(v)))).nunique() > 1
    ]
    tasks = [c[len("mean_metric_") :] for c in r.columns if c.startswith("mean_metric_")]
    header = (
        ["#", "config", "method", "status", "mean rank", f"mean {short}", "vs #1", *tasks]
        + ["worst scenario", "scenarios", "units"]
        + [h[3:] for h in hps]
    )
    rows = [_ranking_row(x, tasks, hps) for _, x in r.iterrows()]
    return [
        "## Ranking across scenarios",
        "",
        md_table(header, rows),
        "",
        "Complete configs (every scenario and seed done) come first; incomplete and pruned "
        "ones follow, ranked on the scenarios they covered. *vs #1*: paired with the rank-1 "
        f"config on the scenarios both cover, the mean difference in {short} points and on how "
        "many of them this config is better (a mean over other scenarios is not a comparison). "
        "Full table: `ranking.parquet`.",
        "",
    ]


def _significance(s: Summary) -> list[str]:
    """The Friedman test, the Nemenyi critical difference and its diagram."""
    out = []
    f = s.friedman
    if f is not None and math.isfinite(f["statistic"]):
        verdict = (
            f" (the configs differ at α = {s.alpha:g})."
            if f["pvalue"] < s.alpha
            else f" (no significant difference at α = {s.alpha:g})."
        )
        out.append(
            f"**Friedman test** over the {f['k']} complete configs by {f['n']} scenarios: "
            f"χ²({f['k'] - 1}) = {f['statistic']:.2f}, p = {f['pvalue']:.3g}; "
            f"Iman-Davenport F = {f['f_statistic']:.2f}, p = {f['f_pvalue']:.3g}" + verdict
        )
    else:
        k = int((s.ranking["status"] == "complete").sum())
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
    return out


def _best(s: Summary) -> list[str]:
    """``## Best config per scenario (oracle)``, and the exports for new corpora."""
    m, short = s.metric, SHORT.get(s.metric, s.metric)
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
                pm(b[m], b.get(f"{m}_std")),
                *[pm(b.get(c), b.get(f"{c}_std")) for c in SCORES if c != m],
                b["n_seeds"],
                link + (" + .pt" if has_pt else ""),
            ]
        )
    header = ["scenario", "config", "method", f"{short} mean ± std"]
    header += [SHORT[c] for c in SCORES if c != m] + ["seeds", "export"]
    out = [
        "## Best config per scenario (oracle)",
        "",
        "Chosen with the target's labels, as in the paper's tables: an upper bound on what a "
        "user without target labels gets (see Honest selection). Exported to `best/`.",
        "",
        md_table(header, rows),
        "",
    ]
    overall = [k for k in s.exports if k.startswith("overall-")]
    if overall:
        out.append(
            "For a corpus the sweep never saw: "
            + ", ".join(f"`best/{k}.yaml`" for k in overall)
            + " (train with `emodna train --config ... --source ... --target ...`); what to run "
            "on each scenario's target without its labels: `best/<scenario>-honest.yaml` "
            "(`emodna predict --model` reads it)."
        )
        out.append("")
    return out


def _selection_cells(x) -> list:
    cells = [x["task"], x["n_scenarios"], pct(x["oracle"])]
    for sel in ("overall", "loto", "val_acc", "entropy"):
        if x[f"{sel}_n"] == 0:
            cells.append("n/a")
            continue
        cell = f"{pct(x[sel])} ({100 * x[f'{sel}_gap']:+.1f})"
        if x[f"{sel}_n"] < x["n_scenarios"]:
            cell += f" [{x[f'{sel}_n']}/{x['n_scenarios']}]"
        cells.append(cell)
    return cells


def _honest(s: Summary) -> list[str]:
    """``## Honest selection``: configs chosen without the target's labels, beside the oracle."""
    short = SHORT.get(s.metric, s.metric)
    header = ["task", "scenarios", f"oracle {short}", "best overall", "LOTO"]
    header += ["max source val acc", "min target entropy"]
    return [
        "## Honest selection",
        "",
        "What a config chosen without the scenario's target labels scores, beside the oracle "
        "(gap in points, negative = worse). *Oracle*: the best config per scenario. *Best overall*: "
        "the rank-1 config (still chosen with all labels). *LOTO*: leave-target-corpus-out — for "
        "each task and target corpus T, the config ranked best on that task's scenarios whose "
        "target is not T, scored on the scenarios whose target is T. *Max source val acc* / *min "
        "target entropy*: per scenario, the config with the best label-free signal recorded by "
        "training.",
        "",
        md_table(header, [_selection_cells(x) for _, x in s.selection.iterrows()]),
        "",
        *_loto(s.loto, short),
    ]


def _loto(loto: pd.DataFrame, short: str) -> list[str]:
    """Leave-target-corpus-out, one row per task and held-out target."""
    if not len(loto):
        return []
    rows = [
        [
            x["task"],
            x["held_out_target"],
            x["n_scenarios"],
            "–" if pd.isna(x["selected_config"]) else int(x["selected_config"]),
            pct(x["score"]),
            pct(x["oracle"]),
            "n/a" if math.isnan(x["gap"]) else f"{100 * x['gap']:+.1f}",
        ]
        for _, x in loto.iterrows()
    ]
    header = ["task", "held-out target", "scenarios", "selected config", short]
    header += [f"oracle {short}", "gap"]
    out = ["Leave-target-corpus-out, per held-out target:", "", md_table(header, rows), ""]
    if loto["selected_config"].isna().any():
        out += ["n/a: no other scenario of the task with another target to select on.", ""]
    return out


def _paper_tables(s: Summary, trials: pd.DataFrame, top: int) -> list[str]:
    """``## Tables 2 and 3``: the top configs, then each method's best config."""
    r = s.ranking
    out = [
        "## Tables 2 and 3 (paper layout)",
        "",
        "Rows: source corpus (its targets averaged) and Average (all scenarios of the task). "
        "Cells: WAR and F1 in %, the mean over the row's scenarios of each scenario's mean over "
        "seeds ± the standard deviation over seeds of each seed's mean over the row's scenarios "
        "(no ± with one seed). `*`: the config did not cover all of the row's scenarios.",
        "",
    ]
    runs = completed_units(trials, s.metric)
    top_cols = [
        (f"#{int(x['rank'])} cfg {int(x['config_id'])}", int(x["config_id"]))
        for _, x in r.head(top).iterrows()
    ]
    method_cols = [
        (f"{x['method']} (cfg {int(x['config_id'])})", int(x["config_id"]))
        for _, x in r.drop_duplicates("method").iterrows()
    ]
    for number, task in ((2, "arousal"), (3, "valence")):
        if task not in set(s.scores["task"]):
            continue
        out += [f"### Table {number}: {task}, top configs", ""]
        out += [paper_table(runs, task, top_cols), ""]
        if len(method_cols) > 1:
            out += [f"### Table {number}: {task}, every method (its best config)", ""]
            out += [paper_table(runs, task, method_cols), ""]
        else:
            out += [
                f"One method in this sweep ({method_cols[0][0]}); its best config is #1 above.",
                "",
            ]
    return out


def _plots(s: Summary) -> list[str]:
    if "heatmap" not in s.files:
        return []
    short = SHORT.get(s.metric, s.metric)
    return [
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


def render_markdown(s: Summary, info: SweepInfo, trials: pd.DataFrame, top: int = 3) -> str:
    """``summary.md``: its sections in order."""
    return "\n".join(
        [
            *_header(s, info, trials),
            *_ranking(s),
            *_significance(s),
            *_by_features(s.ranking, SHORT.get(s.metric, s.metric)),
            *_best(s),
            *render_validation(s.validation, s.metric),
            *_honest(s),
            *_paper_tables(s, trials, top),
            *_plots(s),
        ]
    )
