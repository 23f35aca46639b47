"""The few helpers every Markdown table of the summary is written with."""

from __future__ import annotations

import math


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
