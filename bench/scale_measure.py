"""Part 1 of bench/scale.py: epoch times of ``emodna.train.fit``, and the cost model fitted to them.

``fit`` on real features (one thread, ``torch.set_num_threads(1)``) for a few scenarios,
plus one scenario whose clips are stretched (tiled in time) to IEMOCAP's 606 frames,
because the model's cost grows with the frames and the shipped corpora span only 172-215.
The end-of-epoch evaluation is timed on its own (``emodna.train.evaluate`` on a fresh
model). ``sweep.cost.CostModel.fit`` then fits the step (``a + b * 64 * (f_s + f_t)``,
from ``(epoch - evaluation) / steps``) and the evaluation (``c * (N_t f_t + n_val f_s)``).

Both the wall time and the CPU time the process got (``time.process_time``) are fitted: on
a loaded machine the wall time holds the waiting for a core; the CPU time is what a
dedicated core would take.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from emodna.config import TrainConfig  # noqa: E402
from emodna.corpora import load_corpora  # noqa: E402
from emodna.evaluation import evaluate  # noqa: E402
from emodna.features import HOP_LENGTH, PAPER_LENGTHS, corpus_features  # noqa: E402
from emodna.labels import CLASSES  # noqa: E402
from emodna.methods import build_objective  # noqa: E402
from emodna.model import EmoDNA  # noqa: E402
from emodna.train import Domain, fit, split_source  # noqa: E402
from sweep.cost import CostModel, Timing  # noqa: E402

# (source, target) pairs timed on the real features; the stretched pair is added on top
PAIRS = [("EMODB", "CASIA"), ("RAVDESS", "EMOVO"), ("CASIA", "RAVDESS"), ("EMOVO", "EMODB")]
STRETCH = ("EMODB", "EMOVO")  # tiled in time to IEMOCAP's frames, STRETCH_CLIPS clips each
STRETCH_CLIPS = 320
SHIPPED_CLIPS = {"CASIA": 1200, "EMODB": 535, "EMOVO": 588, "RAVDESS": 1440}  # --skip-measure
CLOCKS = ("wall", "cpu")


def frames(corpus: str) -> int:
    """Frames of the paper's fixed length: librosa's 1 + samples // hop."""
    return 1 + PAPER_LENGTHS[corpus] // HOP_LENGTH


def shipped_sizes() -> dict[str, tuple[int, int]]:
    """(clips, frames) of the shipped corpora, without reading them (``--skip-measure``)."""
    return {n: (clips, frames(n)) for n, clips in SHIPPED_CLIPS.items()}


def stretch(x: np.ndarray, n: int, n_frames: int) -> np.ndarray:
    """The first ``n`` clips, tiled along time to ``n_frames`` frames (same statistics)."""
    reps = math.ceil(n_frames / x.shape[2])
    return np.ascontiguousarray(np.tile(x[:n], (1, 1, reps))[:, :, :n_frames])


def eval_seconds(source: Domain, target: Domain, task: str) -> tuple[float, float]:
    """The end-of-epoch evaluation of ``fit`` on a fresh model (same cost as a trained one):
    (wall, CPU) seconds."""
    cfg = TrainConfig(source=source.name, target=target.name, task=task, epochs=1)
    torch.manual_seed(0)
    _, val_idx = split_source(source.y, cfg.val_fraction, cfg.seed)
    n_classes = len(CLASSES[task])
    model = EmoDNA(n_mfcc=source.x.shape[1], n_classes=n_classes, dropout=cfg.dropout)
    objective = build_objective(cfg, n_classes=n_classes)
    t0, c0 = time.perf_counter(), time.process_time()
    evaluate(model, objective, source, target, val_idx, n_classes)
    return time.perf_counter() - t0, time.process_time() - c0


def jobs(domains: dict[str, Domain]) -> list[tuple[Domain, Domain, str]]:
    """The measured scenarios, and the stretched one at IEMOCAP's frames."""
    out = [(domains[s], domains[t], f"{s}->{t}") for s, t in PAIRS]
    long = frames("IEMOCAP")
    s, t = (domains[n] for n in STRETCH)
    out.append(
        (
            Domain(stretch(s.x, STRETCH_CLIPS, long), s.y[:STRETCH_CLIPS], f"{s.name}*"),
            Domain(stretch(t.x, STRETCH_CLIPS, long), t.y[:STRETCH_CLIPS], f"{t.name}*"),
            f"{s.name}->{t.name} @{long} frames, {STRETCH_CLIPS} clips each",
        )
    )
    return out


