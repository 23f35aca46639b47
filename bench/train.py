"""Training-step throughput, and how much of a step is spent outside the model.

    python bench/train.py [--corpora-dir ../shared/corpora] [--cache DIR] [--steps 30]
        [--amp off auto bf16] [--compile on] [--clock cpu] [--baseline REV] [--vmap-seeds 2 4]

Scenario: EMODB -> CASIA, arousal, batch 64 (source) + 64 (target), one thread
(``torch.set_num_threads(1)``), for the methods ``emodna`` and ``source_only``. Features come
from the Parquet cache (built with ``emodna.features`` when it is cold: a few minutes once).

A step is exactly the body of the loop in ``emodna.train.fit``, split with
``time.perf_counter`` (``--clock cpu``: ``time.thread_time``) into five parts:

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
(the CPU's practical peak for this work); their ratio is how close the step is to it. Each
row runs once in float32 and once under ``amp: bf16`` (``torch.autocast``; FLOPs counted in
float32, so the bf16 row's ratio can pass 1 on a CPU with bf16 units).

Old and new (issue 23's bar): the default step of each method (its ``TrainConfig``
defaults: float32 before issue 23, ``amp: auto`` since) with the code at ``--baseline``
(``git archive`` into a temp folder; default b1ce44c, the step when issue 23 was filed) and
with this checkout, each in its own process at one thread, alternating, so a loaded machine
slows both alike; the median over process pairs of each process's median step.

vmap over seeds (issue 15, item 4): S seeds as one ``torch.func.vmap``-ed model against S
models stepped one after the other; the figures decide whether it is worth building.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from step_baseline import BASELINE, step_seconds_old_and_new

from emodna.config import TrainConfig
from emodna.corpora import load_corpora
from emodna.evaluation import evaluate
from emodna.features import corpus_features
from emodna.methods import build_model, build_objective
from emodna.speed import autocast_dtype, compile_model, keep_freed_memory
from emodna.train import Domain, _batches, _check_steps, fit, make_optimizer, split_source

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("batch", "forward", "backward", "optimizer", "bookkeeping")
# what the steps and the matmul peak are timed with: wall time, or with --clock cpu this
# thread's CPU time (at one torch thread all of a step's work runs on it), which a loaded
# machine distorts far less (docs/scaling.md)
CLOCK = [time.perf_counter]


def load_domains(corpora_dir: Path, cache: Path | None, task: str = "arousal"):
    corpora = load_corpora(corpora_dir, names=["EMODB", "CASIA"])
    feats = corpus_features(corpora, cache_dir=cache, workers=2, progress=False)
    return tuple(Domain(feats[n].x, feats[n].labels(task), n) for n in ("EMODB", "CASIA"))


def timed_steps(
    method: str,
    source: Domain,
    target: Domain,
    n_steps: int,
    warmup: int = 3,
    amp: str = "off",
    compile: str = "off",
):
    """Run the body of ``fit``'s loop ``warmup + n_steps`` times; per-part seconds per step
    (and ``first``: the first step's seconds, which include ``torch.compile``'s)."""
    cfg = TrainConfig(
        source=source.name, target=target.name, method=method, epochs=1, amp=amp, compile=compile
    )
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    train_idx, _ = split_source(source.y, cfg.val_fraction, cfg.seed)
    keep_freed_memory()  # as fit does
    model = build_model(method, source.x.shape[1], 2, cfg.dropout, cfg.bn)
    model, dtype = compile_model(model, compile), autocast_dtype(amp, torch.device("cpu"))
    objective = build_objective(cfg, n_classes=2)
    optimizer = make_optimizer(model, objective, cfg)
    model.train()
    objective.train()
    total = warmup + n_steps
    src_batches = _batches(train_idx, cfg.batch_size, total, gen)
    tgt_batches = _batches(np.arange(len(target.x)), cfg.batch_size, total, gen)
    times = {p: [] for p in PARTS}
    rows, first = [], 0.0
    for step in range(total):
        t0 = CLOCK[0]()
        si, ti = next(src_batches), next(tgt_batches)
        xs = torch.from_numpy(source.x[si])
        ys = torch.from_numpy(source.y[si])
        xt = torch.from_numpy(target.x[ti])
        t1 = CLOCK[0]()
        with torch.autocast("cpu", torch.bfloat16, enabled=dtype is not None):
            terms = objective(model, xs, ys, xt, progress=step / total)
        t2 = CLOCK[0]()
        loss = sum(terms.values())
        loss.backward()
        t3 = CLOCK[0]()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        t4 = CLOCK[0]()
        rows.append(torch.stack([v.detach() for v in terms.values()]))
        _check_steps(rows[-1][None], list(terms), step, 0, cfg)
        t5 = CLOCK[0]()
        first = first or t5 - t0
        if step >= warmup:
            for part, seconds in zip(
                PARTS, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True
            ):
                times[part].append(seconds)
    eval_t0 = CLOCK[0]()
    evaluate(model, objective, source, target, np.arange(0), 2)
    eval_seconds = CLOCK[0]() - eval_t0
    return {p: statistics.median(v) for p, v in times.items()}, eval_seconds, first


def lstm_layer_flops(inp, w_ih, w_hh, *args, out_shape=None, **kwargs) -> int:
    """One LSTM layer direction's matmul FLOPs, forward: per step and sample, the four gates
    ``W_ih x_t + W_hh h_(t-1)``, i.e. ``2 * 4H * (I + H)``; ``inp`` is ``[T, B, I]``. (The
    gate nonlinearities and the cell update, O(H) per step, are not counted, as torch counts
    no elementwise work.)"""
    steps, batch, features = inp
    gates, hidden = w_hh
    return 2 * steps * batch * gates * (features + hidden)


def lstm_layer_backward_flops(inp, w_ih, w_hh, *args, out_shape=None, **kwargs) -> int:
    """Twice the forward's: the gradients for the inputs (x and h) and for both weights."""
    return 2 * lstm_layer_flops(inp, w_ih, w_hh)


