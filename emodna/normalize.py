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

with mean and std over all clips of ``G`` and their *real* frames: a clip shorter than its
corpus's fixed length is centred in zero padding (``emodna.frontends.fix_length``), and the
frames of that silence are left out of the statistics (``frames``: each clip's range of real
frames, ``[start, stop)``, stored in the feature cache by ``emodna.frontends.real_frames``).
Otherwise a corpus of short clips would get its mean pulled toward silence and its std
inflated by the silence/speech contrast, and the more so the longer its fixed length. The
padding frames themselves are set to 0 after normalisation (the normalised mean): the same
clip then reaches the model as the same real frames in zeros, whatever its fixed length.
The one place this is computed; ``emodna.train.fit`` applies it and saves the target
corpus's statistics in the checkpoint, and ``emodna.predict`` applies the same to new audio.
"""

from __future__ import annotations

import numpy as np

MODES = ("none", "corpus", "speaker")
EPS = 1e-8


def real(x: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """The real frames of every clip of ``x`` [N, F, T] side by side, [F, sum of lengths];
    ``frames`` [N, 2] holds each clip's ``[start, stop)``."""
    frames = np.asarray(frames)
    if frames.shape != (len(x), 2):
        raise ValueError(f"frames of shape {frames.shape} for {len(x)} clips; want [N, 2]")
    return np.concatenate([clip[:, a:b] for clip, (a, b) in zip(x, frames, strict=True)], axis=1)


def stats(x: np.ndarray, frames: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-coefficient mean and std ``[F]`` over the clips of ``x`` [N, F, T] and their real
    frames (``frames`` [N, 2], see :func:`real`; None: every frame is real)."""
    if frames is None:
        x64 = np.asarray(x, dtype=np.float64)
        return x64.mean(axis=(0, 2)), x64.std(axis=(0, 2))
    x64 = real(x, frames).astype(np.float64)
    return x64.mean(axis=1), x64.std(axis=1)


def apply(x: np.ndarray, mean: np.ndarray, std: np.ndarray, frames=None) -> np.ndarray:
    """``(x - mean) / (std + EPS)`` per coefficient, float32, a new array; with ``frames``
    [N, 2], each clip's padding frames (outside its ``[start, stop)``) are set to 0, the
    normalised mean: padding carries no information, and the mean is what says so."""
    mean = np.asarray(mean, dtype=np.float32)[None, :, None]
    std = np.asarray(std, dtype=np.float32)[None, :, None]
    out = ((x - mean) / (std + EPS)).astype(np.float32)
    if frames is not None:
        t = np.arange(x.shape[2])
        frames = np.asarray(frames)
        padding = (t < frames[:, :1]) | (t >= frames[:, 1:2])  # [N, T]
        out[np.broadcast_to(padding[:, None, :], out.shape)] = 0.0
    return out


def speaker_groups(x: np.ndarray, speakers=None, frames=None):
    """Per speaker group of ``x`` [N, F, T]: (rows, their frames or None, mean, std), the
    statistics over the group's real frames. ``speakers`` holds one id per clip; clips with an
    unknown speaker (None or "") form one group of their own, so without any speaker ids
    (``speakers=None``) the whole corpus is one group."""
    if speakers is None:
        speakers = [None] * len(x)
    groups = np.asarray([str(s) if s not in (None, "") else "" for s in speakers])
    if len(groups) != len(x):
        raise ValueError(f"{len(groups)} speaker ids for {len(x)} clips")
    frames = None if frames is None else np.asarray(frames)
    for g in np.unique(groups):
        rows = np.flatnonzero(groups == g)
        rows_frames = None if frames is None else frames[rows]
        yield (rows, rows_frames, *stats(x[rows], rows_frames))


def normalize(x: np.ndarray, mode: str, speakers=None, frames=None) -> np.ndarray:
    """``x`` [N, F, T] normalised per ``mode``, by statistics over each clip's real frames
    (``frames`` [N, 2], see :func:`real`); returns ``x`` itself for ``none``.

    For ``speaker``, each group of :func:`speaker_groups` by its own statistics, so without
    any speaker ids (``speakers=None``) it is ``corpus`` normalisation.
    """
    if mode == "none":
        return x
    if mode == "corpus":
        return apply(x, *stats(x, frames), frames)
    if mode == "speaker":
        out = np.empty(x.shape, dtype=np.float32)
        for rows, rows_frames, mean, std in speaker_groups(x, speakers, frames):
            out[rows] = apply(x[rows], mean, std, rows_frames)
        return out
    raise ValueError(f"unknown normalisation {mode!r}; use one of {', '.join(MODES)}")
