"""Which files given to ``emodna predict`` share a speaker, as the user declares it.

A model trained with ``normalize: speaker`` saw each speaker's MFCCs normalised by that
speaker's statistics. For new audio, a prediction must be a function of the clip, the model
and a grouping the user declared (docs/design.md, decision 13), never of which other files
happen to be on the command line. So the statistics come from exactly one of:

* a declared group: ``--speaker NAME`` (every file given is that one speaker),
  ``--speaker-pattern REGEX`` (its first group, searched in each file's path as given, is the
  file's speaker) or ``--speakers FILE`` (a CSV or Parquet file with columns ``path`` and
  ``speaker``; paths relative to that file's folder, or absolute): each group is normalised
  by the statistics of its own files, so a clip's probability changes only with its group;
* nothing declared: the statistics of a typical speaker of the target corpus, stored in the
  checkpoint by training (``emodna.train.norm_state``). They keep a clip's overall level
  (c0, energy), the cue arousal rests on, which a clip's own statistics would remove;
* ``--normalize-self``: all files given as one group (the explicit opt-in of old).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from emodna.custom import read_table
from emodna.errors import ConfigError


def _by_pattern(paths: list[Path], pattern: str) -> list[str]:
    try:
        rx = re.compile(pattern)
    except re.error as exc:
        raise ConfigError(
            f"--speaker-pattern '{pattern}': not a regular expression ({exc}); write one whose "
            "first group is the speaker, e.g. '/(spk\\d+)/'"
        ) from None
    if rx.groups < 1:
        raise ConfigError(
            f"--speaker-pattern '{pattern}' has no group; put the speaker in parentheses, "
            "e.g. '/(spk\\d+)/'"
        )
    out = []
    for p in paths:
        m = rx.search(p.as_posix())
        if m is None or not m.group(1):
            raise ConfigError(
                f"{p}: --speaker-pattern '{pattern}' finds no speaker in this path; fix the "
                "pattern, or predict this file apart"
            )
        out.append(m.group(1))
    return out


def _by_table(paths: list[Path], table_path: Path) -> list[str]:
    table_path = Path(table_path).expanduser()
    try:
        table = read_table(table_path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{table_path}: cannot read the speaker table ({exc})") from None
    missing = [c for c in ("path", "speaker") if c not in table.columns]
    if missing:
        raise ConfigError(
            f"{table_path}: missing column(s) {', '.join(missing)}; a speaker table has columns "
            "path (relative to its folder, or absolute) and speaker"
        )
    base = table_path.resolve().parent
    speaker_of = {
        (base / str(r.path)).resolve(): str(r.speaker)
        for r in table.itertuples()
        if not pd.isna(r.speaker) and str(r.speaker)
    }
    out = []
    for p in paths:
        speaker = speaker_of.get(Path(p).resolve())
        if speaker is None:
            raise ConfigError(
                f"{p}: not in the speaker table {table_path} (or its speaker is empty); add a "
                "row with its path and speaker"
            )
        out.append(speaker)
    return out


def speaker_groups(
    paths, *, speaker: str | None = None, pattern: str | None = None, table=None
) -> list[str] | None:
    """The declared speaker of each file (``--speaker``, ``--speaker-pattern`` or
    ``--speakers``), or None when none is declared. ConfigError, naming the file, for a file
    the declaration does not place."""
    options = {"--speaker": speaker, "--speaker-pattern": pattern, "--speakers": table}
    given = [name for name, value in options.items() if value]
    if len(given) > 1:
        raise ConfigError(f"{' and '.join(given)}: give one way to declare speakers")
    paths = [Path(p) for p in paths]
    if speaker:
        return [str(speaker)] * len(paths)
    if pattern:
        return _by_pattern(paths, pattern)
    if table:
        return _by_table(paths, table)
    return None


def lone_speakers(groups: list[str] | None) -> list[str]:
    """Declared speakers with one file only: their own statistics remove its overall level."""
    if not groups:
        return []
    return sorted(g for g in set(groups) if groups.count(g) == 1)
