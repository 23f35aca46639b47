"""New audio as a model's input, made as training made it: a :class:`FeatureSpec` (front-end,
fixed length, normalisation and the stored statistics, read from an export), each file's
raw features with the range of its real frames (:func:`features`), and the normalisation
training used (:func:`normalise`), whose statistics cover real frames only, never the zero
padding of a short clip (``emodna.normalize``). ``emodna.predict`` loads models and runs
them on these.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from emodna.errors import ConfigError, FeatureError
from emodna.features import FeatureSettings


@dataclass(frozen=True)
class FeatureSpec:
    """How to turn one audio file into the model's input."""

    settings: FeatureSettings  # the export's front-end and its parameters
    length: int  # samples, the target corpus's fixed length
    normalize: str = "none"  # emodna.normalize.MODES
    mean: tuple[float, ...] | None = None  # per coefficient: the target corpus's (corpus) or
    # a typical target speaker's (speaker; checkpoints from before they were stored lack them)
    std: tuple[float, ...] | None = None
    corpus: str = ""

    def key(self) -> tuple:
        """Models with the same key read the same raw features (computed once per file)."""
        return (json.dumps(self.settings.key(), sort_keys=True), self.length)


@dataclass
class Clip:
    """One file's raw features [channels, frames] and its real frames ``(start, stop)``: those
    of its audio, not of the zero padding (the normalisation statistics use those alone)."""

    x: np.ndarray
    frames: tuple[int, int]


def features(paths, spec: FeatureSpec) -> list[Clip | FeatureError]:
    """Raw features per file (or the FeatureError of a file that cannot be decoded, that the
    front-end fails on, or whose features are not finite)."""
    from emodna.frontends import clip_features

    out: list = []
    for path in paths:
        try:
            x, _, frames = clip_features(path, spec.settings, spec.length)
            out.append(Clip(x, frames))
        except FeatureError as exc:
            out.append(exc)
    return out


def _stats(clips: list) -> tuple[np.ndarray, np.ndarray] | None:
    """Mean and std over the real frames of the clips that have features (None: none has)."""
    from emodna.normalize import stats

    good = [c for c in clips if isinstance(c, Clip)]
    if not good:
        return None
    return stats(np.stack([c.x for c in good]), np.array([c.frames for c in good]))


def normalise(
    clips: list, spec: FeatureSpec, where: str, self_stats: bool, groups: list[str] | None = None
) -> list:
    """Training's input normalisation applied to each file's :class:`Clip` (or its error);
    returns the normalised features [channels, frames] (or the error) per file.

    ``corpus``: the target corpus's stored statistics (the files' own with ``self_stats``
    when the checkpoint lacks them). ``speaker``: each declared group's own statistics
    (``groups``: one speaker per file), else the files' own taken as one group with
    ``self_stats``, else a typical target speaker's stored statistics. A group's own
    statistics are over its files' real frames, as in training."""
    from emodna.normalize import apply

    xs = [c.x if isinstance(c, Clip) else c for c in clips]
    if spec.normalize == "none":
        return xs
    stored = (np.asarray(spec.mean), np.asarray(spec.std)) if spec.mean is not None else None
    if spec.normalize == "speaker" and groups is not None:
        by_group = {  # each group's statistics once, however many files it holds
            g: _stats([c for c, h in zip(clips, groups, strict=True) if h == g])
            for g in dict.fromkeys(groups)
        }
        return [
            apply(c.x[None], *by_group[g], [c.frames])[0] if isinstance(c, Clip) else c
            for c, g in zip(clips, groups, strict=True)
        ]
    if self_stats and (spec.normalize == "speaker" or stored is None):
        own = _stats(clips)
        if own is None:
            return xs
        mean, std = own
    elif stored is not None:
        mean, std = stored
    elif spec.normalize == "corpus":
        raise ConfigError(
            f"{where}: the model was trained on MFCCs normalised per corpus (normalize: corpus), "
            f"but its checkpoint records no statistics of {spec.corpus}; pass --normalize-self "
            "to normalise these files by their own statistics"
        )
    else:
        raise ConfigError(
            f"{where}: the model was trained on MFCCs normalised per speaker (normalize: speaker), "
            f"but its checkpoint (older than the stored statistics) records none of {spec.corpus}; "
            "declare the speakers (--speaker NAME for files of one speaker, --speaker-pattern "
            "REGEX or --speakers FILE.csv), or pass --normalize-self, or export the model again"
        )
    return [apply(c.x[None], mean, std, [c.frames])[0] if isinstance(c, Clip) else c for c in clips]
