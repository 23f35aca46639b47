"""The emotion vocabulary and the arousal / valence mapping (paper Table 1)."""

import numpy as np
import pytest

from emodna.errors import EmodnaError, LabelError
from emodna.labels import (
    CLASSES,
    DEFAULT_MAPPING,
    EMOTIONS,
    TASKS,
    encode,
    load_mapping,
    normalize_emotion,
    task_label,
)

# Paper Table 1, written out independently of the code's table.
TABLE_1 = {
    #             arousal  valence
    "anger": ("high", "negative"),
    "boredom": ("low", "negative"),
    "calm": ("low", "positive"),
    "disgust": ("high", "negative"),
    "fear": ("high", "negative"),
    "happiness": ("high", "positive"),
    "neutral": ("low", "positive"),
    "sadness": ("low", "negative"),
    "surprise": ("high", "positive"),
}


def test_vocabulary_and_tasks():
    assert EMOTIONS == tuple(sorted(TABLE_1))
    assert TASKS == ("arousal", "valence")
    assert CLASSES == {"arousal": ("low", "high"), "valence": ("negative", "positive")}
    assert set(DEFAULT_MAPPING) == set(TASKS)
    for task in TASKS:
        assert set(DEFAULT_MAPPING[task]) == set(EMOTIONS)


@pytest.mark.parametrize("emotion", sorted(TABLE_1))
def test_every_emotion_follows_table_1(emotion):
    arousal, valence = TABLE_1[emotion]
    assert task_label(emotion, "arousal") == arousal
    assert task_label(emotion, "valence") == valence


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("angry", "anger"),
        ("Anger", "anger"),
        ("happy", "happiness"),
        ("joy", "happiness"),
        ("sad", "sadness"),
        ("fearful", "fear"),
        ("surprised", "surprise"),
        ("disgusted", "disgust"),
        ("bored", "boredom"),
        ("NEUTRAL", "neutral"),
        (" calm ", "calm"),
    ],
)
def test_normalize_emotion_synonyms(raw, expected):
    assert normalize_emotion(raw) == expected


def test_normalize_emotion_unknown_names_label_and_vocabulary():
    with pytest.raises(LabelError, match="'frustration'") as info:
        normalize_emotion("frustration")
    message = str(info.value)
    assert "\n" not in message
    for emotion in EMOTIONS:
        assert emotion in message
    assert isinstance(info.value, EmodnaError)


def test_task_label_accepts_synonyms_and_rejects_unknown_task():
    assert task_label("angry", "arousal") == "high"
    with pytest.raises(LabelError, match="dominance"):
        task_label("anger", "dominance")


def test_task_label_missing_from_mapping_says_how_to_fix():
    partial = {"arousal": {"anger": "high"}, "valence": {}}
    assert task_label("anger", "arousal", partial) == "high"
    with pytest.raises(LabelError) as info:
        task_label("calm", "arousal", partial)
    message = str(info.value)
    assert "'calm'" in message and "arousal" in message and "mapping YAML" in message


def test_encode_values():
    emotions = ["anger", "neutral", "sadness", "happiness", "calm", "surprise"]
    arousal = encode(emotions, "arousal")
    valence = encode(emotions, "valence")
    assert arousal.dtype == np.int64 and valence.dtype == np.int64
    assert arousal.tolist() == [1, 0, 0, 1, 0, 1]  # low=0, high=1
    assert valence.tolist() == [0, 1, 0, 1, 1, 1]  # negative=0, positive=1
    assert encode([], "valence").tolist() == []
    assert encode(np.array(["fear", "boredom"]), "arousal").tolist() == [1, 0]


def test_encode_every_emotion_matches_table_1():
    for task_index, task in enumerate(TASKS):
        expected = [CLASSES[task].index(TABLE_1[e][task_index]) for e in EMOTIONS]
        assert encode(EMOTIONS, task).tolist() == expected


def test_encode_unknown_emotion_raises():
    with pytest.raises(LabelError, match="'grumpy'"):
        encode(["anger", "grumpy"], "arousal")


def test_load_mapping_default_is_a_copy():
    mapping = load_mapping()
    assert mapping == DEFAULT_MAPPING
    mapping["valence"]["neutral"] = "negative"
    assert DEFAULT_MAPPING["valence"]["neutral"] == "positive"


def test_load_mapping_yaml_overrides_entries(tmp_path):
    path = tmp_path / "mapping.yaml"
    path.write_text("valence:\n  neutral: negative\n  Surprised: negative\n")
    mapping = load_mapping(path)
    assert mapping["valence"]["neutral"] == "negative"
    assert mapping["valence"]["surprise"] == "negative"  # synonym keys are accepted
    assert mapping["valence"]["calm"] == "positive"  # untouched entries keep the default
    assert mapping["arousal"] == DEFAULT_MAPPING["arousal"]
    assert encode(["neutral", "calm"], "valence", mapping).tolist() == [0, 1]
    assert task_label("neutral", "valence", mapping) == "negative"


def test_load_mapping_empty_file_is_the_default(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert load_mapping(str(path)) == DEFAULT_MAPPING


@pytest.mark.parametrize(
    "text, key",
    [
        ("valence:\n  grumpy: negative\n", "'grumpy'"),  # unknown emotion
        ("valence:\n  neutral: low\n", "'low'"),  # class of another task
        ("valence:\n  neutral: bad\n", "'bad'"),  # unknown class
        ("dominance:\n  neutral: low\n", "'dominance'"),  # unknown task
        ("valence: negative\n", "'valence'"),  # task without entries
        ("- valence\n", "list"),  # not a mapping at all
        ("valence: {neutral: [\n", "not valid YAML"),
    ],
)
def test_load_mapping_bad_yaml_names_file_and_key(tmp_path, text, key):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(LabelError) as info:
        load_mapping(path)
    message = str(info.value)
    assert str(path) in message
    assert key in message
    assert "\n" not in message


def test_load_mapping_unknown_class_lists_the_classes(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("arousal:\n  calm: medium\n")
    with pytest.raises(LabelError, match="use one of low, high"):
        load_mapping(path)


def test_load_mapping_missing_file(tmp_path):
    with pytest.raises(LabelError, match="nope.yaml"):
        load_mapping(tmp_path / "nope.yaml")
