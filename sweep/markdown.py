"""The few helpers every Markdown table is written with: the summary's and the benches'."""

from __future__ import annotations

import math

import pandas as pd


def missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def pct(v, digits: int = 1) -> str:
    """A score in [0, 1] as a percentage, ``–`` for a missing one."""
    return "–" if missing(v) else f"{100 * v:.{digits}f}"


def md_table(header: list[str], rows: list[list]) -> str:
    """A pipe table: the header, its rule, one line per row."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def pm(mean, std) -> str:
    """``mean ± std`` of scores in [0, 1], as percentages: ``–`` for a missing mean, the
    mean alone for a missing std (one seed)."""
    if missing(mean):
        return "–"
    return pct(mean) if missing(std) else f"{100 * mean:.1f} ± {100 * std:.1f}"


def frame_table(df: pd.DataFrame) -> str:
    """A DataFrame as a pipe table: its index as the first column(s), empty cells for NaN
    (pandas' ``to_markdown`` needs tabulate, which is not a dependency)."""
    d = df.reset_index()
    return md_table(
        [str(c) for c in d.columns],
        [["" if pd.isna(v) else v for v in row] for row in d.itertuples(index=False)],
    )
