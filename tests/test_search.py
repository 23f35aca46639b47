"""ScenarioSearcher: driven by hand (real Optuna SQLite storage), then once through Ray Tune."""

from __future__ import annotations

import itertools
import math
import pickle
import statistics
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from ray.tune.search import Searcher

from emodna.errors import ConfigError
from sweep.samplers import make_sampler
from sweep.search import ScenarioSearcher
from sweep.space import SAMPLERS, load_space, parse_space
from sweep.units import unit_key

SPACES = Path(__file__).resolve().parents[1] / "search_spaces"
optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE_TEXT = """\
method: emodna
metric: target_uar
mode: max
epochs: 2
seeds: [0, 1]
scenarios:
  corpora: [EMODB, CASIA]
  tasks: [arousal, valence]
fixed:
  batch_size: 64
params:
  tau_p: {type: float, low: 0.001, high: 1.0, log: true}
  mmd_multipliers: {type: list, length: 3, low: 0.125, high: 8.0, log: true}
"""


@pytest.fixture
def space():
    return parse_space(SPACE_TEXT, "test.yaml")


@pytest.fixture
def storage(tmp_path):
    return f"sqlite:///{tmp_path / 'study.db'}"


_ids = itertools.count()


def new_id() -> str:
    return f"t{next(_ids):05d}"


def searcher_for(space, storage, **kw) -> ScenarioSearcher:
    kw.setdefault("budget", 2)
    kw.setdefault("seed", 0)
    kw.setdefault("study_name", "s")
    return ScenarioSearcher(space, space.scenarios(["EMODB", "CASIA"]), storage=storage, **kw)


def unit_of(config: dict) -> str:
    return unit_key(config, config["seed"])


def score(config: dict) -> float:
    """A deterministic synthetic metric per (config, unit)."""
    offset = {"arousal": 0.1, "valence": -0.05}[config["task"]] + 0.01 * config["seed"]
    return (
        0.5 + 0.2 * math.log10(config["tau_p"]) / 3 + offset + 0.02 * (config["source"] == "EMODB")
    )


def study_of(s: ScenarioSearcher) -> optuna.Study:
    return optuna.load_study(study_name=s.study_name, storage=s.storage)


# ----------------------------------------------------------------------------- by hand


def test_units_expand_and_aggregate_is_the_mean(space, storage):
    s = searcher_for(space, storage, budget=2, prune=False)
    n_units = 2 * 2 * 2  # ordered pairs x tasks x seeds
    issued = {}
    for _ in range(2 * n_units):
        tid = new_id()
        cfg = s.suggest(tid)
        assert isinstance(cfg, dict)
        issued[tid] = cfg
    # budget used, nothing told yet: wait
    assert s.suggest(new_id()) is None
    by_config = {}
    for cfg in issued.values():
        by_config.setdefault(cfg["config_id"], []).append(cfg)
    assert sorted(by_config) == [0, 1]
    expected_units = {
        unit_key(sc, seed) for sc in space.scenarios(["EMODB", "CASIA"]) for seed in (0, 1)
    }
    for cfgs in by_config.values():
        assert {unit_of(c) for c in cfgs} == expected_units
        # hyperparameters identical across the units of one config
        hp = {k: v for k, v in cfgs[0].items() if k not in ("source", "target", "task", "seed")}
        for c in cfgs:
            assert {
                k: v for k, v in c.items() if k not in ("source", "target", "task", "seed")
            } == hp
        assert hp["method"] == "emodna" and hp["epochs"] == 2 and hp["batch_size"] == 64
        assert len(hp["mmd_multipliers"]) == 3

    for tid, cfg in issued.items():
        assert s.suggest(new_id()) is None or s.is_finished()
        s.on_trial_complete(tid, result={"target_uar": score(cfg)})
    assert s.suggest(new_id()) == Searcher.FINISHED

    study = study_of(s)
    trials = study.get_trials()
    assert len(trials) == 2 and all(t.state == TrialState.COMPLETE for t in trials)
    for t in trials:
        hand = [score(c) for c in by_config[t.number]]
        assert t.value == pytest.approx(statistics.mean(hand))
        assert t.user_attrs["unit_values"] == {
            unit_of(c): pytest.approx(score(c)) for c in by_config[t.number]
        }
        assert t.user_attrs["config"]["tau_p"] == by_config[t.number][0]["tau_p"]
        assert t.params["tau_p"] == by_config[t.number][0]["tau_p"]


