"""sweep/units.py: the units of a sweep and how a result Tune hands back is placed."""

from __future__ import annotations

import pytest

from sweep.units import Units

SCENARIOS = [
    {"source": "EMODB", "target": "CASIA", "task": "arousal"},
    {"source": "CASIA", "target": "EMODB", "task": "arousal"},
]


@pytest.fixture
def units():
    return Units(SCENARIOS, [0, 1])


def test_locate_places_a_result_by_its_config(units):
    flat = {f"config/{k}": v for k, v in {**SCENARIOS[1], "seed": 1, "config_id": 4}.items()}
    assert units.locate(flat) == (4, units.index["CASIA-EMODB-arousal/seed1"])
    nested = {"config": {**SCENARIOS[0], "seed": 0, "config_id": "7"}}
    assert units.locate(nested) == (7, units.index["EMODB-CASIA-arousal/seed0"])


@pytest.mark.parametrize(
    "result",
    [
        None,
        {},
        [],  # not a result at all
        {"config": {**SCENARIOS[0], "seed": 0}},  # no config id
        {"config": {**SCENARIOS[0], "seed": 5, "config_id": 1}},  # a seed the sweep has not
        {"config": {**SCENARIOS[0], "seed": 0, "config_id": "seven"}},
        {"config": {**SCENARIOS[0], "seed": 0, "config_id": [1]}},
    ],
)
def test_a_result_that_names_no_unit_of_this_sweep_is_none(units, result):
    assert units.locate(result) is None
