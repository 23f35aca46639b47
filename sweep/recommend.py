"""The honest exports: what a user without the target's labels should run.

- ``best/<SOURCE>-<TARGET>-<task>-honest.yaml``: per scenario, the configs the honest
  recommendation (:func:`sweep.validate.honest`) chose for that target corpus, as an
  ensemble file (:mod:`emodna.ensemble`; one config is an ensemble of one): each chosen
  config at every seed that ran, with its trial's checkpoint in the folder of the same name.
  A target that no scenario leaves out (fewer than three corpora) gets ``FALLBACK_RULE``;
- ``best/overall-<task>.yaml``: for a corpus the sweep never saw, the configs ranked best
  over all the task's scenarios, one or an ensemble as leave-target-corpus-out judged
  better (:func:`overall_members`), without checkpoints: ``emodna train --config`` trains
  them on the user's source and target.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from emodna.config import TrainConfig
from emodna.ensemble import ENSEMBLE_KEY
from emodna.errors import ConfigError
from sweep.export import _display, _trial_dirs, feature_origin, train_values, trial_checkpoint
from sweep.info import SweepInfo
from sweep.ranking import rank_matrix, tasks_of, to_plain
from sweep.validate import ENSEMBLE_K, Evidence, complete_configs, parts_of, rule_table

# a target corpus that no scenario leaves out (fewer than three corpora) gets this rule:
# entropy-type scores are the robust label-free ones on small data (SKADA-Bench, 2024)
FALLBACK_RULE = f"neg_entropy+ens{ENSEMBLE_K}"


def _config_values(trials: pd.DataFrame, cid: int, scenario: dict, seed: int) -> dict:
    base = trials[trials["config_id"] == cid].iloc[0].copy()
    for k in ("source", "target", "task"):
        base[k] = scenario[k]
    values, _ = train_values(base, seed)
    return values


def overall_members(ev: Evidence, task: str, k: int = ENSEMBLE_K) -> tuple[str, list[int]]:
    """For a corpus the sweep never saw: the configs complete on every scenario of the task
    by mean rank over all of them, and whether one (``loto``) or the first K
    (``loto+ens<K>``) did better honestly (mean over the task's targets of
    :func:`honest`'s per-target scores of those two rules)."""
    parts = parts_of(ev)
    in_task = sorted(s for s in parts if parts[s][2] == task)
    if not in_task:
        raise ConfigError(f"no scenario of task {task} in the sweep")
    configs = set(complete_configs(ev, in_task[0]))
    for s in in_task[1:]:
        configs &= set(complete_configs(ev, s))
    u = ev.units[ev.units["scenario"].isin(in_task) & ev.units["config_id"].isin(configs)]
    matrix = u.pivot_table(index="config_id", columns="scenario", values=ev.metric, aggfunc="mean")
    mean_rank, mean_score = rank_matrix(matrix).mean(axis=1), matrix.mean(axis=1)
    order = sorted(configs, key=lambda c: (mean_rank[c], -mean_score[c], c))
    single, ens = "loto", f"loto+ens{k}"
    judged = rule_table(ev, [single, ens], in_task, in_task)
    means = judged.groupby("rule")["score"].mean()
    rule = ens if means.get(ens, -np.inf) > means.get(single, -np.inf) else single
    return rule, order[: (k if rule == ens else 1)]


def write_ensemble(
    path: Path, members: list[tuple[dict, Path | None]], origin: dict, header
) -> None:
    """An ensemble YAML at ``path``: each member's config, and its checkpoint copied into the
    folder ``<path stem>/`` (None: a config to train)."""
    folder = path.with_suffix("")
    listed = []
    for i, (values, ckpt) in enumerate(members):
        name = None
        if ckpt is not None:
            folder.mkdir(parents=True, exist_ok=True)
            name = f"{folder.name}/member{i}-c{values.get('config_id', '')}-s{values['seed']}.pt"
            shutil.copy2(ckpt, path.parent / name)
        config = {k: v for k, v in values.items() if k != "config_id"}
        listed.append({"config": config, "checkpoint": name})
    body = {ENSEMBLE_KEY: listed}
    text = "".join(f"# {line}\n" for line in header)
    text += yaml.safe_dump(to_plain({**body, "origin": origin}), sort_keys=False, width=100)
    path.write_text(text)


def export_honest(
    folder: Path,
    trials: pd.DataFrame,
    ev: Evidence,
    scores: pd.DataFrame,
    choices: pd.DataFrame,
    info: SweepInfo,
    out: Path,
) -> dict[str, Path]:
    """Write the ``-honest`` exports and ``overall-<task>.yaml``; returns name -> path."""
    written: dict[str, Path] = {}
    cache: dict = {}
    created = time.strftime("%Y-%m-%d %H:%M:%S")
    chosen = {(r.task, r.target): r.rule for r in choices.itertuples()} if len(choices) else {}
    units = ev.units
    index = _trial_dirs(folder)  # folder names, for sweeps before trials.parquet's trial_dir
    for scen, g in units.groupby("scenario", sort=True):
        first = g.iloc[0]
        rule = chosen.get((first["task"], first["target"])) or FALLBACK_RULE
        label = "honest" if chosen.get((first["task"], first["target"])) else FALLBACK_RULE
        rows = scores[(scores["rule"] == rule) & (scores["scenario"] == scen)]
        if rows.empty:
            continue
        configs = list(rows["configs"].iloc[0])
        scenario = {"source": first["source"], "target": first["target"], "task": first["task"]}
        members = []
        for cid in configs:
            for r in g[g["config_id"] == cid].sort_values("seed").itertuples():
                values = _config_values(trials, cid, scenario, int(r.seed))
                ckpt = trial_checkpoint(folder, trials, r.trial_id, index)
                members.append(({**values, "config_id": cid}, ckpt))
        first_config = {k: v for k, v in members[0][0].items() if k != "config_id"}
        feature_set = TrainConfig.from_dict(first_config).feature_set
        origin = {
            "sweep": _display(folder),
            "scenario": scen,
            "selected_by": f"{rule} ({label}: chosen without {first['target']}'s labels)",
            "configs": configs,
            "metric": ev.metric,
            "score_mean_over_seeds": float(rows["score"].mean()),
            "partial_sweep": bool(info.partial),
            "features": feature_origin(str(first["target"]), info, cache, feature_set),
            "created": created,
        }
        name = f"{scen}-honest"
        path = out / f"{name}.yaml"
        header = [
            f"What to run on {first['target']} without its labels ({scen}), chosen by rule {rule}",
            f"in sweep {folder.name}: {len(configs)} config(s), {len(members)} trained model(s).",
            f"emodna predict --model {_display(folder)}/best/{name}.yaml CLIP.wav",
        ]
        write_ensemble(path, members, origin, header)
        written[name] = path
    for task in tasks_of(units["task"]):
        rule, configs = overall_members(ev, task)
        any_scen = units[units["task"] == task].iloc[0]
        scenario = {"source": any_scen["source"], "target": any_scen["target"], "task": task}
        members = [(_config_values(trials, c, scenario, 0), None) for c in configs]
        name = f"overall-{task}"
        path = out / f"{name}.yaml"
        origin = {
            "sweep": _display(folder),
            "selected_by": f"{rule}: mean rank over every {task} scenario; one config or an "
            "ensemble as leave-target-corpus-out judged better",
            "configs": configs,
            "partial_sweep": bool(info.partial),
            "created": created,
        }
        header = [
            f"For a target corpus the sweep never saw ({task}): {len(configs)} config(s) of "
            f"sweep {folder.name} ({rule}).",
            "Train it on your corpora (each member is trained, their probabilities averaged):",
            f"emodna train --corpora-dir DATA/ --config {_display(folder)}/best/{name}.yaml "
            "--source SOURCE --target TARGET",
        ]
        write_ensemble(path, members, origin, header)
        written[name] = path
    return written
