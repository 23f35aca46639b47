"""sweep/study.py: the study client against a real SQLite Optuna storage, across a restart."""

from __future__ import annotations

import pickle

import optuna
import pytest
from optuna.trial import TrialState

from sweep.ledger import StoredConfig
from sweep.samplers import make_sampler
from sweep.study import StudyClient, make_pruner

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture
def url(tmp_path):
    return f"sqlite:///{tmp_path / 'study.db'}"


def random_sampler(n_asked: int = 0):
    return make_sampler("random", 7 + n_asked)


def client_on(url, *, directions=("maximize",), prune=True, candidates=()) -> StudyClient:
    return StudyClient(
        name="s",
        storage=url,
        directions=directions,
        pruner=make_pruner(prune, 0.1, 2),
        sampler=random_sampler,
        candidates=candidates,
    )


def suggest(trial) -> dict:
    return {"x": trial.suggest_float("x", 0.0, 1.0)}


def stored_trial(url, number: int) -> optuna.trial.FrozenTrial:
    return optuna.load_study(study_name="s", storage=url).trials[number]


def test_ask_stores_the_config_and_attributes(url):
    client = client_on(url)
    number, params = client.ask(suggest, searcher_uid="u1", n_units=4)
    assert number == 0 and set(params) == {"x"}
    t = stored_trial(url, 0)
    assert t.state == TrialState.RUNNING and t.params == params
    assert t.user_attrs == {"config": params, "searcher_uid": "u1", "n_units": 4}


def test_a_candidate_runs_as_queued_and_only_once(url):
    candidates = [("baseline", {"method": "functionals_lr", "lr": 0.01})]
    client = client_on(url, candidates=candidates)
    number, params = client.ask(suggest, searcher_uid="u1")
    assert params == {"method": "functionals_lr", "lr": 0.01, "candidate": "baseline"}
    assert stored_trial(url, number).params == {}  # the sampler learns nothing from it
    client_on(url, candidates=candidates)  # the same study opened again: not queued again
    assert len(optuna.load_study(study_name="s", storage=url).trials) == 1


def test_report_prune_and_tell_by_number(url):
    client = client_on(url)
    best, _ = client.ask(suggest, searcher_uid="u1")
    for step in range(6):
        client.report(best, 0.8, step)
    client.tell(best, [0.8])
    worse, _ = client.ask(suggest, searcher_uid="u1")
    # one-sided Wilcoxon, every difference negative: p = 2^-n, below 0.1 from n = 4 on
    verdicts = []
    for step in range(5):
        client.report(worse, 0.5, step)
        verdicts.append(client.should_prune(worse))
    assert verdicts == [False, False, False, True, True]
    client.set_attrs(worse, pruned_after=4)
    client.tell_pruned(worse)
    t0, t1 = optuna.load_study(study_name="s", storage=url).trials
    assert t0.state == TrialState.COMPLETE and t0.value == 0.8
    assert t0.intermediate_values == dict.fromkeys(range(6), 0.8)
    assert t1.state == TrialState.PRUNED and t1.user_attrs["pruned_after"] == 4
    failed, _ = client.ask(suggest, searcher_uid="u1")
    client.tell_failed(failed)
    assert stored_trial(url, failed).state == TrialState.FAIL


def test_two_objectives_are_told_as_a_list(url):
    client = client_on(url, directions=("maximize", "minimize"), prune=False)
    number, _ = client.ask(suggest)
    client.tell(number, [0.7, 0.2])
    assert stored_trial(url, number).values == [0.7, 0.2]


def test_after_a_restart_a_new_client_rebuilds_and_goes_on_with_the_running_configs(url):
    before = client_on(url)
    done, done_params = before.ask(suggest, searcher_uid="u1")
    running, running_params = before.ask(suggest, searcher_uid="u1")
    other, _ = before.ask(suggest, searcher_uid="someone-else")
    before.set_attrs(done, unit_values={"a/seed0": 0.6, "a/seed1": 0.8})
    before.tell(done, [0.7])
    before.set_attrs(running, unit_values={"a/seed0": 0.5}, failed_units=["a/seed1"])
    before.report(running, 0.5, 0)
    del before  # the driver dies

    after = pickle.loads(pickle.dumps(client_on(url)))  # as Tune revives it, then reopened
    assert after.configs("u1", lambda params: params) == [
        StoredConfig(
            number=done,
            state="complete",
            params=done_params,
            unit_values={"a/seed0": 0.6, "a/seed1": 0.8},
        ),
        StoredConfig(
            number=running,
            state="running",
            params=running_params,
            unit_values={"a/seed0": 0.5},
            failed_units=["a/seed1"],
        ),
    ]
    assert [c.number for c in after.configs("someone-else", dict)] == [other]
    # the config asked before the restart takes reports and its final value by number
    after.report(running, 0.4, 1)
    after.set_attrs(running, penalised_units=1)
    after.tell(running, [0.45])
    t = stored_trial(url, running)
    assert t.state == TrialState.COMPLETE and t.value == 0.45
    assert t.intermediate_values == {0: 0.5, 1: 0.4} and t.user_attrs["penalised_units"] == 1


def test_a_config_without_its_config_attribute_is_rebuilt_from_the_params(url):
    study = optuna.create_study(study_name="s", storage=url, direction="maximize")
    trial = study.ask()
    trial.suggest_float("x", 0.0, 1.0)
    trial.set_user_attr("searcher_uid", "u1")
    (rec,) = client_on(url).configs("u1", lambda params: {"rebuilt": params})
    assert rec.params == {"rebuilt": trial.params} and rec.state == "running"


def test_reseed_goes_on_drawing_rather_than_repeating(tmp_path):
    first = client_on(f"sqlite:///{tmp_path / 'a.db'}")
    _, start = first.ask(suggest)
    again = client_on(f"sqlite:///{tmp_path / 'b.db'}")
    assert again.ask(suggest)[1] == start  # the same seed draws the same config
    restarted = client_on(f"sqlite:///{tmp_path / 'c.db'}")
    restarted.reseed(1)
    assert restarted.ask(suggest)[1] != start
    assert isinstance(restarted.study.pruner, optuna.pruners.WilcoxonPruner)
