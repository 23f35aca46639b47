"""``summary.md``'s section on choosing without the target's labels (``sweep.validate``):
the validators judged against the target's labels, the rules and ensembles beside the
defaults and the oracle, and the rule the honest recommendation chose per target."""

from __future__ import annotations

import pandas as pd

from emodna.validators import VALIDATORS
from sweep.markdown import md_table, missing, pct


def _pts(v) -> str:
    return "–" if missing(v) else f"{100 * v:+.1f}"


def _p(v) -> str:
    return "–" if missing(v) else f"{v:.3g}"


def table_lines(header: list[str], rows: list[list]) -> list[str]:
    return [md_table(header, rows), ""]


def _rule_label(rule: str) -> str:
    base, _, k = rule.partition("+ens")
    return f"{base}, ensemble of {k}" if k else base


def validator_rows(table: pd.DataFrame, task: str) -> list[list]:
    rows = []
    for x in table[table["task"] == task].itertuples():
        rows.append(
            [
                x.rule,
                "–" if missing(x.spearman) else f"{x.spearman:+.2f}",
                _pts(x.regret).lstrip("+"),
                f"{x.worst_scenario} ({_pts(x.worst_regret).lstrip('+')})",
                _pts(x.gain_vs_defaults),
            ]
        )
    return rows


def rule_rows(rules: pd.DataFrame, task: str, against: str = "defaults") -> list[list]:
    """One row per rule of ``sweep.validate.rule_summary(..., against=against)``: the
    reference first, then the oracle and the honest recommendation, then the rest by score."""
    order = [against, "oracle", "honest"]
    g = rules[rules["task"] == task]
    g = g.assign(_k=[order.index(r) if r in order else len(order) for r in g["rule"]])
    rows = []
    for x in g.sort_values(["_k", "score"], ascending=[True, False]).itertuples():
        ref = x.rule == against
        vs = getattr(x, f"vs_{against}")
        rows.append(
            [
                _rule_label(x.rule),
                pct(x.score),
                "" if ref else _pts(vs),
                "" if ref else f"{x.wins} / {x.losses}",
                "" if ref else _p(x.p),
                x.n,
            ]
        )
    return rows


def render_validation(v: dict | None, metric: str) -> list[str]:
    """The section's markdown lines (none where the trials kept no predictions)."""
    if v is None:
        return []
    short = metric.removeprefix("target_").upper()
    out = ["## Choosing without the target's labels", ""]
    out.append(
        "Each trial kept its class probabilities (`predictions.parquet`), so label-free "
        "validators and ensembles are computed here without retraining. A *rule* orders the "
        "configs of a scenario without its target's labels: `loto` by their mean rank on the "
        "task's scenarios that touch the target corpus neither way, a validator by its score on "
        "the scenario itself; it picks the first config, or averages the probabilities of the "
        "first K (*ensemble of K*, at each seed). Validators (higher is better): "
        + "; ".join(f"`{k}` {d}" for k, d in VALIDATORS.items())
        + "."
    )
    out.append("")
    for task in dict.fromkeys(v["rules"]["task"]):
        out += [f"### {task}: how well each rule tracks the target's labels", ""]
        out += table_lines(
            [
                "rule",
                "Spearman with " + short,
                "mean regret to oracle",
                "worst scenario (regret)",
                "vs defaults",
            ],
            validator_rows(v["validators"], task),
        )
        out += [f"### {task}: rules and ensembles beside the defaults", ""]
        out += table_lines(
            [
                "rule",
                short,
                "vs defaults (points)",
                "wins / losses",
                "Wilcoxon p",
                "scenario-seeds",
            ],
            rule_rows(v["rules"], task),
        )
    choices = v["choices"]
    if len(choices):
        rows = [
            [
                x.task,
                x.target,
                _rule_label(x.rule) if isinstance(x.rule, str) else "– (no scenario leaves it out)",
                x.judged_on,
                pct(x.judged_score),
            ]
            for x in choices.itertuples()
        ]
        out += [
            "*honest*: for each target corpus, the rule with the best mean score on the "
            "scenarios that do not touch it (judged there with the target left out as well), "
            "applied to the target's scenarios:",
            "",
        ]
        out += table_lines(["task", "target", "rule chosen", "judged on scenarios", short], rows)
    return out