def test_failed_units(space, storage):
    s = searcher_for(space, storage, budget=2, prune=False)
    issued = [(tid, s.suggest(tid)) for tid in (new_id() for _ in range(16))]
    values = []
    for i, (tid, cfg) in enumerate(issued):
        if cfg["config_id"] == 0:  # every unit of config 0 fails
            s.on_trial_complete(tid, error=True)
        elif i % 3 == 0:  # some of config 1 report no metric
            s.on_trial_complete(tid, result={"other": 1.0})
        else:
            s.on_trial_complete(tid, result={"target_uar": score(cfg)})
            values.append(score(cfg))
    study = study_of(s)
    t0, t1 = study.get_trials()
    assert t0.state == TrialState.FAIL
    # config 1's failed units count against it: no other config has a value on them, so each
    # counts as config 1's own worst unit (not the mean of the units it survived)
    n_failed = 8 - len(values)
    told = statistics.mean(values + [min(values)] * n_failed)
    assert n_failed > 0 and told < statistics.mean(values)
    assert t1.state == TrialState.COMPLETE and t1.value == pytest.approx(told)
    assert len(t1.user_attrs["failed_units"]) == n_failed
    assert t1.user_attrs["penalised_units"] == n_failed
    assert s.suggest(new_id()) == Searcher.FINISHED


def test_a_failed_unit_counts_as_the_worst_any_config_reached_there(space, storage):
    s = searcher_for(space, storage, budget=2, prune=False)  # configs 0 and 1, 8 units each
    issued = [(tid, s.suggest(tid)) for tid in (new_id() for _ in range(16))]
    first = issued[8][1]  # config 1's first unit fails; config 0 got 0.30 there
    key = (first["source"], first["target"], first["task"], first["seed"])
    for tid, cfg in issued:
        same = (cfg["source"], cfg["target"], cfg["task"], cfg["seed"]) == key
        if cfg["config_id"] == 1 and same:
            s.on_trial_complete(tid, error=True)
        else:
            s.on_trial_complete(tid, result={"target_uar": 0.30 if same else 0.80})
    t0, t1 = study_of(s).get_trials()
    assert t0.value == pytest.approx((7 * 0.80 + 0.30) / 8)
    assert t1.value == pytest.approx((7 * 0.80 + 0.30) / 8)  # not 0.80, the survivors' mean


def test_progress_counts_units_and_names_the_best_config(space, storage):
    lines = []
    s = searcher_for(space, storage, budget=3, prune=False, progress=lines.append)  # 3 x 8 units
    issued = [(tid, s.suggest(tid)) for tid in (new_id() for _ in range(16))]  # configs 0, 1
    assert {cfg["config_id"] for _, cfg in issued[:8]} == {0}
    # three units of config 0: 0.60, 0.70 and a NaN (a diverged trial, counted as failed);
    # the units running are still left
    for (tid, _), value in zip(issued[:3], [0.6, 0.7, float("nan")], strict=True):
        s.on_trial_complete(tid, result={"target_uar": value})
    assert lines[0].startswith("[sweep] 1/24 units done (0 failed, 0 configs pruned)")
    assert lines[-1].startswith("[sweep] 3/24 units done (1 failed, 0 configs pruned)")
    assert "ETA <= " in lines[-1]
    assert "best so far: config 0, mean target_uar 65.0% over 2/8 units" in lines[-1]
    for tid, _ in issued[8:]:  # every unit of config 1 at 0.55: complete, so it ranks first
        s.on_trial_complete(tid, result={"target_uar": 0.55})
    assert lines[-1].startswith("[sweep] 11/24 units done (1 failed")
    assert "config 1, mean target_uar 55.0% over 8/8" in lines[-1]


