"""Training-step throughput, and how much of a step is spent outside the model.

    python bench/train.py [--corpora-dir ../shared/corpora] [--cache DIR] [--steps 30]

Scenario: EMODB -> CASIA, arousal, batch 64 (source) + 64 (target), one thread
(``torch.set_num_threads(1)``), for the methods ``emodna`` and ``source_only``. Features come
from the Parquet cache (built with ``emodna.features`` when it is cold: a few minutes once).

A step is exactly the body of the loop in ``emodna.train.fit``, split with
``time.perf_counter`` into five parts:

* ``batch``: draw the index batches (``_batches``), fancy-index the numpy arrays, wrap them
  with ``torch.from_numpy`` (outside the model);
* ``forward``: ``objective(model, xs, ys, xt)``: the model's forward on both batches *and*
  the loss terms computed from its outputs (the losses are part of the autograd graph);
* ``backward``: ``loss.backward()`` including the sum of the terms;
* ``optimizer``: ``zero_grad`` + ``RAdam.step`` (outside the model);
* ``bookkeeping``: stacking the step's loss terms (kept on the device, summed once per epoch)
  and, on the CPU, the per-step finiteness check (outside).

"Outside forward/backward" is ``batch + optimizer + bookkeeping`` over the whole step; the
target is < 15%. The timed loop is cross-checked against a real one-epoch ``fit`` (which
also evaluates on the target at the end of the epoch; that evaluation is reported apart and
not part of a step). Samples/s counts source and target samples (128 per step).

Roofline: the FLOPs of one step's forward and backward (``torch.utils.flop_counter``), the
GFLOP/s they achieve, and a float32 matmul's GFLOP/s measured in the same run at one thread
(the CPU's practical peak for this work); their ratio is how close the step is to it.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from emodna.config import TrainConfig
from emodna.corpora import load_corpora
from emodna.features import corpus_features
from emodna.methods import build_objective
from emodna.model import EmoDNA
from emodna.train import Domain, _batches, _check_steps, evaluate, fit, split_source

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("batch", "forward", "backward", "optimizer", "bookkeeping")


def load_domains(corpora_dir: Path, cache: Path | None, task: str = "arousal"):
    corpora = load_corpora(corpora_dir, names=["EMODB", "CASIA"])
    feats = corpus_features(corpora, cache_dir=cache, workers=2, progress=False)
    return tuple(Domain(feats[n].x, feats[n].labels(task), n) for n in ("EMODB", "CASIA"))


def timed_steps(method: str, source: Domain, target: Domain, n_steps: int, warmup: int = 3):
    """Run the body of ``fit``'s loop ``warmup + n_steps`` times; per-part seconds per step."""
    cfg = TrainConfig(source=source.name, target=target.name, method=method, epochs=1)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    train_idx, _ = split_source(source.y, cfg.val_fraction, cfg.seed)
    model = EmoDNA(n_mfcc=source.x.shape[1], n_classes=2, dropout=cfg.dropout)
    objective = build_objective(cfg, n_classes=2)
    optimizer = torch.optim.RAdam([*model.parameters(), *objective.parameters()], lr=cfg.lr)
    model.train()
    objective.train()
    total = warmup + n_steps
    src_batches = _batches(train_idx, cfg.batch_size, total, gen)
    tgt_batches = _batches(np.arange(len(target.x)), cfg.batch_size, total, gen)
    times = {p: [] for p in PARTS}
    rows = []
    for step in range(total):
        t0 = time.perf_counter()
        si, ti = next(src_batches), next(tgt_batches)
        xs = torch.from_numpy(source.x[si])
        ys = torch.from_numpy(source.y[si])
        xt = torch.from_numpy(target.x[ti])
        t1 = time.perf_counter()
        terms = objective(model, xs, ys, xt, progress=step / total)
        t2 = time.perf_counter()
        loss = sum(terms.values())
        loss.backward()
        t3 = time.perf_counter()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        t4 = time.perf_counter()
        rows.append(torch.stack([v.detach() for v in terms.values()]))
        _check_steps(rows[-1][None], list(terms), step, 0, cfg)
        t5 = time.perf_counter()
        if step >= warmup:
            for part, seconds in zip(
                PARTS, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True
            ):
                times[part].append(seconds)
    eval_t0 = time.perf_counter()
    evaluate(model, objective, source, target, np.arange(0), 2)
    eval_seconds = time.perf_counter() - eval_t0
    return {p: statistics.median(v) for p, v in times.items()}, eval_seconds


