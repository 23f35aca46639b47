"""Search-space files: the shipped ones parse, suggest() stays in range, errors name file+line+key."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import optuna
import pytest

from emodna.errors import ConfigError, EmodnaError
from emodna.labels import TASKS
from sweep.space import SearchSpace, load_space, parse_space

SPACES = Path(__file__).resolve().parents[1] / "search_spaces"
CORPORA4 = ["EMODB", "CASIA", "EMOVO", "RAVDESS"]
METHODS = ["functionals_lr", "source_only", "dan", "dann", "jan", "cdan", "bsp", "emodna"]

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _sample(space: SearchSpace, n: int = 30) -> list[dict]:
    study = optuna.create_study(
        sampler=optuna.samplers.RandomSampler(seed=0), direction=space.mode + "imize"
    )
    out = []
    for _ in range(n):
        trial = study.ask()
        out.append(space.suggest(trial))
        study.tell(trial, 0.0)
    return out


# ----------------------------------------------------------------------------- shipped files


def test_emodna_space_parses_and_suggests_in_range():
    space = load_space(SPACES / "emodna.yaml", known_methods=METHODS)
    assert space.method == "emodna" and space.metric == "target_uar" and space.mode == "max"
    assert space.epochs == 30 and space.seeds == [0, 1, 2] and space.fixed == {"batch_size": 64}
    assert set(space.params) == {"tau_p", "tau_s", "ema_lambda", "alpha_1", "mmd_multipliers", "lr"}
    for cfg in _sample(space):
        assert cfg["method"] == "emodna" and cfg["epochs"] == 30 and cfg["batch_size"] == 64
        for name in ("tau_p", "tau_s", "alpha_1", "lr", "ema_lambda"):
            p = space.params[name]
            assert isinstance(cfg[name], float) and p.low <= cfg[name] <= p.high
        mult = cfg["mmd_multipliers"]
        assert isinstance(mult, list) and len(mult) == 5
        assert all(isinstance(m, float) and 0.125 <= m <= 8.0 for m in mult)
        assert mult == sorted(mult)


def test_baselines_space_searches_the_method():
    space = load_space(SPACES / "baselines.yaml", known_methods=METHODS)
    assert space.methods == METHODS and space.sampler == "grid"
    assert space.grid() == {"method": METHODS}
    seen = {cfg["method"] for cfg in _sample(space, 60)}
    assert seen == set(METHODS)


def test_transfer_space_runs_the_defaults_and_classical_candidates_first():
    from emodna.config import TrainConfig

    space = load_space(SPACES / "transfer.yaml", known_methods=METHODS)
    assert space.epochs == 5 and space.seeds == [0] and "method" not in space.params
    assert space.candidate_names() == ["defaults", "mfcc_lr", "egemaps_lr"]
    # candidate 0 is Emo-DNA at TrainConfig's defaults, the others the class-balanced
    # logistic regressions; the classical ones add the eGeMAPS functionals to extract
    assert TrainConfig.from_dict(space.candidate(0)).to_dict() == TrainConfig(epochs=5).to_dict()
    egemaps = TrainConfig.from_dict(space.candidate(2))
    assert (egemaps.method, egemaps.functionals, egemaps.class_balance) == (
        "functionals_lr",
        "egemaps",
        "loss",
    )
    assert space.methods == ["emodna", "functionals_lr"]
    assert space.feature_sets() == ["mfcc", "egemaps"]
    seeds = load_space(SPACES / "transfer_seeds.yaml", known_methods=METHODS)
    assert seeds.seeds == [0, 1, 2]
    assert (seeds.params, seeds.candidates) == (space.params, space.candidates)


def test_a_candidate_that_is_no_config_is_refused_at_its_line():
    text = "method: emodna\ncandidates:\n  - {name: a}\n  - {name: b, bn: sideways}\n"
    with pytest.raises(ConfigError, match=r"c.yaml: line 4: key 'candidates.1': .*bn"):
        parse_space(text, "c.yaml")
    with pytest.raises(ConfigError, match="candidate name 'a' is used twice"):
        parse_space("method: emodna\ncandidates: [{name: a}, {name: a}]\n", "c.yaml")


def test_gpus_per_trial_is_a_space_key_with_cpu_trials_by_default():
    text = (SPACES / "smoke.yaml").read_text()
    assert parse_space(text, "smoke.yaml").gpus_per_trial == 0.0
    assert parse_space(text + "gpus_per_trial: 0.25\n", "gpu.yaml").gpus_per_trial == 0.25


def test_smoke_space_is_small():
    space = load_space(SPACES / "smoke.yaml", known_methods=METHODS)
    assert space.epochs == 2 and space.seeds == [0] and 1 <= len(space.params) <= 3
    scenarios = space.scenarios(CORPORA4)
    assert scenarios == [
        dict(source="EMODB", target="CASIA", task="arousal"),
        dict(source="CASIA", target="EMODB", task="arousal"),
    ]


def test_int_and_categorical_types():
    space = parse_space(
        "method: emodna\n"
        "params:\n"
        "  layers: {type: int, low: 1, high: 4}\n"
        "  width: {type: int, low: 16, high: 256, log: true}\n"
        "  hop: {type: float, low: 0.0, high: 1.0, step: 0.25}\n"
        "  act: {type: categorical, choices: [relu, gelu]}\n"
        "  u: {type: list, length: 3, low: -1.0, high: 1.0, sorted: false}\n"
    )
    for cfg in _sample(space):
        assert type(cfg["layers"]) is int and 1 <= cfg["layers"] <= 4
        assert type(cfg["width"]) is int and 16 <= cfg["width"] <= 256
        assert cfg["hop"] in (0.0, 0.25, 0.5, 0.75, 1.0)
        assert cfg["act"] in ("relu", "gelu")
        assert len(cfg["u"]) == 3 and all(-1 <= x <= 1 for x in cfg["u"])


def test_config_from_params_matches_suggest():
    space = load_space(SPACES / "emodna.yaml")
    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    cfg = space.suggest(trial)
    assert space.config_from_params(trial.params) == cfg


# ----------------------------------------------------------------------------- scenarios


def test_scenarios_all_corpora_both_tasks():
    space = load_space(SPACES / "emodna.yaml")
    scenarios = space.scenarios(CORPORA4)
    assert len(scenarios) == 4 * 3 * 2 == 24
    assert all(s["source"] != s["target"] for s in scenarios)
    assert {s["task"] for s in scenarios} == set(TASKS)
    assert len({(s["source"], s["target"], s["task"]) for s in scenarios}) == 24


def test_scenarios_listed_corpora_case_insensitive():
    space = parse_space(
        "method: emodna\nscenarios:\n  corpora: [emodb, CASIA]\n  tasks: [valence]\n"
    )
    assert space.scenarios(CORPORA4) == [
        dict(source="EMODB", target="CASIA", task="valence"),
        dict(source="CASIA", target="EMODB", task="valence"),
    ]


def test_scenarios_absent_corpus_names_it_and_lists_present(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("method: emodna\nscenarios:\n  corpora:\n    - EMODB\n    - SAVEE\n")
    space = load_space(path)
    with pytest.raises(ConfigError) as err:
        space.scenarios(CORPORA4)
    msg = str(err.value)
    assert str(path) in msg and "line 5" in msg and "SAVEE" in msg
    for c in CORPORA4:
        assert c in msg


def test_scenarios_list_with_absent_corpus(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(
        "method: emodna\nscenarios:\n  list:\n"
        "    - {source: EMODB, target: CASIA, task: arousal}\n"
        "    - {source: EMODB, target: SAVEE, task: arousal}\n"
    )
    with pytest.raises(ConfigError, match=r"line 5: key 'scenarios\.list\.1\.target'.*SAVEE"):
        load_space(path).scenarios(CORPORA4)


# ----------------------------------------------------------------------------- validation

GOOD_HEAD = "method: emodna\nmetric: target_uar\nmode: max\n"

BAD = [
    # (id, text, line, key, words that must be in the message)
    ("unknown top-level key", GOOD_HEAD + "epoks: 3\n", 4, "epoks", ["did you mean 'epochs'"]),
    (
        "negative GPUs per trial",
        GOOD_HEAD + "gpus_per_trial: -0.5\n",
        4,
        "gpus_per_trial",
        ["expected 0.0 or more, got -0.5", "write e.g. gpus_per_trial: 0.25"],
    ),
    (
        "unknown param field",
        GOOD_HEAD + "params:\n  lr:\n    type: float\n    low: 0.001\n    hihg: 0.1\n",
        8,
        "params.lr.hihg",
        ["did you mean 'high'"],
    ),
    (
        "empty range",
        GOOD_HEAD + "params:\n  lr: {type: float, low: 0.1, high: 0.01}\n",
        5,
        "params.lr.low",
        ["empty range", "low=0.1 >= high=0.01"],
    ),
    (
        "equal bounds",
        GOOD_HEAD + "params:\n  k:\n    type: int\n    low: 3\n    high: 3\n",
        7,
        "params.k.low",
        ["empty range"],
    ),
    (
        "log with low <= 0",
        GOOD_HEAD + "params:\n  lr:\n    type: float\n    log: true\n    low: 0.0\n    high: 1.0\n",
        8,
        "params.lr.low",
        ["log scale needs low > 0"],
    ),
    (
        "missing type",
        GOOD_HEAD + "fixed:\n  batch_size: 64\nparams:\n  tau_p: {low: 0.1, high: 1.0}\n",
        7,
        "params.tau_p",
        ["missing field 'type'", "float, int, categorical, list"],
    ),
    (
        "unknown type",
        GOOD_HEAD + "params:\n  tau_p: {type: flaot, low: 0.1, high: 1.0}\n",
        5,
        "params.tau_p.type",
        ["unknown type 'flaot'", "did you mean 'float'"],
    ),
    (
        "field of another type",
        GOOD_HEAD + "params:\n  tau_p: {type: float, low: 0.1, high: 1.0, choices: [1]}\n",
        5,
        "params.tau_p.choices",
        ["does not apply to type float"],
    ),
    (
        "list without length",
        GOOD_HEAD + "params:\n  m: {type: list, low: 0.1, high: 1.0}\n",
        5,
        "params.m",
        ["needs 'length'"],
    ),
    (
        "bad mode",
        "method: emodna\nmode: maximum\n",
        2,
        "mode",
        ["'max' or 'min'"],
    ),
    (
        "unknown task",
        GOOD_HEAD + "scenarios:\n  corpora: all\n  tasks: [arousal, valance]\n",
        6,
        "scenarios.tasks.1",
        ["did you mean 'valence'"],
    ),
    (
        "fixed and searched",
        GOOD_HEAD + "fixed:\n  lr: 0.001\nparams:\n  lr: {type: float, low: 0.0001, high: 0.01}\n",
        5,
        "fixed.lr",
        ["both fixed and searched"],
    ),
    (
        "duplicate key",
        GOOD_HEAD
        + "params:\n  lr: {type: float, low: 0.0001, high: 0.01}\n  lr: {type: float, low: 0.1, high: 1.0}\n",
        6,
        "params.lr",
        ["appears twice"],
    ),
    (
        "reserved key",
        GOOD_HEAD + "fixed:\n  seed: 3\n",
        5,
        "fixed.seed",
        ["set by the sweep"],
    ),
    (
        "a seed twice, at its own line",
        GOOD_HEAD + "seeds:\n  - 0\n  - 1\n  - 0\n",
        7,
        "seeds.2",
        ["seed 0 is listed twice", "list each seed once"],
    ),
    (
        "a bool is not an integer",
        GOOD_HEAD + "epochs: yes\n",
        4,
        "epochs",
        ["expected an integer, got True", "epochs: 30"],
    ),
    (
        "a corpus twice in another case",
        GOOD_HEAD + "scenarios:\n  corpora: [EMODB, CASIA, emodb]\n",
        5,
        "scenarios.corpora.2",
        ["corpus 'emodb' is listed twice"],
    ),
    (
        "list and tasks together",
        GOOD_HEAD
        + "scenarios:\n  tasks: [arousal]\n  list:\n    - {source: A, target: B, task: arousal}\n",
        5,
        "scenarios.tasks",
        ["'list' cannot be combined"],
    ),
    (
        "same source and target",
        GOOD_HEAD + "scenarios:\n  list:\n    - {source: EMODB, target: emodb, task: arousal}\n",
        6,
        "scenarios.list.0.target",
        ["source and target are both EMODB"],
    ),
    (
        "a choice twice",
        GOOD_HEAD
        + "params:\n  bn:\n    type: categorical\n    choices:\n      - joint\n      - joint\n",
        9,
        "params.bn.choices.1",
        ["choice 'joint' is listed twice"],
    ),
    (
        "a low that is not a number",
        GOOD_HEAD + "params:\n  lr: {type: float, low: small, high: 1.0}\n",
        5,
        "params.lr.low",
        ["expected a number, got 'small'", "e.g. low:"],
    ),
]


@pytest.mark.parametrize("text,line,key,words", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_validation_errors_name_file_line_and_key(tmp_path, text, line, key, words):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_space(path)
    msg = str(err.value)
    assert isinstance(err.value, EmodnaError)
    assert "\n" not in msg
    assert msg.startswith(f"{path}: line {line}: key '{key}'"), msg
    for w in words:
        assert w in msg, msg


def test_yaml_syntax_error_reports_yamls_line(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(GOOD_HEAD + "params:\n  lr: {type: float, low: 0.1, high: 1.0\n  tau_p: 3\n")
    with pytest.raises(ConfigError) as err:
        load_space(path)
    msg = str(err.value)
    m = re.match(rf"{re.escape(str(path))}: line (\d+): YAML syntax error", msg)
    assert m, msg
    assert int(m.group(1)) in (5, 6)  # the flow mapping opened on 5 is still open on 6
    assert "\n" not in msg


def test_yaml_syntax_error_bad_indentation(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("method: emodna\nparams:\n  lr: {type: float, low: 0.1, high: 1.0}\n bad: 1\n")
    with pytest.raises(ConfigError, match=r"space\.yaml: line 4: YAML syntax error"):
        load_space(path)


def test_known_methods_hook(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("# a comment\nmethod: emodan\n")
    assert load_space(path).method == "emodan"  # not checked without known_methods
    with pytest.raises(ConfigError) as err:
        load_space(path, known_methods=METHODS)
    msg = str(err.value)
    assert msg.startswith(f"{path}: line 2: key 'method'") and "did you mean 'emodna'" in msg

    path.write_text("params:\n  method: {type: categorical, choices: [dan, jann]}\n")
    with pytest.raises(ConfigError, match=r"line 2: key 'params\.method\.choices\.1'.*'jann'"):
        load_space(path, known_methods=METHODS)


def test_missing_method_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"line 1: key 'method': missing key 'method'"):
        parse_space("metric: target_uar\n", "x.yaml")
    with pytest.raises(ConfigError, match="no such search-space file"):
        load_space(tmp_path / "nope.yaml")


def test_unknown_hyperparameter_names_key_line_and_close_match(tmp_path):
    from emodna.config import TrainConfig

    known = [f.name for f in dataclasses.fields(TrainConfig)]
    path = tmp_path / "typo.yaml"
    path.write_text("method: emodna\nparams:\n  tau_pp: {type: float, low: 0.01, high: 1.0}\n")
    with pytest.raises(
        ConfigError,
        match=r"typo.yaml: line 3.*unknown hyperparameter 'tau_pp'.*did you mean 'tau_p'",
    ):
        load_space(path, known_params=known)
    path.write_text("method: emodna\nfixed:\n  batch_sise: 32\n")
    with pytest.raises(ConfigError, match=r"line 3.*'batch_sise'.*'batch_size'"):
        load_space(path, known_params=known)
    shipped = sorted(SPACES.glob("*.yaml"))
    assert {p.stem for p in shipped} >= {"emodna", "baselines", "smoke", "laptop"}
    for path in shipped:
        load_space(path, known_params=known)