def test_progress_goes_to_logging_by_default(space, storage, caplog):
    s = searcher_for(space, storage, budget=1, prune=False)
    tid = new_id()
    cfg = s.suggest(tid)
    with caplog.at_level("INFO", logger="sweep.search"):
        s.on_trial_complete(tid, result={"target_uar": score(cfg)})
    assert [r.getMessage()[:27] for r in caplog.records] == ["[sweep] 1/8 units done (0 f"]


def test_eta_is_the_mean_unit_time_over_the_slots_and_ignores_units_started_elsewhere(
    space, storage, monkeypatch
):
    import sweep.progress as progress_module

    clock = [1000.0]
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: clock[0])
    lines = []
    s = searcher_for(space, storage, budget=3, prune=False, progress=lines.append)  # 24 units
    a, b = new_id(), new_id()
    ca, cb = s.suggest(a), s.suggest(b)  # two at once: two slots
    clock[0] += 60
    s.on_trial_complete(a, result={"target_uar": score(ca)})
    clock[0] += 40
    s.on_trial_complete(b, result={"target_uar": score(cb)})
    # units took 60 s and 100 s: mean 80 s, 22 units left on 2 slots -> 880 s
    assert "ETA <= 14:40" in lines[-1]
    # a trial this process did not start (Tune resumed it after a restore, so its id is
    # unknown here; its result names its unit) finishes at once: it counts as done, but not
    # in the mean duration
    (other, seed), *_ = [
        (sc, seed)
        for sc in space.scenarios(["EMODB", "CASIA"])
        for seed in (0, 1)
        if unit_key(sc, seed) not in {unit_of(ca), unit_of(cb)}
    ]
    resumed = {**ca, **other, "seed": seed}
    s.on_trial_complete("resumed", result={"target_uar": 0.5, "config": resumed})
    assert lines[-1].startswith("[sweep] 3/24 units done")
    assert "ETA <= 14:00" in lines[-1]  # 80 s x 21 / 2


def test_clearly_worse_config_is_pruned(tmp_path):
    text = SPACE_TEXT.replace("corpora: [EMODB, CASIA]", "corpora: [EMODB, CASIA, EMOVO]")
    space = parse_space(text, "t.yaml")  # 6 pairs x 2 tasks x 2 seeds = 24 units
    s = ScenarioSearcher(
        space,
        space.scenarios(["EMODB", "CASIA", "EMOVO"]),
        storage=f"sqlite:///{tmp_path}/p.db",
        budget=3,
        seed=1,
        p_threshold=0.1,
    )
    n_units = len(s.units)
    assert n_units == 24

    def value(cfg):  # config 1 is 0.3 below config 0 on every unit
        base = 0.8 if cfg["config_id"] != 1 else 0.5
        return base + 0.01 * (sum(map(ord, unit_of(cfg))) % 7)

    # config 0: all units, one at a time
    for _ in range(n_units):
        tid = new_id()
        cfg = s.suggest(tid)
        assert cfg["config_id"] == 0
        s.on_trial_complete(tid, {"target_uar": value(cfg)})
    # config 1: sequential units until pruned
    done = 0
    while True:
        tid = new_id()
        cfg = s.suggest(tid)
        if cfg["config_id"] != 1:
            break
        s.on_trial_complete(tid, {"target_uar": value(cfg)})
        done += 1
        assert done < n_units
    # one-sided Wilcoxon with all differences negative: p = 2^-n < 0.1 from n = 4 on
    assert done == 4
    assert s.pruned_config_ids == [1]
    assert cfg["config_id"] == 2  # the next suggestion moved on to a new config
    t1 = study_of(s).trials[1]
    assert t1.state == TrialState.PRUNED and t1.user_attrs["pruned_after"] == 4
    assert len(t1.intermediate_values) == 4 and len(t1.user_attrs["unit_values"]) == 4


