"""docs/results.md's like-for-like tables: what a sweep's honest advice is worth.

    python bench/selection.py results/transfer-seeds
    python bench/selection.py results/transfer-seeds --against egemaps_lr

Reads a sweep folder's files only (``trials.parquet``, the trials' kept probabilities,
``predictions.parquet`` where the trial folders are gone, and the study or ``hp_candidate``
for the candidates' names), computes what ``emodna summarize`` computes
(``sweep.validate.label_free_selection``) and prints, per task, every rule beside the
defaults, the space's other candidates (the classical baselines) and the oracle, paired over
scenario-seeds with ``--against`` (Wilcoxon), then the validators judged and the rule the
honest recommendation chose per target.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sweep.markdown import md_table
from sweep.ranking import load_trials
from sweep.report_validation import rule_rows, validator_rows
from sweep.summarize import sweep_info
from sweep.validate import label_free_selection, rule_summary


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sweep", type=Path, help="a sweep folder (or committed results of one)")
    ap.add_argument(
        "--against", action="append", help="rules to pair with (default: defaults, egemaps_lr)"
    )
    args = ap.parse_args(argv)
    folder = args.sweep.resolve()
    trials = load_trials(folder)
    info = sweep_info(folder, trials)
    if "hp_candidate" not in trials and info.candidates:
        trials = trials.assign(hp_candidate=trials["config_id"].map(info.candidates))
    v = label_free_selection(folder, trials, info.metric, info.mode)
    if v is None:
        raise SystemExit(f"{folder}: no trial kept its predictions; nothing to judge")
    ev = v["evidence"]
    seeds = sorted(int(s) for s in ev.units["seed"].unique())
    print(
        f"{len(ev.units)} trials, {ev.units['config_id'].nunique()} configs, seeds {seeds}; "
        "scores in %, mean over scenario-seeds; differences in points\n"
    )
    for against in args.against or ["defaults", "egemaps_lr"]:
        table = rule_summary(ev, v["scores"], against=against)
        if table.empty or against not in set(table["rule"]):
            continue
        for task in dict.fromkeys(table["task"]):
            print(f"{task}, paired with {against}\n")
            head = ["rule", "UAR", f"vs {against}", "wins / losses", "Wilcoxon p", "n"]
            print(md_table(head, rule_rows(table, task, against)) + "\n")
    for task in dict.fromkeys(v["validators"]["task"]):
        print(f"{task}: validators (single pick) judged with the target's labels\n")
        head = ["rule", "Spearman", "mean regret", "worst scenario (regret)", "vs defaults"]
        print(md_table(head, validator_rows(v["validators"], task)) + "\n")
    print("honest: the rule chosen per target, on the scenarios that do not touch it\n")
    rows = [[x.task, x.target, x.rule, x.judged_on, f"{100 * x.judged_score:.1f}"]
            for x in v["choices"].itertuples()]  # fmt: skip
    print(md_table(["task", "target", "rule", "judged on", "UAR there"], rows) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