# for torch.utils.flop_counter.FlopCounterMode(custom_mapping=...)
LSTM_FLOP_FORMULAS = {
    torch.ops.aten.mkldnn_rnn_layer: lstm_layer_flops,
    torch.ops.aten.mkldnn_rnn_layer_backward: lstm_layer_backward_flops,
}


def step_flops(method: str, source: Domain, target: Domain) -> int:
    """FLOPs of one training step's forward and backward (batch 64 + 64), counted by torch.

    torch's counter has no formula for oneDNN's LSTM kernels, which run nn.LSTM on the CPU,
    and counted the corpus encoder as 0 FLOPs (before 2026-12-07 a quarter of the step's
    matmul work went uncounted); :func:`lstm_layer_flops` gives them theirs."""
    from torch.utils.flop_counter import FlopCounterMode

    cfg = TrainConfig(source=source.name, target=target.name, method=method, epochs=1)
    model = build_model(method, source.x.shape[1], 2, cfg.dropout, cfg.bn)
    objective = build_objective(cfg, n_classes=2)
    xs, ys = torch.from_numpy(np.array(source.x[:64])), torch.from_numpy(source.y[:64])
    xt = torch.from_numpy(np.array(target.x[:64]))
    with FlopCounterMode(display=False, custom_mapping=LSTM_FLOP_FORMULAS) as counter:
        sum(objective(model, xs, ys, xt).values()).backward()
    return counter.get_total_flops()


