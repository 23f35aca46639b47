"""Does a refactor change results? The smoke sweep at two git revisions, its artefacts compared.

    python bench/same_results.py BEFORE [AFTER] [--budget 2] [--epochs 2]
        [--corpora-dir ../shared/corpora]

Each revision is exported with ``git archive`` into a temp folder and runs
``python sweep/run.py --space search_spaces/smoke.yaml`` and ``emodna summarize`` there (its
own code first on PYTHONPATH, its own feature cache, an embedded Ray of 2 CPUs, sampler seed
0). Then
``ranking.parquet``, ``best/*.yaml`` and ``summary.md`` of the two are compared: the columns,
keys and lines only one side has are listed apart from the values that differ, so fields a
change added on purpose do not hide a changed number. Exit 0 when no shared value differs.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
# lines of summary.md that name the run's folder or its time, not a result
VOLATILE = re.compile(r"runs?/|/tmp/|\d{4}-\d\d-\d\d[ T_]\d\d|wall|seconds|\bs\)|elapsed")


def smoke_sweep(rev: str, work: Path, args) -> Path:
    code = work / rev.replace("/", "_")
    code.mkdir()
    archive = subprocess.run(["git", "-C", ROOT, "archive", rev], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", code], input=archive.stdout, check=True)
    out = code / "out"
    command = [
        *(sys.executable, "sweep/run.py", "--corpora-dir", str(args.corpora_dir)),
        *("--space", "search_spaces/smoke.yaml", "--budget", str(args.budget)),
        *("--epochs", str(args.epochs), "--out", str(out), "--cache", str(code / "cache")),
        *("--address", "local", "--num-cpus", "2", "--seed", "0"),
    ]
    env = {**os.environ, "PYTHONPATH": str(code), "RAY_USAGE_STATS_ENABLED": "0"}
    print(f"{rev}: {' '.join(command[1:])}", flush=True)
    subprocess.run(command, cwd=code, env=env, check=True, stdout=subprocess.DEVNULL)
    # older revisions summarize only on request: each writes its artefacts with its own code
    summarize = [sys.executable, "-m", "emodna.cli", "summarize", str(out)]
    subprocess.run(summarize, cwd=code, env=env, check=True, stdout=subprocess.DEVNULL)
    return out


def compare_tables(a: pd.DataFrame, b: pd.DataFrame) -> list[str]:
    lines = [f"ranking.parquet: column only {side}: {c}" for side, c in _only(a.columns, b.columns)]
    shared = [c for c in a.columns if c in b.columns]
    if len(a) != len(b):
        return [*lines, f"ranking.parquet: {len(a)} rows before, {len(b)} after"]
    for c in shared:
        x, y = a[c].reset_index(drop=True), b[c].reset_index(drop=True)
        same = (x == y) | (x.isna() & y.isna())
        if not same.all():
            lines.append(f"ranking.parquet: {c} differs: {list(x[~same])} -> {list(y[~same])}")
    return lines


def compare_best(a: Path, b: Path) -> list[str]:
    lines = []
    names_a, names_b = (
        sorted(p.name for p in a.glob("*.yaml")),
        sorted(p.name for p in b.glob("*.yaml")),
    )
    lines += [f"best/: file only {side}: {n}" for side, n in _only(names_a, names_b)]
    for name in set(names_a) & set(names_b):
        x, y = (yaml.safe_load((d / name).read_text()) for d in (a, b))
        x.pop("origin", None), y.pop("origin", None)  # where the sweep ran
        lines += [f"best/{name}: key only {side}: {k}" for side, k in _only(x, y)]
        lines += [f"best/{name}: {k}: {x[k]!r} -> {y[k]!r}" for k in x if k in y and x[k] != y[k]]
    return lines


def compare_summary(a: Path, b: Path) -> list[str]:
    x, y = ([ln for ln in p.read_text().splitlines() if not VOLATILE.search(ln)] for p in (a, b))
    diff = difflib.unified_diff(x, y, "before/summary.md", "after/summary.md", lineterm="", n=0)
    return [f"summary.md: {ln}" for ln in diff if ln[:1] in "+-" and ln[:3] not in ("+++", "---")]


def _only(a, b) -> list[tuple[str, str]]:
    return [("before", k) for k in a if k not in b] + [("after", k) for k in b if k not in a]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before")
    parser.add_argument("after", nargs="?", default="HEAD")
    parser.add_argument("--corpora-dir", type=Path, default=ROOT.parent / "shared" / "corpora")
    parser.add_argument("--budget", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args(argv)
    args.corpora_dir = args.corpora_dir.resolve()

    with tempfile.TemporaryDirectory() as tmp:
        before, after = (smoke_sweep(rev, Path(tmp), args) for rev in (args.before, args.after))
        ranking = compare_tables(*(pd.read_parquet(d / "ranking.parquet") for d in (before, after)))
        best = compare_best(before / "best", after / "best")
        summary = compare_summary(before / "summary.md", after / "summary.md")
        compared = (
            f"{pd.read_parquet(after / 'ranking.parquet').size} ranking values, "
            f"{len(list((after / 'best').glob('*.yaml')))} best/ files, "
            f"{len((after / 'summary.md').read_text().splitlines())} summary.md lines"
        )
    added = [ln for ln in ranking + best if " only " in ln]
    changed = [ln for ln in ranking + best if " only " not in ln]
    print(
        f"\n{args.before} -> {args.after}, smoke sweep of {args.budget} configs, {args.epochs} epochs"
    )
    print(f"compared (after): {compared}")
    print(f"columns, keys or files on one side only ({len(added)}):", *added, sep="\n  ")
    print(f"shared values that differ ({len(changed)}):", *changed, sep="\n  ")
    print(f"summary.md lines that differ ({len(summary)}):", *summary, sep="\n  ")
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
