"""Input normalisation of MFCCs: none, per corpus, or per speaker (docs/design.md, decision 7).

Cross-corpus emotion models fail first on the offset between corpora: microphones, rooms,
languages and speakers shift every MFCC coefficient. Normalising each coefficient by the
statistics of a group of clips removes that shift:

* ``none``: the raw MFCCs (the paper's input).
* ``corpus``: each corpus by its own per-coefficient mean and std over all its clips and
  frames. The target's statistics come from its unlabelled audio, which UDA allows.
* ``speaker``: each speaker by their own statistics (speakers as the corpus readers parse
  them); removes speaker offsets as well as the corpus's.

For a coefficient ``k`` and a group ``G`` of clips (x of shape [N, F, T])::

    x'[n, k, t] = (x[n, k, t] - mean_G[k]) / (std_G[k] + EPS),   n in G

with mean and std over all clips of ``G`` and all their frames. The one place this is
computed; ``emodna.train.fit`` applies it and saves the target corpus's statistics in the
checkpoint, and ``emodna.predict`` applies the same to new audio.
"""

from __future__ import annotations

import numpy as np

MODES = ("none", "corpus", "speaker")
EPS = 1e-8


def stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-coefficient mean and std ``[F]`` over clips and frames of ``x`` [N, F, T]."""
    x64 = np.asarray(x, dtype=np.float64)
    return x64.mean(axis=(0, 2)), x64.std(axis=(0, 2))


def apply(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``(x - mean) / (std + EPS)`` per coefficient, float32, a new array."""
    mean = np.asarray(mean, dtype=np.float32)[None, :, None]
    std = np.asarray(std, dtype=np.float32)[None, :, None]
    return ((x - mean) / (std + EPS)).astype(np.float32)


def normalize(x: np.ndarray, mode: str, speakers=None) -> np.ndarray:
    """``x`` [N, F, T] normalised per ``mode``; returns ``x`` itself for ``none``.

    For ``speaker``, ``speakers`` holds one id per clip; clips with an unknown speaker (None
    or "") form one group of their own, so without any speaker ids (``speakers=None``) the
    whole corpus is one group, i.e. ``corpus`` normalisation.
    """
    if mode == "none":
        return x
    if mode == "corpus":
        return apply(x, *stats(x))
    if mode == "speaker":
        if speakers is None:
            speakers = [None] * len(x)
        groups = np.asarray([str(s) if s not in (None, "") else "" for s in speakers])
        if len(groups) != len(x):
            raise ValueError(f"{len(groups)} speaker ids for {len(x)} clips")
        out = np.empty(x.shape, dtype=np.float32)
        for g in np.unique(groups):
            rows = np.flatnonzero(groups == g)
            out[rows] = apply(x[rows], *stats(x[rows]))
        return out
    raise ValueError(f"unknown normalisation {mode!r}; use one of {', '.join(MODES)}")
