"""Predict arousal / valence of audio files with a trained model.

    emodna predict --model runs/NAME/best/EMODB-CASIA-arousal.yaml clip1.wav clip2.wav
    emodna predict --model best/EMODB-CASIA-arousal.yaml --model best/EMODB-CASIA-valence.yaml *.wav

``--model`` is a YAML config exported by ``emodna summarize`` (its checkpoint is the ``.pt``
beside it unless ``--checkpoint`` says otherwise), an exported ensemble (``emodna.ensemble``:
its members' probabilities are averaged), or a checkpoint itself (a ``.pt``, or the run
folder of ``emodna train``, whose ``checkpoint.pt`` carries its config).

Features are computed exactly as in training (:func:`emodna.frontends.clip_features`):
:func:`~emodna.frontends.read_audio` at the config's sample rate,
:func:`~emodna.frontends.fix_length` to the *target* corpus's fixed length (the model was
adapted to that corpus, and its own clips were cut to that length), then the front-end
(:func:`~emodna.frontends.mfcc`), then the input normalisation training used
(``emodna.normalize``; the checkpoint records the mode and the target corpus's statistics).

A prediction is a function of the clip, the model and a grouping the user declared, never
of the other files on the command line (``emodna.grouping``): ``corpus`` applies the target
corpus's stored mean and std; ``speaker`` applies a declared speaker group's own statistics
(``--speaker``, ``--speaker-pattern``, ``--speakers``), else the stored statistics of a
typical target speaker, which keep a clip's overall level. ``--normalize-self`` (an explicit
opt-in) normalises all files given by their own statistics, taken as one group.

Checkpoints are read with ``torch.load(weights_only=True)``; one of another shape than the
config (MFCC count, number of classes, layers) is a one-line error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from emodna.errors import ConfigError, FeatureError, TrainingError
from emodna.features import FeatureSettings
from emodna.inputs import FeatureSpec, features, normalise
from emodna.labels import CLASSES


@dataclass
class LoadedModel:
    """A model ready to predict: the network in eval mode and how to make its input."""

    name: str
    task: str
    classes: tuple[str, ...]
    model: object  # emodna.model.EmoDNA
    features: FeatureSpec
    checkpoint: Path
    config: object  # emodna.train.TrainConfig


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


def _origin(path: Path) -> dict:
    """The ``origin`` mapping of an exported YAML (how its target's features were made)."""
    try:
        origin = (yaml.safe_load(path.read_text()) or {}).get("origin") or {}
    except (OSError, yaml.YAMLError):
        origin = {}
    return origin if isinstance(origin, dict) else {}


def _read_torch(path: Path) -> dict:
    from emodna.checkpoint import read_checkpoint

    if not path.exists():
        raise ConfigError(
            f"{path}: no such checkpoint; pass --checkpoint, or export one with `emodna summarize`"
        )
    return read_checkpoint(path, "give the .pt a sweep or `emodna train` wrote")


def _feature_spec(cfg, origin: dict, where: str, length: int | None, norm: dict) -> FeatureSpec:
    feats = (origin or {}).get("features") or {}
    defaults = FeatureSettings()
    settings = FeatureSettings(
        sample_rate=int(feats.get("sample_rate") or defaults.sample_rate),
        n_mfcc=int(feats.get("n_mfcc") or defaults.n_mfcc),
        frontend=cfg.feature_set,
        n_mels=int(feats.get("n_mels") or defaults.n_mels),
    )
    channels = settings.channels
    length = length or feats.get("length") or settings.length_for(cfg.target)
    if settings.frontend == "egemaps":
        length = length or 0  # openSMILE's functionals summarise each clip as it is
    elif not length:
        raise ConfigError(
            f"{where}: the fixed length of corpus {cfg.target} is not recorded (it was the 95th "
            "percentile of its durations); pass --length SAMPLES"
        )
    mean, std = norm.get("mean"), norm.get("std")
    if mean is not None and (
        len(mean) != channels or len(std if std is not None else []) != channels
    ):
        raise ConfigError(
            f"{where}: the checkpoint's normalisation statistics must hold {channels} values each"
        )
    return FeatureSpec(
        settings=settings,
        length=int(length),
        normalize=str(norm.get("mode", cfg.normalize)),
        mean=tuple(float(v) for v in mean) if mean is not None else None,
        std=tuple(float(v) for v in std) if std is not None else None,
        corpus=cfg.target,
    )


def load_model(
    model: str | Path, checkpoint: str | Path | None = None, *, length: int | None = None
) -> LoadedModel | LoadedEnsemble:
    """Load an exported YAML config and its checkpoint (or a checkpoint / run folder alone,
    or an exported ensemble: :func:`load_ensemble`).

    Raises ConfigError / TrainingError (one line) when a file is missing, unreadable, or
    the checkpoint does not fit the config.
    """
    from emodna.config import TrainConfig
    from emodna.ensemble import is_ensemble

    model = Path(model)
    if is_ensemble(model):  # its members name their checkpoints
        return load_ensemble(model, length=length)
    origin: dict = {}
    if model.is_dir():
        from emodna.checkpoint import CHECKPOINT

        model = model / CHECKPOINT
    if model.suffix in (".yaml", ".yml"):
        cfg = TrainConfig.from_yaml(model)
        origin = _origin(model)
        ckpt_path = Path(checkpoint) if checkpoint else model.with_suffix(".pt")
        state = _read_torch(ckpt_path)
    else:
        ckpt_path = Path(checkpoint) if checkpoint else model
        state = _read_torch(ckpt_path)
        if not isinstance(state.get("config"), dict):
            raise TrainingError(
                f"{ckpt_path}: the checkpoint holds no config; pass the exported .yaml as --model"
            )
        cfg = TrainConfig.from_dict(state["config"], origin=str(ckpt_path))
    return _build(cfg, state, origin, ckpt_path, str(model), length)


def _build(cfg, state: dict, origin: dict, ckpt_path: Path, where: str, length) -> LoadedModel:
    """The network of ``state`` checked against ``cfg``, in eval mode, with its input spec."""
    from emodna.methods import build_model
    from emodna.model import TARGET

    spec = _feature_spec(cfg, origin, where, length, state.get("norm") or {"mode": cfg.normalize})
    classes = CLASSES[cfg.task]

    shape = state.get("model_shape") or {}
    n_mfcc, n_classes = shape.get("n_mfcc"), shape.get("n_classes")
    if n_mfcc is None or n_classes is None:
        raise TrainingError(
            f"{ckpt_path}: checkpoint has no model_shape; it was not written by emodna"
        )
    if int(n_classes) != len(classes):
        raise TrainingError(
            f"{ckpt_path}: checkpoint of another shape: {n_classes} classes, but task {cfg.task} "
            f"has {len(classes)} ({', '.join(classes)}); pass the checkpoint exported with this config"
        )
    if int(n_mfcc) != spec.settings.channels:
        raise TrainingError(
            f"{ckpt_path}: checkpoint of another shape: it takes {n_mfcc} features per frame, "
            f"the config's {spec.settings.frontend} front-end computes {spec.settings.channels}; pass the "
            "checkpoint exported with this config"
        )
    trained = state.get("config") or {}
    for key in ("task", "method"):
        if key in trained and trained[key] != getattr(cfg, key):
            raise TrainingError(
                f"{ckpt_path}: checkpoint trained with {key} {trained[key]}, the config says "
                f"{getattr(cfg, key)}; pass the checkpoint exported with this config"
            )
    net = build_model(cfg.method, int(n_mfcc), int(n_classes), cfg.dropout, cfg.bn)
    weights = (state.get("kept") or {}).get("model") or state["model"]  # the model select kept
    try:
        net.load_state_dict(weights)
    except (RuntimeError, KeyError, ValueError, TypeError) as exc:
        raise TrainingError(
            f"{ckpt_path}: checkpoint of another shape ({_one_line(exc)}); pass the checkpoint exported with this config"
        ) from None
    net.eval()
    net.set_domain(TARGET)  # adabn / dsbn: the statistics of the corpus it was adapted to
    return LoadedModel(where, cfg.task, classes, net, spec, ckpt_path, cfg)


@dataclass
class LoadedEnsemble:
    """Several models of one task whose probabilities are averaged (:mod:`emodna.ensemble`)."""

    name: str
    task: str
    classes: tuple[str, ...]
    members: list[LoadedModel]


def load_ensemble(path: str | Path, *, length: int | None = None) -> LoadedEnsemble:
    """Every member of an ensemble file with its checkpoint (a member without one is an
    error: ``emodna train --config`` trains them)."""
    from emodna.ensemble import read_members

    path = Path(path)
    origin = _origin(path)
    members = []
    for i, m in enumerate(read_members(path)):
        if m.checkpoint is None:
            raise ConfigError(
                f"{path}: member {i} has no checkpoint (a config for a corpus the sweep never "
                f"saw); train it first: emodna train --config {path} --source ... --target ..."
            )
        state = _read_torch(m.checkpoint)
        members.append(_build(m.config, state, origin, m.checkpoint, f"{path}: member {i}", length))
    first = members[0]
    return LoadedEnsemble(str(path), first.task, first.classes, members)


def predict(
    models: list[LoadedModel | LoadedEnsemble],
    paths,
    *,
    normalize_self: bool = False,
    speakers: list[str] | None = None,
) -> list[dict]:
    """One dict per file: ``path``, ``error`` (or None) and per task ``{class, probability,
    probabilities}``. ``speakers``: the declared speaker of each file
    (:func:`emodna.grouping.speaker_groups`), for ``normalize: speaker`` models."""
    import torch

    tasks = [m.task for m in models]
    dup = {t for t in tasks if tasks.count(t) > 1}
    if dup:
        raise ConfigError(
            f"two --model for {', '.join(sorted(dup))}; give at most one per task (arousal, valence)"
        )
    paths = [Path(p) for p in paths]
    rows: list[dict] = [{"path": str(p), "error": None} for p in paths]
    raw: dict[tuple, list] = {}  # each front-end's features, computed once per file
    for m in models:
        per_member = []  # per member, per file: the probabilities or the error
        for member in getattr(m, "members", [m]):
            key = member.features.key()
            if key not in raw:
                raw[key] = features(paths, member.features)
            xs = normalise(raw[key], member.features, member.name, normalize_self, speakers)
            probs = []
            for x in xs:
                if not isinstance(x, np.ndarray):
                    probs.append(x)
                    continue
                with torch.no_grad():
                    x = torch.from_numpy(np.ascontiguousarray(x[None]))
                    probs.append(torch.softmax(member.model.predict_logits(x), dim=1)[0].numpy())
            per_member.append(probs)
        for i, row in enumerate(rows):
            errors = [str(ps[i]) for ps in per_member if not isinstance(ps[i], np.ndarray)]
            if errors:
                row["error"] = errors[0]
                continue
            p = np.mean([ps[i] for ps in per_member], axis=0)  # an ensemble's average
            k = int(p.argmax())
            row[m.task] = {
                "class": m.classes[k],
                "probability": float(p[k]),
                "probabilities": {c: float(v) for c, v in zip(m.classes, p, strict=True)},
            }
    return rows


def expand_folders(paths) -> list[Path]:
    """Files as given; a folder becomes the audio files under it (sorted), e.g. one new
    speaker's recordings for a ``normalize: speaker`` model."""
    from emodna.corpus import audio_files

    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = audio_files(p)
            if not found:
                raise FeatureError(f"{p}: folder holds no audio file soundfile can read")
            out += found
        else:
            out.append(p)
    return out


def format_row(row: dict, tasks: list[str], as_json: bool = False) -> str:
    """``path<TAB>arousal=high p=0.873<TAB>valence=negative p=0.641`` (or one JSON object)."""
    if as_json:
        return json.dumps({k: v for k, v in row.items() if k != "error" or v})
    cells = [row["path"]]
    for task in tasks:
        r = row.get(task)
        if r is not None:
            cells.append(f"{task}={r['class']} p={r['probability']:.3f}")
    return "\t".join(cells)


def run(
    model_paths,
    audio,
    checkpoints=None,
    *,
    length=None,
    normalize_self=False,
    speaker=None,
    speaker_pattern=None,
    speakers=None,
    as_json=False,
    out=None,
    err=None,
) -> int:
    """The ``emodna predict`` command: print one line per file; 2 if any file failed.

    ``speaker`` (every file is that speaker), ``speaker_pattern`` (a regex whose first group
    in a file's path is its speaker) or ``speakers`` (a CSV/Parquet of path, speaker): the
    declared grouping of ``emodna.grouping``."""
    import sys

    from emodna.grouping import lone_speakers, speaker_groups

    out = out or sys.stdout
    err = err or sys.stderr
    checkpoints = list(checkpoints or [])
    if len(checkpoints) > len(model_paths):
        raise ConfigError(
            f"{len(checkpoints)} --checkpoint for {len(model_paths)} --model; give at most one per --model"
        )
    checkpoints += [None] * (len(model_paths) - len(checkpoints))
    models = [
        load_model(m, c, length=length) for m, c in zip(model_paths, checkpoints, strict=True)
    ]
    audio = expand_folders(audio)
    missing = [str(p) for p in audio if not Path(p).exists()]
    if missing:
        raise FeatureError(
            f"{missing[0]}: no such audio file"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
        )
    groups = speaker_groups(audio, speaker=speaker, pattern=speaker_pattern, table=speakers)
    if groups is not None and normalize_self:
        raise ConfigError(
            "--normalize-self and a declared speaker grouping: give one (each group is "
            "normalised by its own files' statistics)"
        )
    members = [x for m in models for x in getattr(m, "members", [m])]
    if any(m.features.normalize == "speaker" for m in members):
        for name in lone_speakers(groups):
            print(
                f"emodna predict: warning: speaker {name} has one file here; its own statistics "
                "remove its overall level (the arousal cue): give several of their files, or "
                "declare no speaker to use the target corpus's stored statistics",
                file=err,
            )
    rows = predict(models, audio, normalize_self=normalize_self, speakers=groups)
    tasks = [m.task for m in models]
    failed = 0
    for row in rows:
        if row["error"]:
            failed += 1
            print(f"emodna predict: error: {row['error']}", file=err)
            continue
        print(format_row(row, tasks, as_json), file=out)
    return 2 if failed else 0
