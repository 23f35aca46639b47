"""TrainConfig's validation (pydantic, emodna.config): numbers as YAML and --set write them,
one line per mistake naming the key and what it should be."""

from __future__ import annotations

import pytest

from emodna.config import CHOICES, TRAIN_KEYS, TrainConfig
from emodna.errors import ConfigError


def test_numbers_are_read_as_yaml_writes_them_but_a_bool_is_not_one():
    # PyYAML reads `lr: 1e-3` (no dot) as a string; --set reads its values as YAML too
    assert TrainConfig.from_dict({"lr": "1e-3", "epochs": "5"}).lr == 0.001
    assert TrainConfig.from_dict({"mmd_multipliers": [1, 2.5]}).mmd_multipliers == [1.0, 2.5]
    for key, kind in (("epochs", "int"), ("lr", "float")):
        with pytest.raises(ConfigError, match=rf"^config: {key} must be a {kind}, got True$"):
            TrainConfig.from_dict({key: True})


@pytest.mark.parametrize(
    "values, message",
    [
        ({"epochs": 0}, "epochs must be at least 1"),
        ({"lr": 0}, "lr must be positive"),
        ({"val_fraction": 1.0}, "val_fraction must be in [0, 1)"),
        ({"mmd_multipliers": []}, "mmd_multipliers must not be empty"),
        ({"mmd_multipliers": [1, -2]}, "mmd_multipliers.1 must be positive"),
        ({"mmd_multipliers": [1, "x"]}, "mmd_multipliers.1 must be a float, got 'x'"),
        ({"task": "valance"}, "task 'valance' is not one of arousal, valence"),
        ({"select": "source_val", "val_fraction": 0}, "select: source_val needs val_fraction > 0"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_key_and_the_rule(values, message):
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_dict(values, origin="best.yaml")
    assert str(info.value) == f"best.yaml: {message}"


def test_choices_come_from_the_field_types():
    assert CHOICES["bn"] == ("separate", "joint", "adabn", "dsbn")
    assert "device" not in CHOICES and "method" not in CHOICES  # checked by rules, not a list


def test_train_keys_pass_a_trial_config_to_training_and_leave_the_sweeps_bookkeeping():
    # a trial's config as a sweep holds it: a config away from the defaults, plus the sweep's keys
    cfg = TrainConfig.from_dict({"lr": 0.002, "epochs": 7, "method": "dan", "bn": "adabn"})
    trial = {**cfg.to_dict(), "config_id": 4, "scenario": "EMODB-CASIA-arousal"}
    kept = {k: v for k, v in trial.items() if k in TRAIN_KEYS}
    assert TrainConfig.from_dict(kept) == cfg  # nothing training needs is left behind
    assert set(trial) - set(kept) == {"config_id", "scenario"}
    with pytest.raises(ConfigError, match="unknown key 'config_id'"):
        TrainConfig.from_dict(trial)  # what the filter is for


def test_a_config_built_in_code_is_checked_only_when_asked():
    # sweep.report builds configs of old runs: a method renamed since must not break it
    old = TrainConfig(method="renamed_method")
    assert old.feature_set == "mfcc"
    with pytest.raises(ConfigError, match="unknown method 'renamed_method'"):
        old.validate()
