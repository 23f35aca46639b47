"""``emodna summarize``: the sweep's command in the ``emodna`` command line.

``emodna`` does not import ``sweep``: it finds this command through the ``emodna.commands``
entry-point group (``pyproject.toml``), each entry a callable that adds its sub-parser to
``emodna``'s and sets ``func``. This module imports nothing heavy, so ``emodna --help`` and
``emodna train`` stay as quick as before; the summary's code loads when the command runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "rank a sweep's configs across scenarios, export the best, write summary.md"
EXAMPLES = (
    "examples:\n  emodna summarize runs/emodna\n"
    "  emodna summarize runs/emodna --metric target_f1_macro --top 5"
)


def cmd_summarize(args) -> int:
    from sweep.summarize import print_summary, summarize  # reads files only; no Ray

    result = summarize(
        args.sweep,
        args.metric,
        args.mode,
        top=args.top,
        export=not args.no_export,
        plots=not args.no_plots,
    )
    print_summary(result)
    return 0


def add_summarize(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """The ``emodna.commands`` entry point: ``summarize``'s sub-parser on ``sub``."""
    p = sub.add_parser(
        "summarize",
        help=HELP,
        description=HELP,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(func=cmd_summarize)
    p.add_argument("sweep", type=Path, help="sweep folder, e.g. runs/emodna (holds trials.parquet)")
    p.add_argument("--metric", help="metric to rank by (default: the space's, e.g. target_uar)")
    p.add_argument("--mode", choices=["max", "min"], help="max or min (default: the space's)")
    p.add_argument(
        "--top", type=int, default=3, help="top configs in the paper-style tables (default 3)"
    )
    p.add_argument(
        "--no-export", action="store_true", help="do not write best/*.yaml and checkpoints"
    )
    p.add_argument("--no-plots", action="store_true", help="do not draw the PNG plots")
    return p