def matmul_gflops(n: int = 1024, repeats: int = 5, dtype=torch.float32) -> float:
    """Matmul GFLOP/s at the current thread count: the practical peak to compare with."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b  # warm-up
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(fn) -> float:
    t0 = CLOCK[0]()
    fn()
    return CLOCK[0]() - t0


def fit_epoch_seconds(method: str, source: Domain, target: Domain) -> tuple[float, int]:
    """Wall time of one real epoch of ``fit`` (steps + end-of-epoch evaluation) and its steps."""
    cfg = TrainConfig(source=source.name, target=target.name, method=method, epochs=1)
    steps = math.ceil(
        max(round(len(source.x) * (1 - cfg.val_fraction)), len(target.x)) / cfg.batch_size
    )
    return fit(cfg, source, target)["epoch_seconds"], steps


def vmap_seeds(source: Domain, target: Domain, n_seeds: int, n_steps: int = 5) -> dict:
    """Issue 15's experiment: train ``n_seeds`` seeds as one batched model
    (``torch.func.stack_module_state`` + ``vmap``, each seed its own batch) against one model
    per seed, seconds per step of all seeds (forward + backward of the emotion and corpus
    cross-entropies). ``nn.LSTM`` (the corpus encoder) has no batching rule, so the full model
    fails under vmap (reported); the rest is measured with the corpus encoder replaced by a
    mean over time and a linear layer, an upper bound on what vmap could give.

    ``emodna.model.Dropout`` draws its packed masks with an in-place ``random_()``, which
    vmap's ``randomness="different"`` refuses, and ``PairMaxPool``'s autograd.Function has no
    vmap rule; here every model (both sides alike) uses torch's ``nn.Dropout`` and
    ``max_pool1d`` in their place."""
    import copy

    from torch.func import functional_call, stack_module_state, vmap

    from emodna.model import Dropout, PairMaxPool

    class FramePool(torch.nn.Module):  # MaxPool1d(2) over the frames of [B, T, C]
        def forward(self, x):
            return torch.nn.functional.max_pool1d(x.transpose(1, 2), 2).transpose(1, 2)

    def torch_modules(model):  # the same layers with torch's own dropout and pool
        for parent in list(model.modules()):
            for name, child in parent.named_children():
                if isinstance(child, Dropout):
                    setattr(parent, name, torch.nn.Dropout(child.p))
                elif isinstance(child, PairMaxPool):
                    setattr(parent, name, FramePool())
        return model

    class MeanEncoder(torch.nn.Module):  # stands in for the Bi-LSTM
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(64, 64)

        def forward(self, x):
            return self.fc(x.mean(dim=1))  # x [B, T, C]

    def step_loss(model, run, xs, ys, xt):  # run(x): the model's forward (or a functional one)
        model.set_domain(0)
        out_s = run(xs)
        model.set_domain(1)
        out_t = run(xt)
        corpus = torch.cat([torch.zeros_like(ys), torch.ones_like(ys)])
        logits_c = torch.cat([out_s.logits_c, out_t.logits_c])
        return F.cross_entropy(out_s.logits_e, ys) + F.cross_entropy(logits_c, corpus)

    gen = np.random.default_rng(0)
    pick = [(gen.choice(len(source.x), 64), gen.choice(len(target.x), 64)) for _ in range(n_seeds)]
    xs = torch.stack([torch.from_numpy(source.x[i]) for i, _ in pick])  # [S, 64, F, T]
    ys = torch.stack([torch.from_numpy(source.y[i]) for i, _ in pick])
    xt = torch.stack([torch.from_numpy(target.x[j]) for _, j in pick])

    def models(lstm: bool):
        out = []
        for seed in range(n_seeds):
            torch.manual_seed(seed)
            model = torch_modules(build_model("emodna", source.x.shape[1], 2, 0.1, "adabn"))
            model.train()
            if not lstm:
                model.corpus_encoder = MeanEncoder()
            out.append(model)
        return out

    def batched_step(ms):
        params, buffers = stack_module_state(ms)
        base = copy.deepcopy(ms[0]).to("meta")

        def one(p, b, x_s, y_s, x_t):
            return step_loss(base, lambda x: functional_call(base, (p, b), (x,)), x_s, y_s, x_t)

        one_model = vmap(one, randomness="different")
        return lambda: one_model(params, buffers, xs, ys, xt).sum().backward()

    error = ""
    try:
        batched_step(models(lstm=True))()
    except RuntimeError as exc:
        error = str(exc).splitlines()[0]
    ms = models(lstm=False)

    def separate():
        for k, m in enumerate(ms):
            step_loss(m, m, xs[k], ys[k], xt[k]).backward()

    return {
        "full_model_error": error,
        "separate_s": _median_time(separate, n_steps),
        "vmap_s": _median_time(batched_step(ms), n_steps),
    }


def _median_time(fn, n: int) -> float:
    fn()  # warm-up
    return statistics.median(_timed(fn) for _ in range(n))


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
    parser.add_argument(
        "--amp",
        nargs="+",
        default=["off", "auto"],
        choices=["off", "auto", "bf16"],
        help="precisions to time (auto: the default, bf16 where the CPU runs it natively)",
    )
    parser.add_argument(
        "--compile", choices=["off", "on"], default="off", help="torch.compile the model"
    )
    parser.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="time steps by the wall clock or by this thread's CPU time (a loaded machine)",
    )
    parser.add_argument(
        "--baseline",
        default=BASELINE,
        help=f"git revision whose default step is timed beside this checkout's (default "
        f"{BASELINE}, the step when issue 23 was filed; 'none' skips it)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="old/new process pairs, alternating")
    parser.add_argument(
        "--vmap-seeds", type=int, nargs="*", default=[2, 4], help="seed counts for the vmap test"
    )
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    CLOCK[0] = time.thread_time if args.clock == "cpu" else time.perf_counter
    source, target = load_domains(args.corpora_dir, args.cache)
    print(
        f"EMODB -> CASIA arousal: source {source.x.shape}, target {target.x.shape}, "
        f"batch 64 + 64, torch {torch.__version__}, 1 thread, median of {args.steps} steps "
        f"({args.clock} clock)\n"
    )
    header = f"{'method':<12} {'amp':<4} {'step ms':>8} {'samples/s':>10} " + " ".join(
        f"{p:>11}" for p in PARTS
    )
    print(header + f" {'outside':>8}")
    results = {}
    for method in args.methods:
        for amp in args.amp:
            parts, eval_s, first = timed_steps(
                method, source, target, args.steps, amp=amp, compile=args.compile
            )
            step = sum(parts.values())
            outside = (parts["batch"] + parts["optimizer"] + parts["bookkeeping"]) / step
            results[method, amp] = (step, eval_s, parts)
            shares = " ".join(f"{1e3 * parts[p]:6.1f} {100 * parts[p] / step:3.0f}%" for p in PARTS)
            print(
                f"{method:<12} {amp:<4} {1e3 * step:8.1f} {128 / step:10.0f} {shares} "
                f"{100 * outside:7.1f}%"
            )
            if args.compile == "on":
                print(f"{'':<17} first step {first:.1f} s (torch.compile's time + one step)")
    print(
        "\n(each part: ms per step and its share of the step; 'outside' = batch + optimizer + bookkeeping)\n"
    )
    peak = matmul_gflops()
    print(f"float32 matmul peak at 1 thread: {peak:.1f} GFLOP/s (the roofline used below)")
    print(
        f"bfloat16 matmul peak at 1 thread: {matmul_gflops(dtype=torch.bfloat16):.1f} GFLOP/s "
        "(what a bf16 step could reach on this CPU)"
    )
    for method in args.methods:
        flops = step_flops(method, source, target)
        for amp in args.amp:
            parts_s = results[method, amp][2]
            achieved = flops / (parts_s["forward"] + parts_s["backward"]) / 1e9
            print(
                f"{method:<12} {amp:<4} {flops / 1e9:.2f} GFLOP per step (forward + backward): "
                f"{achieved:.1f} GFLOP/s, {achieved / peak:.2f} of the float32 peak"
            )
    print()
    fit_amp = TrainConfig().amp  # the precision fit trains at; its timed row where there is one
    amp = fit_amp if fit_amp in args.amp else args.amp[0]
    for method in args.methods:
        seconds, steps = fit_epoch_seconds(method, source, target)
        step, eval_s, _ = results[method, amp]
        print(
            f"{method:<12} real fit epoch: {seconds:5.2f} s for {steps} steps = {1e3 * (seconds - eval_s) / steps:.1f} ms"
            f"/step after taking off the target evaluation ({eval_s:.2f} s); timed loop ({amp}): {1e3 * step:.1f} ms/step"
        )
    if args.baseline != "none":
        print(f"\nthe default step, code at {args.baseline} vs this checkout ({args.clock} clock):")
        for method in args.methods:
            clock = "thread_time" if args.clock == "cpu" else "perf_counter"
            old, new = step_seconds_old_and_new(
                method, source, target, args.baseline, args.rounds, args.steps, clock
            )
            precision = {True: "bf16", False: "float32"}
            print(
                f"{method:<12} old {1e3 * old['step_s']:6.1f} ms ({precision[old['bf16']]}), "
                f"new {1e3 * new['step_s']:6.1f} ms ({precision[new['bf16']]}): new/old "
                f"{new['step_s'] / old['step_s']:.2f} (median of {args.rounds} process pairs, "
                "alternating)"
            )
    for n_seeds in args.vmap_seeds:
        r = vmap_seeds(source, target, n_seeds)
        if n_seeds == args.vmap_seeds[0]:
            print(f"\nvmap over seeds, full model: {r['full_model_error'] or 'ran'}")
            print("vmap over seeds, model without its LSTM (an upper bound):")
        print(
            f"  {n_seeds} seeds: separate {1e3 * r['separate_s']:.0f} ms, vmap "
            f"{1e3 * r['vmap_s']:.0f} ms per step of all seeds: "
            f"{r['separate_s'] / r['vmap_s']:.2f}x the seed-steps per second"
        )


if __name__ == "__main__":
    main()
