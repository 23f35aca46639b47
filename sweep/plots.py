"""The summary's plots: the best score per scenario (heatmap), the mean score against each
hyperparameter, and the critical-difference diagram. matplotlib without pyplot (Agg).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from sweep.ranking import decode_value, tasks_of
from sweep.stats import cliques


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
    tasks = tasks_of(best["task"]) if len(best) else []
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
            y = 100 * ranking[f"mean_metric_{task}"].to_numpy(dtype=float)  # percent, as the tables
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
        ax.set_ylabel(f"mean {metric} (%)")
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
