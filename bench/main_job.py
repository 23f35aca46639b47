"""The README main job's wall time at two revisions, side by side on this machine (issue 23).

    python bench/main_job.py [BEFORE] [--after HEAD] [--out runs/main-job] [--corpora-dir DIR]
        [--sides before after]

BEFORE defaults to b1ce44c, the code when issue 23 was filed. Each side is its revision
exported with ``git archive`` into ``OUT/code/<side>`` and runs the README's main command,

    python sweep/run.py --corpora-dir ../shared/corpora --space search_spaces/transfer.yaml \\
        --budget 8 --no-prune --out OUT/<side>/runs

with that code first on ``PYTHONPATH`` (Ray's workers inherit it) and an empty feature cache
of its own (``EMODNA_CACHE=OUT/<side>/cache``), so each side pays what a fresh machine pays:
feature extraction, Ray's start, the plan, the trials. Then ``emodna summarize`` of the
side's code writes its ``summary.md``. One side runs at a time (on 2 cores, two at once would
time each other). Each side's wall times are one line of ``OUT/sides.jsonl``; a side already
there is skipped, so a second call runs only what is missing. The last line prints both and
after / before.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from revision import export

ROOT = Path(__file__).resolve().parents[1]
MAIN_JOB = [  # README.md, "Two commands": the main job, with --out set per side
    *("sweep/run.py", "--corpora-dir", str(ROOT.parent / "shared" / "corpora")),
    *("--space", "search_spaces/transfer.yaml", "--budget", "8", "--no-prune"),
]


def run_side(label: str, rev: str, out: Path, corpora_dir: Path) -> dict:
    """The main job and its summary with ``rev``'s code, timed; the side's record."""
    code, side = out / "code" / label, out / label
    sha = export(rev, code)
    shutil.rmtree(side, ignore_errors=True)
    side.mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": str(code), "EMODNA_CACHE": str(side / "cache")}
    job = [sys.executable, *MAIN_JOB, "--out", str(side / "runs")]
    job[job.index("--corpora-dir") + 1] = str(corpora_dir.resolve())
    print(f"[{label}] {sha[:10]}: {' '.join(job[1:])}", flush=True)
    t0 = time.perf_counter()
    with (side / "job.log").open("w") as log:
        subprocess.run(job, cwd=code, env=env, stdout=log, stderr=subprocess.STDOUT, check=True)
    job_s = time.perf_counter() - t0
    summarize = [shutil.which("emodna") or "emodna", "summarize", str(side / "runs")]  # the side's
    t1 = time.perf_counter()
    with (side / "summarize.log").open("w") as log:
        subprocess.run(summarize, cwd=code, env=env, stdout=log, stderr=subprocess.STDOUT)
    record = {
        "side": label,
        "rev": sha,
        "job_s": round(job_s, 1),
        "summarize_s": round(time.perf_counter() - t1, 1),
        "at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    print(
        f"[{label}] main job {job_s / 60:.1f} min, summarize {record['summarize_s']} s", flush=True
    )
    return record


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("before", nargs="?", default="b1ce44c")
    p.add_argument("--after", default="HEAD")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "main-job")
    p.add_argument("--corpora-dir", type=Path, default=ROOT.parent / "shared" / "corpora")
    p.add_argument("--sides", nargs="+", default=["before", "after"], choices=["before", "after"])
    args = p.parse_args(argv)
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    ledger = args.out / "sides.jsonl"
    done = {}
    if ledger.exists():
        done = {r["side"]: r for r in map(json.loads, ledger.read_text().splitlines())}
    for label in args.sides:
        if label in done:
            print(f"[{label}] done before: {done[label]['job_s'] / 60:.1f} min")
            continue
        rev = args.before if label == "before" else args.after
        done[label] = run_side(label, rev, args.out, args.corpora_dir)
        with ledger.open("a") as f:
            f.write(json.dumps(done[label]) + "\n")
    if {"before", "after"} <= done.keys():
        b, a = done["before"], done["after"]
        print(
            f"before {b['rev'][:10]} {b['job_s'] / 60:.1f} min, after {a['rev'][:10]} "
            f"{a['job_s'] / 60:.1f} min: after / before {a['job_s'] / b['job_s']:.2f} "
            f"(the main job; summarize {b['summarize_s']} s / {a['summarize_s']} s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
