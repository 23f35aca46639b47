"""sweep/ledger.py: the searcher's bookkeeping, by hand (plain Python, no Optuna, no Ray)."""

from __future__ import annotations

import pytest

from emodna.errors import ConfigError
from sweep.ledger import ConfigState, Ledger, StoredConfig
from sweep.units import Units

# two scenarios x two seeds: units 0..3 are A-B/seed0, A-B/seed1, B-A/seed0, B-A/seed1
SCENARIOS = [
    {"source": "A", "target": "B", "task": "arousal"},
    {"source": "B", "target": "A", "task": "arousal"},
]
KEYS = ["A-B-arousal/seed0", "A-B-arousal/seed1", "B-A-arousal/seed0", "B-A-arousal/seed1"]


@pytest.fixture
def ledger():
    return Ledger(Units(SCENARIOS, [0, 1]))


def in_order(number: int) -> list[int]:
    return [0, 1, 2, 3]


def test_units_are_named_scenario_then_seed(ledger):
    assert ledger.units.keys == KEYS


def test_a_unit_is_placed_by_its_trial_id_else_by_the_config_its_result_names(ledger):
    cfg = ledger.add(0, {"lr": 0.1}, [2, 0, 1, 3])
    assert (ledger.issue("t1", cfg), ledger.issue("t2", cfg)) == (2, 0)
    assert cfg.queue == [1, 3] and cfg.running == {"t1": 2, "t2": 0}
    assert ledger.live == {"t1", "t2"} and ledger.n_issued == 2
    assert ledger.place("t2", None) == (cfg, 0)
    assert cfg.running == {"t1": 2} and ledger.live == {"t1"}
    # a trial Tune resumed after a restart: its id is new here, its result names the unit
    result = {"config": {**SCENARIOS[1], "seed": 1, "config_id": 0}}
    assert ledger.place("resumed", result) == (cfg, 3)
    assert ledger.place("stranger", {"config": {**SCENARIOS[0], "seed": 0, "config_id": 9}}) is None
    assert ledger.place("stranger", None) is None


def test_record_keeps_the_first_result_and_lets_a_success_replace_a_failure():
    cfg = ConfigState(number=0, params={}, queue=[0, 1, 2, 3])
    assert cfg.record(1, None) and cfg.failed == [1] and cfg.queue == [0, 2, 3]
    assert not cfg.record(1, None)  # the same failure again
    assert cfg.record(1, 0.7) and cfg.failed == [] and cfg.values == {1: 0.7}
    assert not cfg.record(1, 0.9) and cfg.values == {1: 0.7}  # a duplicate after a re-issue
    assert cfg.n_done == 1


def test_a_failed_unit_counts_as_the_worst_value_any_config_reached_there(ledger):
    a = ledger.add(0, {}, [])
    a.values = {0: 0.6, 1: 0.8, 2: 0.5, 3: 0.9}
    b = ledger.add(1, {}, [])
    b.values, b.failed = {0: 0.7, 1: 0.75}, [2, 3]
    assert ledger.penalty(2, "max") == 0.5 and ledger.penalty(3, "min") == 0.9
    # unit 2: the worst any config reached (0.5); unit 3 as well (0.9 is a's, the only one)
    assert b.penalised(lambda i: ledger.penalty(i, "max"), "max") == {
        0: 0.7,
        1: 0.75,
        2: 0.5,
        3: 0.9,
    }
    # where no config has a value, the config's own worst
    assert b.penalised(lambda i: None, "max") == {0: 0.7, 1: 0.75, 2: 0.7, 3: 0.7}
    assert b.penalised(lambda i: None, "min") == {0: 0.7, 1: 0.75, 2: 0.75, 3: 0.75}


def test_progress_counts(ledger):
    assert (ledger.units_done(), ledger.units_left(3), ledger.best_so_far("max")) == (0, 12, None)
    a = ledger.add(0, {}, [0, 1, 2, 3])
    for tid in ("t0", "t1", "t2"):
        ledger.issue(tid, a)
    for tid, value in (("t0", 0.6), ("t1", None)):
        cfg, idx = ledger.place(tid, None)
        cfg.record(idx, value)
    # config 0: 2 done, 1 running, 1 queued; one config not asked: 2 + 4
    assert (ledger.units_done(), ledger.units_left(2), ledger.n_failed_units) == (2, 6, 1)
    assert ledger.best_so_far("max") == (0, 0.6, 1)
    b = ledger.add(1, {}, [])
    b.values = {0: 0.5, 1: 0.5, 2: 0.5, 3: 0.5}
    b.state = "complete"
    assert ledger.best_so_far("max") == (1, 0.5, 4)  # complete beats partial, even if lower
    assert ledger.best_so_far("min") == (1, 0.5, 4)
    c = ledger.add(2, {}, [])
    c.values, c.state = {0: 0.99, 1: 0.99, 2: 0.99, 3: 0.99}, "pruned"
    assert ledger.best_so_far("max") == (1, 0.5, 4) and ledger.pruned_config_ids == [2]
    assert ledger.units_left(5) == 2 + 2 * 4  # budget 5, three asked


def stored(**kw) -> list[StoredConfig]:
    return [
        StoredConfig(
            number=0, state="complete", params={"lr": 1}, unit_values=dict.fromkeys(KEYS, 0.5)
        ),
        StoredConfig(number=2, state="pruned", params={"lr": 3}, pruned_after=2, **kw),
        StoredConfig(
            number=1,
            state="running",
            params={"lr": 2},
            unit_values={KEYS[0]: 0.7},
            failed_units=[KEYS[3]],
        ),
    ]


def test_rebuild_from_the_study_leaves_the_units_tune_resumes_to_it(ledger):
    # config 1: unit 0 done, 3 failed, 1 in flight at Tune's snapshot, 2 never issued
    ledger.rebuild(stored(), in_order, {"old": (1, KEYS[1]), "gone": (2, KEYS[0])}, reissue=False)
    assert list(ledger.configs) == [0, 1, 2] and ledger.n_asked == 3
    done, running, pruned = ledger.configs[0], ledger.configs[1], ledger.configs[2]
    assert (done.state, done.queue, done.values) == ("complete", [], dict.fromkeys(range(4), 0.5))
    assert (pruned.state, pruned.pruned_after, pruned.queue) == ("pruned", 2, [])
    assert running.values == {0: 0.7} and running.failed == [3]
    assert running.queue == [2] and running.running == {"old": 1}
    assert ledger.trial_map == {"old": (1, 1)} and ledger.live == set()
    assert ledger.n_issued == 4 + 0 + 2 + 1  # done or in flight
    assert ledger.place("old", None) == (running, 1)  # Tune's resumed trial, by its old id


def test_rebuild_with_reissue_issues_the_units_in_flight_first(ledger):
    ledger.rebuild(stored(), in_order, {"old": (1, KEYS[1])}, reissue=True)
    running = ledger.configs[1]
    assert running.queue == [1, 2] and running.running == {"old": 1}
    assert ledger.in_flight() == {"old": (1, KEYS[1])}


def test_rebuild_refuses_a_study_of_other_units(ledger):
    with pytest.raises(ConfigError, match="other scenarios or seeds"):
        ledger.rebuild(stored(unit_values={"X-Y-arousal/seed0": 0.1}), in_order, {}, False)
