"""sweep/policy.py: what the searcher issues next, by hand (plain Python)."""

from __future__ import annotations

from sweep.ledger import ConfigState, Ledger
from sweep.policy import ASK, FINISHED, WAIT, IssuePolicy
from sweep.units import Units

# 2 pairs x 2 tasks x 1 seed: (target, task) of units 0..3 = (B,ar), (A,ar), (B,va), (A,va)
SCENARIOS = [
    {"source": "A", "target": "B", "task": "arousal"},
    {"source": "B", "target": "A", "task": "arousal"},
    {"source": "A", "target": "B", "task": "valence"},
    {"source": "B", "target": "A", "task": "valence"},
]
UNITS = Units(SCENARIOS, [0])


def test_running_configs_first_oldest_first_then_new_configs_then_wait_then_finished():
    policy, ledger = IssuePolicy(budget=2), Ledger(UNITS)
    assert policy.next(ledger) == ASK
    a = ledger.add(0, {}, [0, 1])
    assert policy.next(ledger) is a
    b = ledger.add(1, {}, [2])
    ledger.issue("t0", a), ledger.issue("t1", a)
    assert policy.next(ledger) is b  # a has nothing queued
    ledger.issue("t2", b)
    assert policy.next(ledger) == WAIT  # budget used, units in flight
    a.finish("complete")
    assert policy.next(ledger) == WAIT and not policy.finished(ledger)
    b.finish("pruned")
    assert policy.next(ledger) == FINISHED and policy.finished(ledger)


def test_max_concurrent_counts_the_units_in_flight():
    policy, ledger = IssuePolicy(budget=1, max_concurrent=2), Ledger(UNITS)
    a = ledger.add(0, {}, [0, 1, 2, 3])
    ledger.issue("t0", a), ledger.issue("t1", a)
    assert policy.next(ledger) == WAIT
    ledger.place("t0", None)
    assert policy.next(ledger) is a


def test_a_wave_holds_the_rest_of_a_config_until_the_wave_is_in():
    policy = IssuePolicy(budget=1, wave=2)
    ledger = Ledger(UNITS)
    a = ledger.add(0, {}, [0, 1, 2, 3])
    ledger.issue("t0", a)
    assert policy.may_issue(a)  # 1 of the wave of 2 out
    ledger.issue("t1", a)
    assert not policy.may_issue(a) and policy.next(ledger) == WAIT
    ledger.place("t0", None)
    a.record(0, 0.5)
    assert not policy.may_issue(a)  # 1 in, 1 still out
    ledger.place("t1", None)
    a.record(1, None)  # a failure is in too
    assert policy.may_issue(a) and policy.next(ledger) is a
    # without a wave nothing is held
    busy = ConfigState(number=0, params={}, queue=[3], running={"t0": 0, "t1": 1, "t2": 2})
    assert IssuePolicy(budget=1).may_issue(busy)


def test_unit_order_is_the_same_for_a_config_on_every_call_and_spread_with_waves():
    shuffled = IssuePolicy(budget=1, seed=3)
    assert shuffled.order(UNITS, 5) == shuffled.order(UNITS, 5)
    assert sorted(shuffled.order(UNITS, 5)) == [0, 1, 2, 3]
    assert IssuePolicy(budget=1, shuffle=False).order(UNITS, 5) == [0, 1, 2, 3]
    # a wave of 2 spans both targets: round-robin over (target, task)
    waved = IssuePolicy(budget=1, shuffle=False, wave=2)
    assert waved.order(UNITS, 0) == [0, 1, 2, 3]
    two = Units(SCENARIOS[:2], [0, 1])  # units: (B,ar)/s0, (B,ar)/s1, (A,ar)/s0, (A,ar)/s1
    assert IssuePolicy(budget=1, shuffle=False, wave=2).order(two, 0) == [0, 2, 1, 3]
