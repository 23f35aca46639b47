"""A git revision's tree on disk, for the benches that run an old revision beside this checkout
(``equivalence.py``, ``main_job.py``, ``step_baseline.py``): run it with that folder first on
``PYTHONPATH`` and its own ``emodna`` is the one imported."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def export(rev: str, dest: Path) -> str:
    """``git archive`` of ``rev`` into ``dest``; the full commit id. A ``dest`` already holding
    that commit (its ``.commit`` stamp) is kept, for a resume; one holding another is emptied
    first, so no file of the other revision stays."""
    sha = subprocess.run(
        ["git", "-C", ROOT, "rev-parse", "--verify", f"{rev}^{{commit}}"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    stamp = dest / ".commit"
    if stamp.exists() and stamp.read_text() == sha:
        return sha
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", ROOT, "archive", sha], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", dest], input=archive.stdout, check=True)
    stamp.write_text(sha)
    return sha
