"""Trials per GPU-hour with 1, 2, 4 and 8 trials sharing one GPU, and the metrics against the CPU.

    python bench/gpu.py [--corpora-dir ../shared/corpora] [--cache DIR] [--epochs 10]
        [--sharing 1 2 4 8] [--amp off bf16] [--device cuda] [--out gpu.jsonl]

What a sweep with ``--gpus-per-trial 1/k`` does on one GPU: k trials, each its own process
(``emodna train``, one CPU thread each, as a Ray trial with ``--cpus-per-trial 1``), started
together on the same device. Scenario EMODB -> CASIA, arousal, Emo-DNA at its defaults, seeds
0..k-1. For each k it prints the wall time of the slowest trial and k * 3600 / wall, the trials
per GPU-hour. First it trains seed 0 on the CPU (one thread) as the reference: the seed-0
trial of every GPU run is compared with it (target UAR and the final loss; cuDNN's kernels sum
in another order, so the digits differ but not the result).

Run it on a GPU machine (a few minutes at 10 epochs); ``--device cpu --sharing 1 2`` checks
the script itself anywhere. Each finished measurement is appended to ``--out`` as it ends.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from emodna.corpora import load_corpora
from emodna.features import corpus_features

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ("EMODB", "CASIA", "arousal")


def train_command(args, seed: int, device: str, amp: str, out: Path) -> list[str]:
    source, target, task = SCENARIO
    return [
        *(sys.executable, "-m", "emodna.cli", "train"),
        *("--corpora-dir", str(args.corpora_dir), "--cache", str(args.cache)),
        *("--source", source, "--target", target, "--task", task, "--method", "emodna"),
        *("--epochs", str(args.epochs), "--seed", str(seed), "--threads", "1"),
        *("--device", device, "--amp", amp, "--out", str(out)),
    ]


def run_together(commands: list[list[str]]) -> tuple[float, list[dict]]:
    """Start every command at once; the wall time until the last ends, and each result line."""
    t0 = time.perf_counter()
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for c in commands]
    outputs = [p.communicate() for p in procs]
    wall = time.perf_counter() - t0
    results = []
    for proc, (stdout, stderr) in zip(procs, outputs, strict=True):
        if proc.returncode != 0:
            sys.exit(f"emodna train failed:\n{stderr.decode()[-2000:]}")
        results.append(json.loads(stdout.decode().strip().splitlines()[-1]))
    return wall, results


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpora-dir", type=Path, default=ROOT.parent / "shared" / "corpora")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache/emodna/features")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--sharing", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--amp", nargs="+", default=["off", "bf16"], choices=["off", "bf16"])
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu")
    parser.add_argument("--out", type=Path, default=None, help="JSON lines, one per measurement")
    args = parser.parse_args(argv)

    import torch

    if args.device != "cpu" and not torch.cuda.is_available():
        sys.exit(f"bench/gpu.py: torch {torch.__version__} sees no GPU; use --device cpu")
    gpu = torch.cuda.get_device_name() if args.device != "cpu" else "none (the CPU)"
    # extract once, here, so the trials below only read the cache (no race to write it)
    corpus_features(load_corpora(args.corpora_dir, names=SCENARIO[:2]), cache_dir=args.cache)

    def record(row: dict) -> None:
        if args.out is not None:
            with open(args.out, "a") as f:
                f.write(json.dumps({"gpu": gpu, "epochs": args.epochs, **row}) + "\n")

    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp)
        wall, (cpu,) = run_together([train_command(args, 0, "cpu", "off", runs / "cpu")])
        record({"device": "cpu", "amp": "off", "trials": 1, "wall_s": wall, **cpu})
        print(f"{args.epochs} epochs of EMODB -> CASIA arousal, Emo-DNA defaults; GPU: {gpu}")
        print(f"CPU reference (1 thread): {wall:.1f} s, target UAR {cpu['target_uar']:.4f}\n")
        print(
            f"{'amp':<5} {'trials':>6} {'wall s':>7} {'trials/GPU-h':>13} {'dUAR s0':>8} {'dloss s0':>9}"
        )
        for amp in args.amp:
            for k in args.sharing:
                commands = [
                    train_command(args, seed, args.device, amp, runs / f"{amp}-{k}-{seed}")
                    for seed in range(k)
                ]
                wall, results = run_together(commands)
                first = results[0]
                d_uar = first["target_uar"] - cpu["target_uar"]
                d_loss = first["loss"] - cpu["loss"]
                record({"device": args.device, "amp": amp, "trials": k, "wall_s": wall, **first})
                print(
                    f"{amp:<5} {k:>6} {wall:7.1f} {k * 3600 / wall:13.0f} {d_uar:+8.4f} {d_loss:+9.4f}"
                )
    print("\n(dUAR, dloss: seed 0 on the device minus seed 0 on the CPU)")


if __name__ == "__main__":
    main()
