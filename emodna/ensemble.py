"""Ensembles: several trained models whose class probabilities are averaged.

``emodna summarize`` writes them into a sweep's ``best/`` (``sweep.recommend``)::

    ensemble:
      - config: {source: EMODB, target: CASIA, task: arousal, method: emodna, ...}
        checkpoint: EMODB-CASIA-arousal-honest/member0-c3-s0.pt   # relative to the YAML
      - config: {...}
        checkpoint: null                                          # a config to train
    origin: {...}                                                 # where it came from

``emodna predict --model FILE`` averages its members' probabilities (each member computes
its own input features, so MFCC networks and eGeMAPS regressions mix);
``emodna train --config FILE`` trains every member and scores the average
(:func:`average_scores`). An ensemble of one is a single config.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from emodna.config import TrainConfig
from emodna.errors import ConfigError

ENSEMBLE_KEY = "ensemble"


@dataclass(frozen=True)
class Member:
    config: TrainConfig
    checkpoint: Path | None  # None: not trained yet


def _read(path: Path) -> dict:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the config ({exc})") from exc
    return data if isinstance(data, dict) else {}


def is_ensemble(path: str | Path) -> bool:
    """True for a YAML file with an ``ensemble`` list."""
    path = Path(path)
    return path.suffix in (".yaml", ".yml") and path.is_file() and ENSEMBLE_KEY in _read(path)


def read_members(path: str | Path, **overrides) -> list[Member]:
    """The members of an ensemble file, each config with ``overrides`` (None: keep) applied;
    a ConfigError naming the member for a bad config or a missing checkpoint file."""
    path = Path(path)
    listed = _read(path).get(ENSEMBLE_KEY)
    if not isinstance(listed, list) or not listed:
        raise ConfigError(f"{path}: 'ensemble' must list at least one member (config, checkpoint)")
    members = []
    for i, item in enumerate(listed):
        if not isinstance(item, dict) or not isinstance(item.get("config"), dict):
            raise ConfigError(f"{path}: ensemble member {i} has no 'config' mapping")
        values = {**item["config"], **{k: v for k, v in overrides.items() if v is not None}}
        cfg = TrainConfig.from_dict(values, origin=f"{path}: member {i}")
        ckpt = item.get("checkpoint")
        ckpt = (path.parent / ckpt) if ckpt else None
        if ckpt is not None and not ckpt.exists():
            raise ConfigError(
                f"{path}: member {i}'s checkpoint {ckpt} is missing; export the sweep again "
                "(emodna summarize) or train the members (emodna train --config)"
            )
        members.append(Member(cfg, ckpt))
    tasks = {m.config.task for m in members}
    if len(tasks) > 1:
        raise ConfigError(f"{path}: members of one ensemble have one task, got {sorted(tasks)}")
    return members


def average(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """The mean of several runs' prediction tables (``emodna.validators.prediction_table``) on
    the target: one row per target clip, the probabilities averaged."""
    targets = [t[t["split"] == "target"].sort_values("row").reset_index(drop=True) for t in tables]
    rows = [t["row"].to_numpy() for t in targets]
    if any(not np.array_equal(rows[0], r) for r in rows[1:]):
        raise ConfigError("ensemble members were evaluated on different target clips")
    pcols = [c for c in targets[0].columns if c.startswith("p") and c[1:].isdigit()]
    out = targets[0][["row", "clip", "label"]].copy()
    out[pcols] = np.mean([t[pcols].to_numpy(np.float64) for t in targets], axis=0)
    return out


def average_scores(tables: list[pd.DataFrame]) -> dict[str, float]:
    """``target_war``, ``target_uar``, ... of the members' averaged probabilities."""
    from emodna.metrics import scores

    mean = average(tables)
    p = mean[[c for c in mean.columns if c.startswith("p") and c[1:].isdigit()]].to_numpy()
    return {f"target_{k}": v for k, v in scores(mean["label"], p.argmax(1), p.shape[1]).items()}


def train_members(members: list[Member], train_one, out: Path) -> dict:
    """Train each member with ``train_one(config, out_folder, predictions_path)`` (which
    returns its final metrics) into ``out/member<i>``, then score the average of their
    target probabilities: one result dict (``emodna train --config ENSEMBLE``)."""
    from emodna.validators import PREDICTIONS

    out = Path(out)
    finals, tables = [], []
    for i, m in enumerate(members):
        folder = out / f"member{i}"
        finals.append(train_one(m.config, folder, folder / PREDICTIONS))
        tables.append(pd.read_parquet(folder / PREDICTIONS))
    first = members[0].config
    return {
        "source": first.source,
        "target": first.target,
        "task": first.task,
        "members": len(members),
        "out": str(out),
        **average_scores(tables),
        "member_target_uar": [f.get("target_uar") for f in finals],
    }