def step_flops(method: str, source: Domain, target: Domain) -> int:
    """FLOPs of one training step's forward and backward (batch 64 + 64), counted by torch."""
    from torch.utils.flop_counter import FlopCounterMode

    cfg = TrainConfig(source=source.name, target=target.name, method=method, epochs=1)
    model = EmoDNA(n_mfcc=source.x.shape[1], n_classes=2, dropout=cfg.dropout)
    objective = build_objective(cfg, n_classes=2)
    xs, ys = torch.from_numpy(np.array(source.x[:64])), torch.from_numpy(source.y[:64])
    xt = torch.from_numpy(np.array(target.x[:64]))
    with FlopCounterMode(display=False) as counter:
        sum(objective(model, xs, ys, xt).values()).backward()
    return counter.get_total_flops()


def matmul_gflops(n: int = 1024, repeats: int = 5) -> float:
    """float32 matmul GFLOP/s at the current thread count: the practical peak to compare with."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def fit_epoch_seconds(method: str, source: Domain, target: Domain) -> tuple[float, int]:
    """Wall time of one real epoch of ``fit`` (steps + end-of-epoch evaluation) and its steps."""
    cfg = TrainConfig(source=source.name, target=target.name, method=method, epochs=1)
    steps = math.ceil(
        max(round(len(source.x) * (1 - cfg.val_fraction)), len(target.x)) / cfg.batch_size
    )
    return fit(cfg, source, target)["epoch_seconds"], steps


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpora-dir", type=Path, default=ROOT.parent / "shared" / "corpora")
    parser.add_argument(
        "--cache", type=Path, default=None, help="feature cache (default: emodna's)"
    )
    parser.add_argument(
        "--steps", type=int, default=30, help="timed steps per method (after 3 warm-up steps)"
    )
    parser.add_argument("--methods", nargs="+", default=["emodna", "source_only"])
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    source, target = load_domains(args.corpora_dir, args.cache)
    print(
        f"EMODB -> CASIA arousal: source {source.x.shape}, target {target.x.shape}, "
        f"batch 64 + 64, torch {torch.__version__}, 1 thread, median of {args.steps} steps\n"
    )
    header = f"{'method':<12} {'step ms':>8} {'samples/s':>10} " + " ".join(
        f"{p:>11}" for p in PARTS
    )
    print(header + f" {'outside':>8}")
    results = {}
    for method in args.methods:
        parts, eval_s = timed_steps(method, source, target, args.steps)
        step = sum(parts.values())
        outside = (parts["batch"] + parts["optimizer"] + parts["bookkeeping"]) / step
        results[method] = (step, eval_s, parts)
        shares = " ".join(f"{1e3 * parts[p]:6.1f} {100 * parts[p] / step:3.0f}%" for p in PARTS)
        print(f"{method:<12} {1e3 * step:8.1f} {128 / step:10.0f} {shares} {100 * outside:7.1f}%")
    print(
        "\n(each part: ms per step and its share of the step; 'outside' = batch + optimizer + bookkeeping)\n"
    )
    peak = matmul_gflops()
    for method in args.methods:
        flops = step_flops(method, source, target)
        parts_s = results[method][2]
        achieved = flops / (parts_s["forward"] + parts_s["backward"]) / 1e9
        print(
            f"{method:<12} {flops / 1e9:.2f} GFLOP per step (forward + backward): "
            f"{achieved:.1f} GFLOP/s achieved; matmul peak {peak:.1f} GFLOP/s at 1 thread: "
            f"{100 * achieved / peak:.0f}% of it"
        )
    print()
    for method in args.methods:
        seconds, steps = fit_epoch_seconds(method, source, target)
        step, eval_s, _ = results[method]
        print(
            f"{method:<12} real fit epoch: {seconds:5.2f} s for {steps} steps = {1e3 * (seconds - eval_s) / steps:.1f} ms"
            f"/step after taking off the target evaluation ({eval_s:.2f} s); timed loop: {1e3 * step:.1f} ms/step"
        )


if __name__ == "__main__":
    main()
