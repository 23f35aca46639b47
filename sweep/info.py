"""What a sweep's summary is made of: :class:`SweepInfo` (what is known about a sweep
besides its trials table) and :class:`Summary` (what ``sweep.summarize`` computed and wrote).
Their own module, so that export and report can name them without importing summarize."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd


@dataclass
class SweepInfo:
    """What the summary knows about a sweep besides its trials table."""

    folder: Path
    metric: str = "target_uar"
    mode: str = "max"
    settings: dict = field(default_factory=dict)
    space: object | None = None
    scenarios: list[dict] | None = None  # dict(source=, target=, task=) each
    seeds: list[int] | None = None
    states: dict[int, str] = field(default_factory=dict)
    pruned_after: dict[int, int] = field(default_factory=dict)
    candidates: dict[int, str] = field(default_factory=dict)  # config id -> the space's name
    n_units: int | None = None
    budget: int | None = None
    n_configs: int | None = None
    study_note: str = ""
    partial: list[str] = field(default_factory=list)
    corpora_dir: Path | None = None
    cache: Path | None = None


@dataclass
class Summary:
    """What :func:`summarize` computed and wrote."""

    folder: Path
    metric: str
    mode: str
    ranking: pd.DataFrame
    scores: pd.DataFrame
    best: pd.DataFrame
    selection: pd.DataFrame
    selection_per_scenario: pd.DataFrame
    loto: pd.DataFrame
    friedman: dict | None
    cd: dict | None
    partial: list[str]
    exports: dict[str, Path]
    files: dict[str, Path]
    markdown: str = ""
    searched: list[str] = field(default_factory=list)  # the space's searched parameters
    # label-free selection (sweep.validate), where the trials kept their predictions:
    # dict(evidence=, scores=, choices=, validators=, rules=), else None
    validation: dict | None = None
    alpha: float = 0.05  # the significance level of the Friedman verdict and the CD
