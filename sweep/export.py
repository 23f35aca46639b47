"""Export of a sweep's best config per scenario (the oracle: chosen with the target's
labels): ``best/<SCENARIO>.yaml`` with the trial's checkpoint beside it (``.pt``) and an
``origin`` mapping. What to run without the target's labels is ``sweep.recommend``'s.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pandas as pd
import yaml

from emodna.config import TrainConfig
from emodna.errors import EmodnaError
from sweep.info import SweepInfo
from sweep.ranking import SCORES, completed_units, decode_value, to_plain


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


def trial_checkpoint(
    folder: Path, trials: pd.DataFrame, trial_id: str, index: dict | None = None
) -> Path | None:
    """The latest checkpoint of a trial: in the folder trials.parquet records (``trial_dir``),
    or, for sweeps before it, a folder whose name holds the id (``index``: :func:`_trial_dirs`)."""
    recorded = (
        trials.loc[trials["trial_id"] == trial_id, "trial_dir"] if "trial_dir" in trials else []
    )
    if len(recorded) and isinstance(recorded.iloc[0], str):
        dirs = [folder / recorded.iloc[0]]
    else:
        dirs = (index if index is not None else _trial_dirs(folder)).get(trial_id, [])
    return next((c for c in map(latest_checkpoint, dirs) if c is not None), None)


def feature_origin(target: str, info: SweepInfo, cache: dict, frontend: str = "mfcc") -> dict:
    """How the target corpus's features were computed: what predict needs to redo them.

    The input normalisation and the target's statistics travel in the checkpoint (written
    by ``emodna.train.fit``), not here."""
    from emodna.features import FeatureSettings

    settings = FeatureSettings(frontend=frontend)
    out = {
        "frontend": settings.frontend,
        "sample_rate": settings.sample_rate,
        "n_mfcc": settings.n_mfcc,
        "n_mels": settings.n_mels,
        "corpus": target,
        "length": settings.length_for(target),
    }
    out["length_from"] = "paper" if out["length"] is not None else None
    if out["length"] is None:
        if target not in cache:
            cache[target] = _percentile_facts(target, info, settings)
        out.update(cache[target])
    return out


def _percentile_facts(target: str, info: SweepInfo, settings) -> dict:
    """The percentile length of a corpus without a paper length, from the corpus on disk."""
    if info.corpora_dir is None:
        return {"length_from": "unknown: corpora folder not found; pass --length to predict"}
    try:
        from emodna.corpora import load_corpora
        from emodna.features import _percentile_length

        corpus = load_corpora(info.corpora_dir, names=[target])[target]
        return {
            "length": int(_percentile_length(corpus, settings)),
            "length_from": f"{settings.length_percentile:g}th percentile of {target}'s durations",
        }
    except EmodnaError as exc:
        return {"length_from": f"unknown: {exc}"}


def train_values(row: pd.Series, seed: int) -> tuple[dict, dict]:
    """(TrainConfig dict, extra hyperparameters that TrainConfig does not know) for a config."""
    from emodna.config import RENAMED, TRAIN_KEYS

    names = TRAIN_KEYS | set(RENAMED)
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
        to_plain({**values, "origin": origin}), sort_keys=False, default_flow_style=None, width=100
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
        src = trial_checkpoint(folder, trials, trial_id, trial_index)
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
                str(srow["target"]), info, cache, TrainConfig.from_dict(values).feature_set
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
    return written