def test_running_units_of_a_pruned_config_do_not_change_it(tmp_path):
    text = SPACE_TEXT.replace("corpora: [EMODB, CASIA]", "corpora: [EMODB, CASIA, EMOVO]")
    space = parse_space(text, "t.yaml")
    s = ScenarioSearcher(
        space,
        space.scenarios(["EMODB", "CASIA", "EMOVO"]),
        storage=f"sqlite:///{tmp_path}/p.db",
        budget=2,
    )
    first = [(tid, s.suggest(tid)) for tid in (new_id() for _ in range(24))]
    for tid, _ in first:
        s.on_trial_complete(tid, {"target_uar": 0.9})
    running = [(tid, s.suggest(tid)) for tid in (new_id() for _ in range(8))]  # 8 in flight
    for tid, _ in running[:4]:
        s.on_trial_complete(tid, {"target_uar": 0.1})
    assert s.pruned_config_ids == [1]
    assert s.suggest(new_id()) == Searcher.FINISHED  # budget used, nothing left to issue
    for tid, _ in running[4:]:  # the rest finish afterwards: recorded, outcome unchanged
        s.on_trial_complete(tid, {"target_uar": 0.95})
    t1 = study_of(s).trials[1]
    assert t1.state == TrialState.PRUNED and t1.user_attrs["pruned_after"] == 4


def _half_run(s, n_issue, n_complete):
    issued = [(tid, s.suggest(tid)) for tid in (new_id() for _ in range(n_issue))]
    for tid, cfg in issued[:n_complete]:
        s.on_trial_complete(tid, {"target_uar": score(cfg)})
    return issued


def test_save_restore_reissues_exactly_the_missing_units(space, storage, tmp_path):
    s = searcher_for(space, storage, budget=1)
    issued = _half_run(s, n_issue=5, n_complete=3)
    ckpt = tmp_path / "searcher.pkl"
    s.save(str(ckpt))
    # after the save, before the "crash": one more unit completes (it reaches the study)
    s.on_trial_complete(issued[3][0], {"target_uar": score(issued[3][1])})
    del s

    r = searcher_for(space, storage, budget=1)
    r.restore(str(ckpt))
    reissued = []
    while True:
        tid = new_id()
        cfg = r.suggest(tid)
        if not isinstance(cfg, dict):
            break
        reissued.append((tid, cfg))
    assert cfg is None  # waiting for the re-issued units
    done = {unit_of(c) for _, c in issued[:4]}
    all_units = {unit_of(c) for c in [c for _, c in issued]} | {unit_of(c) for _, c in reissued}
    assert len(all_units) == 8
    assert {unit_of(c) for _, c in reissued} == all_units - done
    assert len(reissued) == 4 and all(c["config_id"] == 0 for _, c in reissued)
    assert all(c["tau_p"] == issued[0][1]["tau_p"] for _, c in reissued)
    for tid, cfg in reissued:
        r.on_trial_complete(tid, {"target_uar": score(cfg)})
    # the old, in-flight trial comes back late (Tune resumed it): ignored as a duplicate
    r.on_trial_complete(issued[4][0], {"target_uar": -1.0})
    assert r.suggest(new_id()) == Searcher.FINISHED
    (t,) = study_of(r).get_trials()
    assert t.state == TrialState.COMPLETE
    everything = [c for _, c in issued[:4]] + [c for _, c in reissued]
    assert t.value == pytest.approx(statistics.mean(score(c) for c in everything))


