"""Honest selection and ensembles from kept probabilities (sweep/validate.py), on a sweep built
by hand: four corpora, twelve scenarios, three configs whose target UAR and confidence are
set per scenario, so every choice below is worked out in the comments."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from emodna.metrics import scores
from sweep import validate as VA
from sweep.ranking import prepare_trials

CORPORA = ("A", "B", "C", "D")
Y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
# config -> (UAR on targets A and B, UAR on targets C and D, confidence of each prediction)
CONFIGS = {0: (0.625, 0.625, 0.6), 1: (1.0, 0.5, 0.9), 2: (0.5, 1.0, 0.8)}


def probs(uar: float, confidence: float) -> np.ndarray:
    """Predictions on Y with the given UAR: (1 - UAR) * 8 clips wrong, the first of each
    class (class 0 takes the odd one: 0.625 is 2 wrong of class 0 and 1 of class 1)."""
    total = round((1 - uar) * 8)
    wrong = (total - total // 2, total // 2)
    p = np.empty((8, 2))
    for i, y in enumerate(Y):
        pred = 1 - y if i % 4 < wrong[y] else y
        p[i, pred], p[i, 1 - pred] = confidence, 1 - confidence
    return p


@pytest.fixture(scope="module")
def ev() -> VA.Evidence:
    trials, preds = [], []
    for cid, (src, tgt) in itertools.product(CONFIGS, itertools.permutations(CORPORA, 2)):
        high, low, conf = CONFIGS[cid]
        uar = high if tgt in "AB" else low
        tid = f"c{cid}{src}{tgt}"
        trials.append(
            dict(trial_id=tid, config_id=cid, status="completed", source=src, target=tgt,
                 task="arousal", seed=0, method="emodna", target_uar=uar)
        )  # fmt: skip
        p = probs(uar, conf)
        frame = pd.DataFrame({"split": "target", "row": range(8), "label": Y, "p0": p[:, 0]})
        frame["p1"], frame["weight"] = p[:, 1], 1.0
        val = pd.DataFrame(
            {"split": "source_val", "row": [0, 1], "label": [0, 1], "p0": [0.7, 0.4],
             "p1": [0.3, 0.6], "weight": [1.0, 2.0]}
        )  # fmt: skip
        preds += [frame.assign(trial_id=tid), val.assign(trial_id=tid)]
    trials = prepare_trials(pd.DataFrame(trials))
    return VA.build_evidence(trials, pd.concat(preds, ignore_index=True))


def test_a_single_trial_scores_what_it_reported(ev):
    for r in ev.units.itertuples():
        assert ev.score([r.trial_id], r.scenario, 0) == pytest.approx(r.target_uar)
    assert ev.defaults == 0


def test_an_ensemble_scores_its_averaged_probabilities(ev):
    # on target A: config 1 is right everywhere at 0.9, config 2 wrong on clips 0, 1, 4, 5 at
    # 0.8; the mean there is 0.55 for the true class, so the pair is right everywhere
    assert ev.score(["c1BA", "c2BA"], "B-A-arousal", 0) == 1.0
    mean = (probs(1.0, 0.9) + probs(0.5, 0.8)) / 2
    assert scores(Y, mean.argmax(1), 2)["uar"] == 1.0
    rows = VA.rule_table(ev, ["neg_entropy+ens2"], ["B-A-arousal"], [])
    assert rows["configs"].iloc[0] == [1, 2] and rows["score"].iloc[0] == 1.0


def test_loto_ranks_on_the_scenarios_that_do_not_touch_the_target(ev):
    # target A: the six scenarios among B, C, D. Config 1 ranks 1st on the two with target B
    # and 3rd on the four with targets C, D (mean 14/6), config 2 the reverse (10/6), the
    # defaults 2nd everywhere (2): config 2 first, though it is the worst on A
    everything = sorted(ev.units["scenario"].unique())
    assert VA.loto_order(ev, "B-A-arousal", everything) == [2, 0, 1]
    # the most confident config, whatever the scenario
    assert VA.validator_order(ev, "B-A-arousal", "neg_entropy") == [1, 2, 0]


def test_the_honest_rule_for_a_target_is_judged_without_it(ev):
    s, choices = VA.honest(ev, rules=["loto", "neg_entropy"])
    chosen = choices.set_index("target")
    # Judged on the scenarios among B, C, D (target A left out):
    # - neg_entropy picks config 1: 1.0 on the 2 scenarios to B, 0.5 on the 4 to C, D: 2/3
    # - loto, nested (each scenario's target left out too): to B it ranks on C<->D, where
    #   config 2 wins (0.5 on B); to C it ranks on B<->D, where configs 1 and 2 tie in rank
    #   and mean, and the lower id, config 1, scores 0.5 on C; the same to D: mean 0.5
    assert chosen.loc["A", "rule"] == "neg_entropy"
    assert chosen.loc["A", "judged_score"] == pytest.approx(2 / 3)
    honest_a = s[(s["rule"] == "honest") & s["scenario"].str.endswith("-A-arousal")]
    assert len(honest_a) == 3 and (honest_a["score"] == 1.0).all()
    # applied to A without nesting, loto would have picked config 2: 0.5
    loto_a = s[(s["rule"] == "loto") & s["scenario"].str.endswith("-A-arousal")]
    assert (loto_a["score"] == 0.5).all()
    defaults = s[(s["rule"] == "defaults")]
    assert len(defaults) == 12 and (defaults["score"] == 0.625).all()


def test_tables_pair_rules_with_the_defaults(ev):
    s, _ = VA.honest(ev, rules=["loto", "neg_entropy"])
    summary = VA.rule_summary(ev, s).set_index("rule")
    # neg_entropy: config 1 everywhere, 1.0 on 6 scenarios and 0.5 on 6: mean 0.75
    assert summary.loc["neg_entropy", "score"] == pytest.approx(0.75)
    assert summary.loc["neg_entropy", "vs_defaults"] == pytest.approx(0.75 - 0.625)
    assert (summary.loc["neg_entropy", "wins"], summary.loc["neg_entropy", "losses"]) == (6, 6)
    assert summary.loc["oracle", "score"] == 1.0
    table = VA.validator_table(ev, s).set_index("rule")
    assert table.loc["neg_entropy", "regret"] == pytest.approx(0.25)
    assert table.loc["neg_entropy", "worst_regret"] == pytest.approx(0.5)
    # across the three configs of a scenario to A, confidence orders them 1, 2, 0 and UAR
    # 1, 0, 2: Spearman 0.5; to C, UAR orders 2, 0, 1: -0.5; the mean is 0
    assert table.loc["neg_entropy", "spearman"] == pytest.approx(0.0)
