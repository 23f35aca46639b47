"""Summarize a sweep folder: ranking across scenarios, honest selection, exports, report.

    emodna summarize runs/NAME

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

Where the parts live:

- :mod:`sweep.ranking`: the trials table, the per-scenario scores and the ranking;
- :mod:`sweep.stats`: the Friedman test, the Nemenyi critical difference and its cliques;
- :mod:`sweep.selection`: the best config per scenario and the honest (leave-target-corpus-out)
  selection;
- this module: what the sweep folder holds besides its trials (``sweep.json``, the space, the
  study) and :func:`summarize`;
- :mod:`sweep.export`: ``best/``; :mod:`sweep.plots`: ``plots/``; :mod:`sweep.report`:
  ``summary.md``, one function per section, its Tables 2 and 3 from :mod:`sweep.paper_table`
  (shared with the benches).
"""

from __future__ import annotations

import json
import math
import shutil
import sys
from pathlib import Path

import pandas as pd

from emodna.atomic import atomic_write
from emodna.errors import ConfigError, EmodnaError
from sweep import SETTINGS, SPACE, TRIALS
from sweep.export import export_best
from sweep.info import Summary, SweepInfo
from sweep.inputs import locate
from sweep.markdown import pct
from sweep.plots import plot_cd, plot_heatmap, plot_hyperparameters
from sweep.ranking import (
    SIGNALS,
    completed_units,
    decode_value,
    load_trials,
    pick_best_seed,
    rank_configs,
    scenario_scores,
    score_matrix,
    to_plain,
)
from sweep.recommend import export_honest
from sweep.report import SHORT, render_markdown
from sweep.selection import best_per_scenario, honest_selection, selection_table
from sweep.stats import friedman, nemenyi_cd
from sweep.storage import open_storage
from sweep.validate import label_free_selection

# ----------------------------------------------------------------------------- sweep info


def _resolve(path_text, folder: Path) -> Path | None:
    """A path sweep.json recorded, where it exists now (``sweep.inputs.locate``), else None."""
    if not path_text:
        return None
    p = Path(locate(str(Path(str(path_text)).expanduser()), folder))
    return p if p.exists() else None


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
        store = open_storage(str(storage), create=False)
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
    copy = folder / SPACE  # the space the sweep ran with (sweep.inputs.write_settings)
    space_path = copy if copy.exists() else _resolve(info.settings.get("space"), folder)
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
            if t.user_attrs.get("candidate"):
                info.candidates[t.number] = str(t.user_attrs["candidate"])
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
            info.scenarios = sp.scenarios(available)
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


# ----------------------------------------------------------------------------- summary


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
    if not (trials["status"] == "completed").any():
        counts = trials["status"].value_counts()
        raise ConfigError(
            f"{folder / TRIALS}: no trial completed yet ({', '.join(f'{n} {k}' for k, n in counts.items())}); "
            "the error column says why"
        )
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
    scores = pick_best_seed(scenario_scores(trials, metric), mode)
    best = best_per_scenario(scores, ranking, metric, mode)
    per, loto = honest_selection(trials, scores, ranking, metric, mode, info.states)
    sel = selection_table(per)
    if "hp_candidate" not in trials and info.candidates:  # sweeps before trials recorded it
        trials = trials.assign(hp_candidate=trials["config_id"].map(info.candidates))
    validation = label_free_selection(folder, trials, metric, mode)
    # Friedman over the complete configs, CD over the top ones (or one per method)
    matrix = score_matrix(scores, metric)
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
        if validation is not None:
            v = validation
            exports |= export_honest(
                folder, trials, v["evidence"], v["scores"], v["choices"], info, tmp
            )
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
        searched=list(getattr(info.space, "params", {})),
        validation=validation,
        alpha=alpha,
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
                table[c] = table[c].map(lambda v: None if v is None else json.dumps(to_plain(v)))
    atomic_write(files["ranking"], lambda p: table.to_parquet(p, index=False))
    result.markdown = render_markdown(result, info, trials, top)
    files["summary"] = folder / "summary.md"
    atomic_write(files["summary"], lambda p: p.write_text(result.markdown))
    return result


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
            f"mean {short} {pct(x['mean_metric'])}{mark}",
            file=file,
        )
    if len(r) > 5:
        print(f"... {len(r) - 5} more in ranking.parquet", file=file)
    if len(r):
        best = r.iloc[0]
        hps = {
            c[3:]: decode_value(best[c])
            for c in r.columns
            if c.startswith("hp_") and c[3:] in s.searched and decode_value(best[c]) is not None
        }
        if hps:
            shown = ", ".join(
                f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                for k, v in sorted(hps.items())
            )
            print(f"#1 searched: {shown}", file=file)
    print(f"summary: {s.files.get('summary')}", file=file)
    if s.exports:
        print(f"best configs: {len(s.exports)} in {s.folder / 'best'}", file=file)