def test_restore_without_reissue_waits_for_resumed_trials(space, storage, tmp_path):
    s = searcher_for(space, storage, budget=1)
    issued = _half_run(s, n_issue=5, n_complete=3)
    ckpt = tmp_path / "searcher.pkl"
    s.save(str(ckpt))
    r = pickle.loads(pickle.dumps(s))  # how Tune revives the searcher from tuner.pkl
    r.reissue_unfinished = False
    r.restore(str(ckpt))
    fresh = [(tid, r.suggest(tid)) for tid in (new_id() for _ in range(3))]
    assert r.suggest(new_id()) is None
    assert {unit_of(c) for _, c in fresh}.isdisjoint({unit_of(c) for _, c in issued})
    for tid, cfg in issued[3:] + fresh:  # Tune resumes the two in-flight trials
        r.on_trial_complete(tid, {"target_uar": score(cfg)})
    assert r.suggest(new_id()) == Searcher.FINISHED
    (t,) = study_of(r).get_trials()
    assert t.value == pytest.approx(statistics.mean(score(c) for _, c in issued + fresh))


def test_restore_issues_again_a_unit_issued_after_tunes_last_snapshot(space, storage, tmp_path):
    s = searcher_for(space, storage, budget=1)
    as_tune_pickled_it = pickle.dumps(s)  # tuner.pkl: the searcher as the Tuner got it
    issued = _half_run(s, n_issue=5, n_complete=3)
    ckpt = tmp_path / "searcher.pkl"
    s.save(str(ckpt))  # Tune's snapshot: two units in flight
    late = [(tid, s.suggest(tid)) for tid in (new_id(),)]  # issued after it; the driver dies
    r = pickle.loads(as_tune_pickled_it)
    r.reissue_unfinished = False
    r.restore(str(ckpt))
    fresh = [(tid, r.suggest(tid)) for tid in (new_id() for _ in range(3))]
    assert r.suggest(new_id()) is None  # the two Tune resumes are left to it
    assert {unit_of(c) for _, c in fresh} >= {unit_of(c) for _, c in late}  # Tune never had it
    assert {unit_of(c) for _, c in fresh}.isdisjoint({unit_of(c) for _, c in issued})
    for tid, cfg in issued[3:] + fresh:  # Tune's resumed trials report under their old ids
        r.on_trial_complete(tid, {"target_uar": score(cfg)})
    assert r.suggest(new_id()) == Searcher.FINISHED and r.n_units_issued == 8
    (t,) = study_of(r).get_trials()
    assert t.value == pytest.approx(statistics.mean(score(c) for _, c in issued + fresh))


def test_a_searcher_state_of_an_older_version_is_refused(space, storage, tmp_path):
    old = tmp_path / "searcher-state-old.pkl"
    old.write_bytes(pickle.dumps({"version": 1, "configs": []}))
    with pytest.raises(ConfigError, match="older emodna-sweep"):
        searcher_for(space, storage).restore(str(old))
    s = searcher_for(space, storage)
    with pytest.raises(ConfigError, match="older emodna-sweep"):
        s.__setstate__({"_configs": {}, "_n_asked": 0})  # the old layout, as tuner.pkl has it


def test_options_are_keyword_only(space, storage):
    with pytest.raises(TypeError):
        ScenarioSearcher(space, space.scenarios(["EMODB", "CASIA"]), "name", storage)


def test_restore_adopts_a_config_asked_after_the_save(space, storage, tmp_path):
    s = searcher_for(space, storage, budget=2)
    _half_run(s, n_issue=8, n_complete=8)  # config 0 complete
    ckpt = tmp_path / "searcher.pkl"
    s.save(str(ckpt))
    s.suggest(new_id())  # config 1 asked after the save
    r = searcher_for(space, storage, budget=2)
    r.restore(str(ckpt))
    got = [(tid, r.suggest(tid)) for tid in (new_id() for _ in range(8))]
    assert {c["config_id"] for _, c in got} == {1}
    assert r.suggest(new_id()) is None
    for tid, cfg in got:
        r.on_trial_complete(tid, {"target_uar": score(cfg)})
    assert r.suggest(new_id()) == Searcher.FINISHED
    assert len(study_of(r).get_trials()) == 2


