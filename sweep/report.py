"""``summary.md``: the markdown report of a sweep, with the paper's Tables 2 and 3 layout."""

from __future__ import annotations

import json
import math
import time

import pandas as pd

from sweep.info import Summary, SweepInfo
from sweep.markdown import md_table, pct
from sweep.ranking import SCORE_LABELS as SHORT
from sweep.ranking import SCORES, decode_value, to_plain
from sweep.report_validation import render_validation


def _pm(mean, std) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    if std is None or (isinstance(std, float) and math.isnan(std)):
        return f"{100 * mean:.1f}"
    return f"{100 * mean:.1f} ± {100 * std:.1f}"


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


def paper_table(scores: pd.DataFrame, task: str, columns: list[tuple[str, int]]) -> str:
    """The paper's Table 2/3 layout: rows = source corpora + Average, per column WAR and F1
    of the positive class (the F1 the paper reports).

    A cell is the mean over the source's targets of the per-scenario mean over seeds, ±
    the mean over those targets of the per-scenario std over seeds. ``*``: the config
    misses some of the row's scenarios.
    """
    sub = scores[scores["task"] == task]
    sources = sorted(sub["source"].unique())
    all_scen = {s: set(sub.loc[sub["source"] == s, "scenario"]) for s in sources}
    header = ["source"] + [f"{label} {m}" for label, _ in columns for m in ("WAR", "F1 pos")]
    rows = []
    for src in [*sources, "Average"]:
        row = [src if src != "Average" else "**Average**"]
        for _, cid in columns:
            mine = sub[sub["config_id"] == cid]
            want = set(sub["scenario"]) if src == "Average" else all_scen[src]
            if src != "Average":
                mine = mine[mine["source"] == src]
            star = "*" if set(mine["scenario"]) != want else ""
            for m in ("target_war", "target_f1_pos"):
                if m not in mine or mine.empty:
                    row.append("–")
                    continue
                std = mine[f"{m}_std"].mean() if mine[f"{m}_std"].notna().any() else float("nan")
                row.append(_pm(float(mine[m].mean()), float(std)) + star)
        rows.append(row)
    return md_table(header, rows)


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
        and r[c].map(lambda v: json.dumps(to_plain(decode_value(v)))).nunique() > 1
    ]
    tasks = [c[len("mean_metric_") :] for c in r.columns if c.startswith("mean_metric_")]
    header = (
        ["#", "config", "method", "status", "mean rank", f"mean {short}", "vs #1"]
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
            pct(x["mean_metric"]),
            vs_leader(x),
        ]
        row += [pct(x[f"mean_metric_{t}"]) for t in tasks]
        row += [
            f"{x['worst_scenario']} ({pct(x['worst_metric'])})" if x["worst_scenario"] else "–",
            f"{x['n_scenarios']}/{x['n_scenarios_total']}",
            f"{x['n_units']}/{x['n_units_expected']}",
        ]
        row += [_fmt_hp(x[h]) for h in hps]
        rows.append(row)
    out += [md_table(header, rows), ""]
    out.append(
        "Complete configs (every scenario and seed done) come first; incomplete and pruned "
        "ones follow, ranked on the scenarios they covered. *vs #1*: paired with the rank-1 "
        f"config on the scenarios both cover, the mean difference in {short} points and on how "
        "many of them this config is better (a mean over other scenarios is not a comparison). "
        "Full table: `ranking.parquet`."
    )
    out.append("")
    if s.friedman is not None and math.isfinite(s.friedman["statistic"]):
        f = s.friedman
        out.append(
            f"**Friedman test** over the {f['k']} complete configs by {f['n']} scenarios: "
            f"χ²({f['k'] - 1}) = {f['statistic']:.2f}, p = {f['pvalue']:.3g}; "
            f"Iman-Davenport F = {f['f_statistic']:.2f}, p = {f['f_pvalue']:.3g}"
            + (
                f" (the configs differ at α = {s.alpha:g})."
                if f["pvalue"] < s.alpha
                else f" (no significant difference at α = {s.alpha:g})."
            )
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
    out += _by_features(r, short)

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
        md_table(
            ["scenario", "config", "method", f"{short} mean ± std"]
            + [SHORT[c] for c in SCORES if c != m]
            + ["seeds", "export"],
            rows,
        ),
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
    out += render_validation(s.validation, m)

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
        cells = [x["task"], x["n_scenarios"], pct(x["oracle"])]
        for sel in ("overall", "loto", "val_acc", "entropy"):
            if x[f"{sel}_n"] == 0:
                cells.append("n/a")
                continue
            gap = x[f"{sel}_gap"]
            cell = f"{pct(x[sel])} ({100 * gap:+.1f})"
            if x[f"{sel}_n"] < x["n_scenarios"]:
                cell += f" [{x[f'{sel}_n']}/{x['n_scenarios']}]"
            cells.append(cell)
        rows.append(cells)
    out += [
        md_table(
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
                pct(x["score"]),
                pct(x["oracle"]),
                "n/a" if math.isnan(x["gap"]) else f"{100 * x['gap']:+.1f}",
            ]
            for _, x in s.loto.iterrows()
        ]
        out += [
            "Leave-target-corpus-out, per held-out target:",
            "",
            md_table(
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
