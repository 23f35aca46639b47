"""Sweep efficiency, memory per extra trial, and trial start overhead, on the real corpora.

    python bench/sweep_efficiency.py [--corpora-dir ../shared/corpora] [--cache DIR] [--epochs 6] [--budget 3]

Every measurement runs the product as a user does: ``python sweep/run.py ... --address local
--num-cpus N`` in a subprocess with its own embedded Ray (in its own process session, so it
can be measured and taken down as one), on the scenarios EMODB->CASIA and CASIA->EMODB
(arousal, one seed).

(a) Sweep efficiency = summed in-trial training time (the ``epoch_seconds`` of every epoch
    of every trial: training steps plus the per-epoch evaluation) / (wall time of
    ``Tuner.fit`` x CPUs). Trials of about a minute (``--epochs``), ``--budget`` configs
    x 2 scenarios. Target >= 0.85.
(b) Memory: proportional set size (PSS, /proc/PID/smaps_rollup) of the trial worker processes
    with 1 trial training, then with 2 concurrent trials (two short sweeps with
    ``--max-concurrent 1`` and ``2``), against the bytes of the features a trial reads.
    The workers' mapping of Ray's object store (/dev/shm/plasma*) is reported on its own:
    it holds the features, shared between the trials. Target: the extra trial's feature
    memory < 25% of the feature bytes.
(c) Trial start overhead: from the moment a trial's slot is free (the previous trial's last
    epoch ended) or the sweep started, to the trial's first epoch beginning; and the part
    of it spent inside the trainable before its first epoch (Tune's time_this_iter_s of
    the first result minus that epoch's epoch_seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers import kill_session, session_pids  # noqa: E402  (one sweep = one process session)

SMOKE = ROOT / "search_spaces" / "smoke.yaml"  # two scenarios, one seed, tau_p and lr
CORPORA = ("EMODB", "CASIA")
MIB = 2**20


# ----------------------------------------------------------------------------- processes


def rollup(pid: int) -> dict[str, int]:
    """/proc/PID/smaps_rollup in bytes (Rss, Pss, Pss_Anon, Pss_Shmem, Private_*, ...)."""
    out = dict.fromkeys(
        ("Rss", "Pss", "Pss_Anon", "Pss_Shmem", "Private_Clean", "Private_Dirty"), 0
    )
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, value, *_ = line.split()
        out[key.rstrip(":")] = int(value) * 1024
    out["USS"] = out.get("Private_Clean", 0) + out.get("Private_Dirty", 0)
    return out


def object_store_mapping(pid: int) -> dict[str, int]:
    """Rss / Pss / private bytes of the process's mappings of Ray's object store."""
    total = {"Rss": 0, "Pss": 0, "Private": 0}
    current = False
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        fields = line.split()
        if fields and re.match(r"^[0-9a-f]+-[0-9a-f]+$", fields[0]):
            current = len(fields) > 5 and "plasma" in fields[5]
        elif current and fields[0] in ("Rss:", "Pss:", "Private_Clean:", "Private_Dirty:"):
            key = "Private" if fields[0].startswith("Private") else fields[0][:-1]
            total[key] += int(fields[1]) * 1024
    return total


# ----------------------------------------------------------------------------- sweeps


def start_sweep(args, out: Path, epochs: int, budget: int, *extra) -> subprocess.Popen:
    cmd = [
        sys.executable,
        str(ROOT / "sweep" / "run.py"),
        "--corpora-dir",
        str(args.corpora_dir),
        "--space",
        str(SMOKE),
        "--epochs",
        str(epochs),
        "--budget",
        str(budget),
        "--out",
        str(out),
        "--no-prune",
        "--address",
        "local",
        "--num-cpus",
        str(args.cpus),
        *map(str, extra),
    ]
    if args.cache:
        cmd += ["--cache", str(args.cache)]
    log = open(out.with_suffix(".log"), "wb")
    return subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "RAY_USAGE_STATS_ENABLED": "0"},
    )


def results(path: Path) -> list[dict]:
    try:
        return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]
    except (OSError, json.JSONDecodeError):
        return []


def epoch_walltimes(trial_dir: Path) -> list[float]:
    """Wall-clock time at which each epoch's metrics were logged (TensorBoard, per epoch)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(trial_dir / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    return [e.wall_time for e in acc.Scalars("target/uar")]