def test_two_objectives_per_task_use_nsga2(space, tmp_path):
    storage = str(tmp_path / "study.jsonl")  # journal file storage
    s = searcher_for(space, storage, budget=2, directions=["max", "max"])
    assert s.sampler_name == "nsga2" and not s.prune
    assert isinstance(s.study.sampler, optuna.samplers.NSGAIISampler)
    issued = [(tid, s.suggest(tid)) for tid in (new_id() for _ in range(16))]
    for tid, cfg in issued:
        s.on_trial_complete(tid, {"target_uar": score(cfg)})
    study = optuna.load_study(
        study_name="s",
        storage=optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(storage)),
    )
    for t in study.get_trials():
        mine = [c for _, c in issued if c["config_id"] == t.number]
        want = [
            statistics.mean(score(c) for c in mine if c["task"] == task)
            for task in ("arousal", "valence")
        ]
        assert t.values == pytest.approx(want)


def test_make_sampler_names():
    with pytest.raises(ConfigError) as err:
        make_sampler("tpee", 0, 1)
    msg = str(err.value)
    assert "did you mean 'tpe'" in msg and all(n in msg for n in SAMPLERS)
    assert isinstance(make_sampler("tpe", 0, 1), optuna.samplers.TPESampler)
    assert isinstance(make_sampler("random", 0, 1), optuna.samplers.RandomSampler)
    assert isinstance(make_sampler("nsga2", 0, 2), optuna.samplers.NSGAIISampler)
    assert isinstance(make_sampler("gp", 0, 1), optuna.samplers.GPSampler)
    try:
        assert isinstance(make_sampler("cmaes", 0, 1), optuna.samplers.CmaEsSampler)
    except ConfigError as exc:
        assert "pip install cmaes" in str(exc)
    with pytest.raises(ConfigError, match="grid needs"):
        make_sampler("grid", 0, 1)


def test_grid_sampler_visits_each_baseline_once(tmp_path):
    space = load_space(SPACES / "baselines.yaml")
    s = ScenarioSearcher(
        space,
        space.scenarios(["EMODB", "CASIA"]),
        storage=str(tmp_path / "g.db"),
        budget=50,
        prune=False,
    )
    assert s.budget == 8
    methods = set()
    while True:
        tid = new_id()
        cfg = s.suggest(tid)
        if not isinstance(cfg, dict):
            break
        methods.add(cfg["method"])
        s.on_trial_complete(tid, {"target_uar": 0.5})
    assert cfg == Searcher.FINISHED and methods == set(space.methods)


def test_enqueued_configs_come_first_and_are_not_enqueued_again_on_resume(storage):
    text = SPACE_TEXT.replace("method: emodna\n", "").replace(
        "params:\n",
        "enqueue:\n  - {method: functionals_lr}\n  - {method: emodna, tau_p: 0.5}\n"
        "params:\n  method: {type: categorical, choices: [emodna, functionals_lr]}\n",
    )
    space = parse_space(text, "enqueue.yaml")
    assert space.enqueue == [{"method": "functionals_lr"}, {"method": "emodna", "tau_p": 0.5}]
    s = searcher_for(space, storage, budget=3, prune=False)
    first = [s.suggest(new_id()) for _ in range(3 * 8)]
    by_config = {c["config_id"]: c for c in first}
    assert by_config[0]["method"] == "functionals_lr"
    assert by_config[1]["method"] == "emodna" and by_config[1]["tau_p"] == 0.5
    # the same storage opened again (a resumed sweep): the study still has exactly two enqueued
    again = searcher_for(space, storage, budget=3, prune=False)
    fixed = [t.system_attrs.get("fixed_params") for t in again.study.get_trials()]
    assert sum(f is not None for f in fixed) == 2