def time_scenario(source: Domain, target: Domain, label: str, task: str, epochs: int) -> dict:
    """``fit`` for ``epochs`` epochs: the fastest epoch and the evaluation, per clock."""
    cfg = TrainConfig(source=source.name, target=target.name, task=task, epochs=epochs)
    walls: list[float] = []
    cpu = [time.process_time()]  # the CPU time this process got: the load shows as wall > CPU

    def on_epoch(m):
        walls.append(m["epoch_seconds"])
        cpu.append(time.process_time())

    fit(cfg, source, target, on_epoch=on_epoch)
    cpus = list(np.diff(cpu))
    ev_wall, ev_cpu = eval_seconds(source, target, task)
    n_s, n_t = len(source.x), len(target.x)
    shape = CostModel(0.0, 0.0, 0.0)  # fit's steps and split
    print(
        f"  {label:<44} epochs: wall {', '.join(f'{x:.1f}' for x in walls)} s, "
        f"CPU {', '.join(f'{x:.1f}' for x in cpus)} s",
        flush=True,
    )
    return dict(
        label=label,
        n_s=n_s,
        n_t=n_t,
        f_s=source.x.shape[2],
        f_t=target.x.shape[2],
        steps=shape.steps(n_s, n_t),
        n_val=shape.split(n_s)[1],
        wall=(min(walls), ev_wall),
        cpu=(min(cpus), ev_cpu),
    )


def measure(corpora_dir: Path, cache: Path | None, epochs: int) -> tuple[list[dict], dict]:
    """Time ``fit`` per epoch on real scenarios; returns the rows and corpus sizes."""
    names = sorted({n for pair in PAIRS + [STRETCH] for n in pair})
    feats = corpus_features(
        load_corpora(corpora_dir, names=names), cache_dir=cache, workers=2, progress=False
    )
    sizes = {n: (len(f.x), f.x.shape[2]) for n, f in feats.items()}
    task = "arousal"
    domains = {n: Domain(f.x, f.labels(task), n) for n, f in feats.items()}
    rows = [time_scenario(s, t, label, task, epochs) for s, t, label in jobs(domains)]
    return rows, sizes


def fit_models(rows: list[dict]) -> dict[str, CostModel]:
    """The cost model fitted to each clock's (epoch, evaluation) seconds."""
    return {
        clock: CostModel.fit(
            Timing(r["n_s"], r["f_s"], r["n_t"], r["f_t"], *r[clock]) for r in rows
        )
        for clock in CLOCKS
    }


def print_measured(rows: list[dict], models: dict[str, CostModel]) -> None:
    print(
        f"\n{'scenario (arousal, 1 thread)':<44} {'clips':>10} {'frames':>8} {'steps':>5} | "
        f"{'wall: epoch':>11} {'eval':>5} {'s/step':>6} {'model':>6} | "
        f"{'CPU: epoch':>10} {'eval':>5} {'s/step':>6} {'model':>6}"
    )
    for r in rows:
        cells = []
        for clock, m in models.items():
            epoch, ev = r[clock]
            pred = m.epoch(r["n_s"], r["f_s"], r["n_t"], r["f_t"])
            cells.append(
                f"{epoch:>{11 if clock == 'wall' else 10}.2f} {ev:>5.2f} "
                f"{(epoch - ev) / r['steps']:>6.3f} {pred:>6.2f}"
            )
        print(
            f"{r['label']:<44} {r['n_s']:>4}+{r['n_t']:<5} {r['f_s']:>3}+{r['f_t']:<4} {r['steps']:>5} | "
            + " | ".join(cells)
        )
    print(
        "(epoch: the fastest of the epochs run, its evaluation included; eval: the evaluation "
        "alone; model: the fit below)"
    )
    for clock, m in models.items():
        print(
            f"fit ({clock:>4}): step = {1e3 * m.a:3.0f} ms + {1e6 * m.b:.2f} us x 64 x (f_s + f_t); "
            f"evaluation = {1e6 * m.c:.2f} us x (N_t f_t + n_val f_s)"
        )