def efficiency(args, work: Path) -> dict:
    out = work / "efficiency"
    t0 = time.time()
    proc = start_sweep(args, out, args.epochs, args.budget)
    cpu: dict[int, float] = {}  # pid -> CPU seconds used (last seen)
    kind: dict[int, str] = {}
    try:
        while proc.poll() is None:
            for pid in session_pids(proc.pid):
                try:
                    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                    title = Path(f"/proc/{pid}/cmdline").read_text()
                except OSError:
                    continue
                cpu[pid] = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
                if pid == proc.pid:
                    kind[pid] = "driver"
                elif "ImplicitFunc" in title or "train_scenario" in title:
                    kind[pid] = "trial workers"
                else:
                    kind.setdefault(pid, "Ray's own processes")
            time.sleep(1)
        rc = proc.wait()
    finally:
        kill_session(proc.pid)
    wall_process = time.time() - t0
    log = out.with_suffix(".log").read_text(errors="replace")
    if rc != 0:
        sys.exit(f"the sweep failed (exit {rc}); its log: {out.with_suffix('.log')}\n{log[-3000:]}")
    fit_wall = float(re.search(r"sweep done in (\d+) s", log).group(1))
    table = pd.read_parquet(out / "trials.parquet")

    trials = []
    for d in sorted(p for p in out.iterdir() if (p / "result.json").exists()):
        lines = results(d / "result.json")
        walls = epoch_walltimes(d)
        first = lines[0]
        trials.append(
            {
                "trial": d.name,
                "epochs": len(lines),
                "train_s": sum(r["epoch_seconds"] for r in lines),
                "total_s": lines[-1]["time_total_s"],
                "first_epoch_start": walls[0] - first["epoch_seconds"],
                "last_epoch_end": walls[-1],
                "setup_in_trainable_s": first["time_this_iter_s"] - first["epoch_seconds"],
                "pid": first["pid"],
            }
        )
    trials = pd.DataFrame(trials)
    train = trials["train_s"].sum()
    sweep_start = fit_start(log, out)

    # start overhead: slot freed (previous trial's last epoch, or the sweep's start) -> first epoch
    starts = trials.sort_values("first_epoch_start")["first_epoch_start"].tolist()
    ends = sorted(trials["last_epoch_end"])
    freed = [sweep_start] * args.cpus + ends
    overhead = [s - f for s, f in zip(starts, freed, strict=False)]
    return {
        "rows": len(table),
        "trials": trials,
        "train_s": train,
        "fit_wall_s": fit_wall,
        "process_wall_s": wall_process,
        "efficiency": train / (fit_wall * args.cpus),
        "efficiency_process": train / (wall_process * args.cpus),
        "first_wave_overhead": overhead[: args.cpus],
        "turnaround": overhead[args.cpus :],
        "setup_in_trainable": trials["setup_in_trainable_s"].tolist(),
        "pids": trials["pid"].nunique(),
        "cpu": {
            k: sum(c for pid, c in cpu.items() if kind.get(pid) == k)
            for k in ("trial workers", "driver", "Ray's own processes")
        },
    }


def fit_start(log: str, out: Path) -> float:
    """When Tuner.fit began: the experiment-state file's timestamp in its name."""
    name = next(out.glob("experiment_state-*.json")).name
    stamp = re.search(r"(\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d)", name).group(1)
    return time.mktime(time.strptime(stamp, "%Y-%m-%d_%H-%M-%S"))


def memory(args, work: Path, concurrent: int) -> dict:
    """Sample the trial workers' memory while ``concurrent`` trials are training."""
    out = work / f"memory-{concurrent}"
    proc = start_sweep(args, out, args.memory_epochs, 1, "--max-concurrent", concurrent)
    samples = []
    try:
        deadline = time.monotonic() + 600
        while len(samples) < args.samples and time.monotonic() < deadline:
            time.sleep(0.5)
            if proc.poll() is not None:
                break
            running = []
            for path in out.glob("*/result.json") if out.is_dir() else []:
                lines = results(path)
                if lines and lines[-1]["epoch"] < args.memory_epochs:
                    running.append(lines[-1]["pid"])
            if len(running) != concurrent:
                continue
            try:
                everyone = {
                    pid: (rollup(pid), object_store_mapping(pid))
                    for pid in session_pids(proc.pid)
                    if Path(f"/proc/{pid}/smaps_rollup").exists()
                }
            except (OSError, ValueError):
                continue
            if not all(pid in everyone for pid in running):
                continue
            workers = [everyone[pid] for pid in running]
            samples.append(
                {
                    "workers_pss": sum(r["Pss"] for r, _ in workers),
                    "workers_uss": sum(r["USS"] for r, _ in workers),
                    "workers_anon": sum(r["Pss_Anon"] for r, _ in workers),
                    "workers_store_rss": sum(m["Rss"] for _, m in workers),
                    "workers_store_private": sum(m["Private"] for _, m in workers),
                    "session_pss": sum(r["Pss"] for r, _ in everyone.values()),
                    "session_store_pss": sum(m["Pss"] for _, m in everyone.values()),
                    "processes": len(everyone),
                }
            )
    finally:
        kill_session(proc.pid)
    if len(samples) < 3:
        sys.exit(
            f"memory: could not sample {concurrent} training trials; see {out.with_suffix('.log')}"
        )
    return {k: statistics.median(s[k] for s in samples) for k in samples[0]} | {"n": len(samples)}


def feature_bytes(args) -> int:
    from emodna.corpora import load_corpora
    from emodna.features import FeatureSettings, corpus_features

    corpora = load_corpora(args.corpora_dir)
    feats = corpus_features(
        {n: corpora[n] for n in CORPORA},
        FeatureSettings(),
        args.cache,
        workers=args.cpus,
        progress=False,
    )
    return sum(f.x.nbytes for f in feats.values())


# ----------------------------------------------------------------------------- report