def test_enqueue_must_name_searched_parameters_and_valid_values():
    base = SPACE_TEXT + "enqueue:\n  - {X}\n"
    with pytest.raises(ConfigError, match="'lr' is not a searched parameter"):
        parse_space(base.replace("{X}", "{lr: 0.1}"), "e.yaml")
    with pytest.raises(ConfigError, match="outside"):
        parse_space(base.replace("{X}", "{tau_p: 5.0}"), "e.yaml")
    with pytest.raises(ConfigError, match="list parameter"):
        parse_space(base.replace("{X}", "{mmd_multipliers: [1, 2, 3]}"), "e.yaml")


def test_study_with_other_directions_is_refused(space, storage):
    searcher_for(space, storage)
    with pytest.raises(ConfigError, match="optimises"):
        searcher_for(space, storage, directions=["min"])


# ----------------------------------------------------------------------------- Ray Tune


@pytest.fixture(scope="module")
def ray_local():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def test_tuner_end_to_end(ray_local, tmp_path):
    from ray import tune
    from ray.tune import RunConfig, TuneConfig, Tuner

    space = load_space(SPACES / "smoke.yaml")
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    searcher = ScenarioSearcher(
        space,
        space.scenarios(["EMODB", "CASIA"]),
        study_name="it",
        storage=storage,
        budget=3,
        seed=0,
    )

    def trainable(config):
        # a cheap synthetic score of the config and the scenario, reported per epoch
        final = 0.6 + 0.1 * math.log10(config["tau_p"]) / 3 - 0.05 * math.log10(config["lr"] * 1e3)
        final += 0.03 if config["source"] == "EMODB" else -0.02
        for epoch in range(config["epochs"]):
            tune.report({"target_uar": final * (epoch + 1) / config["epochs"], "epoch": epoch})

    tuner = Tuner(
        trainable,
        tune_config=TuneConfig(
            search_alg=searcher,
            num_samples=-1,
            metric="target_uar",
            mode="max",
            max_concurrent_trials=2,
        ),
        run_config=RunConfig(storage_path=str(tmp_path / "ray"), name="it", verbose=0),
    )
    grid = tuner.fit()
    df = grid.get_dataframe()
    assert len(df) == 3 * 2
    study = optuna.load_study(study_name="it", storage=storage)
    trials = study.get_trials()
    assert len(trials) == 3 and all(t.state == TrialState.COMPLETE for t in trials)
    means = df.groupby("config/config_id")["target_uar"].mean()
    for t in trials:
        assert t.value == pytest.approx(means[t.number])
        assert len(t.user_attrs["unit_values"]) == 2


def test_waves_hold_back_a_configs_units_until_its_first_wave_is_in(space, storage):
    """EMODB<->CASIA x 2 tasks x 2 seeds = 8 units per config; wave 4: each config issues 4
    units spanning the (target, task) pairs, the rest only once those 4 have reported."""
    s = searcher_for(space, storage, budget=2, wave=4, prune=True)
    issued = []
    while isinstance(c := s.suggest(tid := new_id()), dict):
        issued.append((tid, c))
    assert [c["config_id"] for _, c in issued] == [0] * 4 + [1] * 4  # then it waits
    first = [(c["target"], c["task"]) for _, c in issued[:4]]
    assert sorted(first) == sorted(
        {(t, k) for t in ("EMODB", "CASIA") for k in ("arousal", "valence")}
    )
    for tid, c in issued[:3]:
        s.on_trial_complete(tid, result={"target_uar": score(c)})
    assert s.suggest(new_id()) is None  # config 0's wave has one unit out
    s.on_trial_complete(issued[3][0], result={"target_uar": score(issued[3][1])})
    nxt = s.suggest(new_id())
    assert nxt["config_id"] == 0 and (nxt["source"], nxt["task"], nxt["seed"]) not in {
        (c["source"], c["task"], c["seed"]) for _, c in issued[:4]
    }
    # without pruning a wave would only delay: it is off
    assert searcher_for(space, storage, study_name="np", wave=4, prune=False).wave is None
