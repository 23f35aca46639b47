"""Emotion vocabulary and the mapping from emotions to binary arousal / valence classes.

Every corpus reader turns its own codes into one shared vocabulary (:data:`EMOTIONS`).
The experiments never train on those emotions directly: each scenario is a binary task,
arousal (low / high) or valence (negative / positive), and :data:`DEFAULT_MAPPING` says
which side of each task an emotion falls on. That table is the paper's Table 1 (the
Geneva Emotion Wheel); a YAML file can override any of its entries (:func:`load_mapping`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import yaml

from emodna.errors import LabelError

EMOTIONS: tuple[str, ...] = (
    "anger",
    "boredom",
    "calm",
    "disgust",
    "fear",
    "happiness",
    "neutral",
    "sadness",
    "surprise",
)

TASKS: tuple[str, ...] = ("arousal", "valence")

# The class names of each task; a class's position here is its integer label (encode()).
CLASSES: dict[str, tuple[str, str]] = {
    "arousal": ("low", "high"),
    "valence": ("negative", "positive"),
}

# Paper Table 1 (Geneva Emotion Wheel). The paper's valence row is cut after
# "calm, happiness"; neutral and surprise on the positive side is the common choice.
DEFAULT_MAPPING: dict[str, dict[str, str]] = {
    "arousal": {
        "anger": "high",
        "boredom": "low",
        "calm": "low",
        "disgust": "high",
        "fear": "high",
        "happiness": "high",
        "neutral": "low",
        "sadness": "low",
        "surprise": "high",
    },
    "valence": {
        "anger": "negative",
        "boredom": "negative",
        "calm": "positive",
        "disgust": "negative",
        "fear": "negative",
        "happiness": "positive",
        "neutral": "positive",
        "sadness": "negative",
        "surprise": "positive",
    },
}

# Other spellings of the vocabulary's emotions (keys lower-case).
SYNONYMS: dict[str, str] = {
    "angry": "anger",
    "bored": "boredom",
    "disgusted": "disgust",
    "afraid": "fear",
    "fearful": "fear",
    "scared": "fear",
    "happy": "happiness",
    "joy": "happiness",
    "sad": "sadness",
    "surprised": "surprise",
}


def normalize_emotion(raw: str) -> str:
    """Return the vocabulary name of an emotion label ("Angry" -> "anger")."""
    key = str(raw).strip().lower()
    if key in EMOTIONS:
        return key
    if key in SYNONYMS:
        return SYNONYMS[key]
    raise LabelError(
        f"unknown emotion label {raw!r}; use one of {', '.join(EMOTIONS)} "
        f"(or a synonym: {', '.join(sorted(SYNONYMS))})"
    )


def load_mapping(path: str | Path | None = None) -> dict[str, dict[str, str]]:
    """Return the emotion -> class mapping per task: the default, overridden by a YAML file.

    The YAML file holds only the entries that change, e.g. ``{valence: {neutral: negative}}``.
    """
    mapping = copy.deepcopy(DEFAULT_MAPPING)
    if path is None:
        return mapping

    path = Path(path)
    try:
        overrides = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LabelError(
            f"cannot read label mapping {path}: {exc.strerror or exc}; check the path"
        ) from exc
    except yaml.YAMLError as exc:
        first_line = str(exc).splitlines()[0]
        raise LabelError(
            f"label mapping {path} is not valid YAML ({first_line}); "
            "write it as 'task: {emotion: class}'"
        ) from exc

    if overrides is None:  # an empty file changes nothing
        return mapping
    if not isinstance(overrides, dict):
        raise LabelError(
            f"label mapping {path} must be a YAML mapping 'task: {{emotion: class}}', "
            f"not a {type(overrides).__name__}"
        )

    for task, entries in overrides.items():
        if task not in TASKS:
            raise LabelError(
                f"label mapping {path}: unknown task {task!r}; use one of {', '.join(TASKS)}"
            )
        if not isinstance(entries, dict):
            raise LabelError(
                f"label mapping {path}: task {task!r} must map emotions to classes, "
                f"e.g. '{task}: {{neutral: {CLASSES[task][0]}}}'"
            )
        for raw_emotion, label in entries.items():
            try:
                emotion = normalize_emotion(raw_emotion)
            except LabelError:
                raise LabelError(
                    f"label mapping {path}: unknown emotion {raw_emotion!r} under {task!r}; "
                    f"use one of {', '.join(EMOTIONS)}"
                ) from None
            if label not in CLASSES[task]:
                raise LabelError(
                    f"label mapping {path}: {task}.{raw_emotion} = {label!r} is not a "
                    f"{task} class; use one of {', '.join(CLASSES[task])}"
                )
            mapping[task][emotion] = label
    return mapping


def task_label(emotion: str, task: str, mapping: dict[str, dict[str, str]] | None = None) -> str:
    """Return the class name ("low", "positive", ...) of an emotion for a task."""
    if task not in TASKS:
        raise LabelError(f"unknown task {task!r}; use one of {', '.join(TASKS)}")
    mapping = DEFAULT_MAPPING if mapping is None else mapping
    emotion = normalize_emotion(emotion)
    try:
        return mapping[task][emotion]
    except KeyError:
        raise LabelError(
            f"emotion {emotion!r} has no {task} class in the label mapping; "
            f"add it to a mapping YAML, e.g. '{task}: {{{emotion}: {CLASSES[task][0]}}}'"
        ) from None


def encode(
    emotions: Iterable[str], task: str, mapping: dict[str, dict[str, str]] | None = None
) -> np.ndarray:
    """Return the int64 class index (into ``CLASSES[task]``) of each emotion."""
    if task not in TASKS:
        raise LabelError(f"unknown task {task!r}; use one of {', '.join(TASKS)}")
    index = {}  # emotion -> class index, filled once per distinct emotion
    codes = []
    for emotion in emotions:
        if emotion not in index:
            label = task_label(emotion, task, mapping)
            if label not in CLASSES[task]:
                raise LabelError(
                    f"the label mapping gives {emotion!r} the {task} class {label!r}; "
                    f"use one of {', '.join(CLASSES[task])}"
                )
            index[emotion] = CLASSES[task].index(label)
        codes.append(index[emotion])
    return np.asarray(codes, dtype=np.int64)