def fmt_s(values) -> str:
    if not values:
        return "n/a"
    return (
        f"median {statistics.median(values):.1f} s, min {min(values):.1f}, max {max(values):.1f}"
        f" (n={len(values)})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--corpora-dir", type=Path, default=ROOT.parent / "shared" / "corpora")
    ap.add_argument(
        "--cache", type=Path, default=None, help="feature cache (default: EMODNA_CACHE or ~/.cache)"
    )
    ap.add_argument("--cpus", type=int, default=2, help="CPUs of the embedded Ray (default 2)")
    ap.add_argument("--epochs", type=int, default=6, help="epochs per trial in (a), ~1 min trials")
    ap.add_argument("--budget", type=int, default=3, help="configs in (a); x 2 scenarios = trials")
    ap.add_argument("--memory-epochs", type=int, default=4, help="epochs per trial in (b)")
    ap.add_argument("--samples", type=int, default=8, help="memory samples per state in (b)")
    ap.add_argument("--skip", nargs="*", default=[], choices=["efficiency", "memory"])
    ap.add_argument(
        "--keep", type=Path, default=None, help="keep the sweeps here (default: a temp folder)"
    )
    args = ap.parse_args()
    if not args.corpora_dir.is_dir():
        sys.exit(f"{args.corpora_dir}: no corpora folder; pass --corpora-dir")

    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        nbytes = feature_bytes(args)  # also warms the cache, so no sweep below extracts MFCCs
        print(
            f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
            f"Ray: {args.cpus} CPUs, 1 CPU per trial"
        )
        print(f"features a trial reads ({' + '.join(CORPORA)}): {nbytes / MIB:.1f} MiB")

        if "efficiency" not in args.skip:
            e = efficiency(args, work)
            print(
                f"\n(a) sweep efficiency: {args.budget} configs x 2 scenarios = {e['rows']} trials "
                f"of {args.epochs} epochs"
            )
            print(f"    trial length: {fmt_s(e['trials']['total_s'].tolist())}")
            print(
                f"    summed in-trial training time {e['train_s']:.0f} s / "
                f"(Tuner.fit wall {e['fit_wall_s']:.0f} s x {args.cpus} CPUs) = {e['efficiency']:.3f}"
                f"   [target >= 0.85: {'met' if e['efficiency'] >= 0.85 else 'MISSED'}]"
            )
            print(
                f"    over the whole command (Ray start, features, fit): {e['process_wall_s']:.0f} s "
                f"-> {e['efficiency_process']:.3f}"
            )
            print(f"    trial worker processes: {e['pids']} for {e['rows']} trials")
            print(
                "    CPU time of the sweep's processes: "
                + ", ".join(f"{k} {v:.0f} s" for k, v in e["cpu"].items())
                + f" (of {e['process_wall_s'] * args.cpus:.0f} CPU-s available)"
            )
            print("\n(c) trial start overhead (slot free -> first epoch begins)")
            print(
                f"    first wave (from Tuner.fit start, 1 s resolution): {fmt_s(e['first_wave_overhead'])}"
            )
            print(
                f"    later trials (from the previous trial's last epoch): {fmt_s(e['turnaround'])}"
            )
            print(
                f"    of which inside the trainable before epoch 1 (Tune time_this_iter_s - "
                f"epoch_seconds): {fmt_s(e['setup_in_trainable'])}"
            )

        if "memory" not in args.skip:
            one, two = memory(args, work, 1), memory(args, work, 2)
            print(
                "\n(b) memory while training (PSS from /proc/PID/smaps_rollup, median of samples)"
            )
            print(f"    {'':34s} {'1 trial':>9s} {'2 trials':>9s} {'extra':>9s}")
            for key, label in (
                ("workers_pss", "trial workers: PSS"),
                ("workers_uss", "trial workers: private (USS)"),
                ("workers_store_rss", "trial workers: object store RSS"),
                ("workers_store_private", "trial workers: object store private"),
                ("session_store_pss", "whole sweep: object store PSS"),
                ("session_pss", "whole sweep: PSS"),
            ):
                print(
                    f"    {label:34s} {one[key] / MIB:7.1f} M {two[key] / MIB:7.1f} M "
                    f"{(two[key] - one[key]) / MIB:7.1f} M"
                )
            extra = two["workers_pss"] - one["workers_pss"]
            store_extra = two["session_store_pss"] - one["session_store_pss"]
            print(
                f"    the extra trial: {extra / MIB:.1f} MiB PSS in its worker; object-store memory "
                f"it adds: {store_extra / MIB:.1f} MiB = {store_extra / nbytes:.1%} of the "
                f"{nbytes / MIB:.1f} MiB of features   "
                f"[target < 25%: {'met' if store_extra < 0.25 * nbytes else 'MISSED'}]"
            )
            print(
                f"    each trial worker maps {two['workers_store_rss'] / 2 / MIB:.1f} MiB of the object "
                f"store, {two['workers_store_private'] / 2 / MIB:.1f} MiB of it private"
            )
            print(f"    samples: {one['n']} with 1 trial, {two['n']} with 2 trials")


if __name__ == "__main__":
    main()
