"""sweep.summarize and its parts (sweep.ranking, sweep.stats, sweep.export, sweep.report):
ranking (hand-computed), exports, the report (sweep.stats: tests/test_stats.py)."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import optuna
import pandas as pd
import pytest
import torch
import yaml
from matplotlib.image import imread

from emodna.config import TrainConfig
from emodna.ensemble import is_ensemble, read_members
from emodna.train import Domain, fit
from emodna.validators import PREDICTIONS
from sweep import ranking as R
from sweep import selection as SEL
from sweep import summarize as S

optuna.logging.set_verbosity(optuna.logging.WARNING)
A, B, C = "EMODB-CASIA-arousal", "CASIA-EMODB-arousal", "EMODB-EMOVO-arousal"
SCEN = {A: ("EMODB", "CASIA"), B: ("CASIA", "EMODB"), C: ("EMODB", "EMOVO")}

# config -> scenario -> metric per seed (0, 1); val acc and entropy per config
HAND = {
    0: {A: (0.60, 0.70), B: (0.50, 0.50), C: (0.70, 0.70)},  # complete
    1: {A: (0.64, 0.66), B: (0.55, 0.55), C: (0.60, 0.60)},  # complete, ties cfg 0 on A
    2: {A: (0.40, 0.40)},  # pruned after 2 units
    3: {A: (0.70, 0.70), B: (0.60, 0.60)},  # incomplete: scenario C missing
}
VAL_ACC = {0: 0.8, 1: 0.9, 2: 0.95, 3: 0.7}
ENTROPY = {0: 0.3, 1: 0.5, 2: 0.6, 3: 0.2}


def hand_trials() -> pd.DataFrame:
    rows = []
    for cid, scen in HAND.items():
        for name, values in scen.items():
            for seed, v in enumerate(values):
                src, tgt = SCEN[name]
                rows.append(
                    dict(
                        trial_id=f"t{cid}{src[:2]}{tgt[:2]}{seed}",
                        config_id=cid,
                        status="completed",
                        source=src,
                        target=tgt,
                        task="arousal",
                        seed=seed,
                        method="emodna",
                        hp_lr=0.001 * (cid + 1),
                        hp_mmd_multipliers=json.dumps([0.5, 1.0 + cid]),
                        hp_epochs=2,
                        target_uar=v,
                        target_war=v + 0.01,
                        target_f1_pos=v - 0.01,
                        target_f1_macro=v - 0.02,
                        source_val_acc=VAL_ACC[cid],
                        target_entropy=ENTROPY[cid],
                        error="",
                    )
                )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- ranking


def test_ranking_matches_hand_computed_ranks():
    r = R.rank_configs(
        hand_trials(), "target_uar", "max", states={2: "pruned"}, pruned_after={2: 2}
    )
    # per scenario: A: cfg3 1, cfg0/cfg1 tie 2.5, cfg2 4;  B: cfg3 1, cfg1 2, cfg0 3;  C: cfg0 1, cfg1 2
    # cfg0 and cfg1 tie on mean rank 6.5/3; cfg0 wins on the mean metric (0.6167 > 0.6)
    assert list(r["config_id"]) == [0, 1, 3, 2]
    assert list(r["rank"]) == [1, 2, 3, 4]
    assert list(r["status"]) == ["complete", "complete", "incomplete", "pruned"]
    got = r.set_index("config_id")
    assert got.loc[0, "mean_rank"] == pytest.approx((2.5 + 3 + 1) / 3)
    assert got.loc[1, "mean_rank"] == pytest.approx((2.5 + 2 + 2) / 3)
    assert got.loc[3, "mean_rank"] == pytest.approx(1.0)
    assert got.loc[2, "mean_rank"] == pytest.approx(4.0)
    assert got.loc[0, "mean_metric"] == pytest.approx((0.65 + 0.5 + 0.7) / 3)
    assert got.loc[1, "mean_metric"] == pytest.approx((0.65 + 0.55 + 0.6) / 3)
    assert got.loc[0, "worst_scenario"] == B and got.loc[0, "worst_metric"] == pytest.approx(0.5)
    assert list(got.loc[[0, 1, 3, 2], "n_scenarios"]) == [3, 3, 2, 1]
    assert list(got.loc[[0, 1, 3, 2], "n_units"]) == [6, 6, 4, 2]
    assert set(got["n_units_expected"]) == {6}
    assert got.loc[2, "note"] == "pruned after 2 units"
    assert "2 of 6 units missing" in got.loc[3, "note"]
    assert got.loc[0, "hp_lr"] == pytest.approx(0.001)
    # paired with the leader (config 0: A .65, B .50, C .70) on the scenarios both cover;
    # config 3 beats it on both of its scenarios though it ranks after it (C is missing)
    assert math.isnan(got.loc[0, "vs_leader_diff"]) and got.loc[0, "vs_leader_shared"] == 0
    assert got.loc[1, "vs_leader_diff"] == pytest.approx((0 + 0.05 - 0.10) / 3)
    assert got.loc[3, "vs_leader_diff"] == pytest.approx((0.05 + 0.10) / 2)
    assert got.loc[2, "vs_leader_diff"] == pytest.approx(0.40 - 0.65)
    assert list(got.loc[[1, 3, 2], "vs_leader_better"]) == [1, 2, 0]
    assert list(got.loc[[1, 3, 2], "vs_leader_shared"]) == [3, 2, 1]


def test_ranking_mode_min_reverses_and_errors_count_as_missing():
    t = hand_trials()
    t.loc[(t["config_id"] == 1) & (t["source"] == "CASIA") & (t["seed"] == 1), "status"] = "error"
    r = R.rank_configs(t, "target_uar", "min")
    got = r.set_index("config_id")
    assert got.loc[2, "mean_rank"] == pytest.approx(1.0)  # lowest on A
    assert got.loc[1, "status"] == "incomplete"  # one unit failed
    assert "1 failed" in got.loc[1, "note"]
    assert list(r["config_id"])[0] == 0  # the only complete config comes first


def test_rank_matrix_averages_ties_and_skips_missing():
    m = pd.DataFrame({"s": [0.5, 0.5, np.nan, 0.9]}, index=[0, 1, 2, 3])
    r = R.rank_matrix(m, "max")
    assert list(r["s"].fillna(-1)) == [2.5, 2.5, -1, 1.0]


# ----------------------------------------------------------------------------- statistics


def test_friedman_on_the_complete_configs_of_a_sweep(tmp_path):
    t = hand_trials()
    # two more complete configs so that the test applies (k = 4 complete configs)
    extra = t[t["config_id"] == 0].copy()
    for cid, shift in ((4, -0.03), (5, 0.02)):
        e = extra.copy()
        e["config_id"] = cid
        e["trial_id"] = e["trial_id"] + f"x{cid}"
        e["target_uar"] = e["target_uar"] + shift * np.arange(len(e))
        t = pd.concat([t, e])
    t.to_parquet(tmp_path / "trials.parquet", index=False)
    s = S.summarize(tmp_path, "target_uar", "max", export=False, plots=False)
    complete = list(s.ranking.loc[s.ranking["status"] == "complete", "config_id"])
    assert sorted(complete) == [0, 1, 4, 5]
    # the verdict is at the level asked for: p below 1 differs at alpha 1, not at 1e-9
    assert 0 < s.friedman["pvalue"] < 1
    for alpha, verdict in ((1.0, "the configs differ at α = 1"), (1e-9, "no significant")):
        again = S.summarize(tmp_path, "target_uar", "max", export=False, plots=False, alpha=alpha)
        assert verdict in again.markdown
    # mean over seeds, by hand: A: 0.650, 0.650, 0.635, 0.660; B: 0.500, 0.550, 0.425, 0.550;
    # C: 0.700, 0.600, 0.565, 0.790 (configs 0, 1, 4, 5); 0.64 + 0.66 and 0.60 + 0.70 tie on A.
    # Ranks: A (2.5, 2.5, 4, 1), B (3, 1.5, 4, 1.5), C (2, 3, 4, 1): R = (7.5, 7, 12, 3.5);
    # 12 / (3 * 4 * 5) * 261.5 - 3 * 3 * 5 = 7.3, two ties of 2: C = 1 - 12 / 180; 7.3 / C
    assert s.friedman["statistic"] == pytest.approx(7.3 / (1 - 12 / 180))
    assert sorted(s.friedman["mean_ranks"]) == pytest.approx([3.5 / 3, 7 / 3, 7.5 / 3, 4])
    assert s.friedman["k"] == 4 and s.friedman["n"] == 3
    # Demsar's q_0.05 for k = 4 is 2.569: CD = 2.569 * sqrt(4 * 5 / (6 * 3)) = 2.708
    assert s.cd["cd"] == pytest.approx(2.708, abs=1e-3)


# ----------------------------------------------------------------------------- honest selection


def test_honest_selection_loto_and_label_free_signals():
    t = R.prepare_trials(hand_trials())
    ranking = R.rank_configs(t, "target_uar", "max", states={2: "pruned"})
    scores = R.pick_best_seed(R.scenario_scores(t, "target_uar"), "max")
    per, loto = SEL.honest_selection(t, scores, ranking, "target_uar", "max", {2: "pruned"})
    per = per.set_index("scenario")
    # oracle: A cfg3 .70, B cfg3 .60, C cfg0 .70
    assert dict(per["oracle_config"]) == {A: 3, B: 3, C: 0}
    # LOTO ranks on the scenarios that touch the held-out corpus neither way:
    # held-out CASIA (A): only C, where cfg0 (.70) beats cfg1 (.60)
    # held-out EMODB (B): A and C both have EMODB as their source: nothing to rank on
    # held-out EMOVO (C): on A, B cfg3 is best (1.0) but never ran C -> cfg1 (2.25 < 2.75)
    assert per.loc[A, "loto_config"] == 0 and per.loc[C, "loto_config"] == 1
    assert pd.isna(per.loc[B, "loto_config"]) and math.isnan(per.loc[B, "loto"])
    assert per.loc[C, "loto"] == pytest.approx(0.60)
    lo = loto.set_index("held_out_target")
    assert lo.loc["CASIA", "gap"] == pytest.approx(0.65 - 0.70)
    assert math.isnan(lo.loc["EMODB", "gap"])
    # label-free: highest source val acc, lowest target entropy per scenario
    assert dict(per["val_acc_config"]) == {A: 2, B: 1, C: 1}
    assert dict(per["entropy_config"]) == {A: 3, B: 3, C: 0}
    table = SEL.selection_table(per.reset_index()).set_index("task")
    assert table.loc["arousal", "oracle"] == pytest.approx((0.70 + 0.60 + 0.70) / 3)
    assert table.loc["arousal", "loto_gap"] == pytest.approx(((0.65 - 0.7) + (0.6 - 0.7)) / 2)
    assert table.loc["arousal", "loto_n"] == 2
    assert table.loc["arousal", "val_acc"] == pytest.approx((0.40 + 0.55 + 0.60) / 3)
    assert table.loc["arousal", "overall"] == pytest.approx((0.65 + 0.5 + 0.7) / 3)


# ----------------------------------------------------------------------------- a real (tiny) sweep


def _domain(rng, n: int, name: str, shift: float) -> Domain:
    y = rng.integers(0, 2, n)
    x = (rng.normal(size=(n, 40, 16)) + shift + 0.8 * y[:, None, None]).astype(np.float32)
    return Domain(x, y.astype(np.int64), name)


@pytest.fixture(scope="module")
def domains():
    rng = np.random.default_rng(0)
    return {"EMODB": _domain(rng, 40, "EMODB", 0.0), "CASIA": _domain(rng, 40, "CASIA", 0.3)}


def run_unit(
    folder, domains, cid: int, hp: dict, source: str, target: str, seed: int, trial_id: str
) -> dict:
    """What sweep/trainable.py + run.py's TrialTable do for one unit, without Ray."""
    cfg = TrainConfig.from_dict(
        {**hp, "source": source, "target": target, "task": "arousal", "seed": seed}
    )
    trial_dir = folder / f"{cid:04d}-{source}-{target}-arousal-s{seed}-{trial_id}"
    final = fit(
        cfg,
        domains[source],
        domains[target],
        checkpoint_dir=trial_dir / "checkpoint_000000",
        predictions_path=trial_dir / PREDICTIONS,
    )
    row = dict(
        trial_id=trial_id,
        config_id=cid,
        status="completed",
        source=source,
        target=target,
        task="arousal",
        seed=seed,
        method=cfg.method,
    )
    row.update(
        {
            f"hp_{k}": json.dumps(v) if isinstance(v, list) else v
            for k, v in sorted(hp.items())
            if k != "method"
        }
    )
    row.update({k: v for k, v in final.items() if isinstance(v, int | float)})
    row.update(epochs_run=final["epoch"], wall_s=1.0, error="", trial_dir=trial_dir.name)
    return row


CONFIGS = {
    0: dict(epochs=1, batch_size=16, lr=1e-3, tau_p=0.05, mmd_multipliers=[0.5, 1.0, 2.0]),
    1: dict(epochs=1, batch_size=16, lr=3e-3, tau_p=0.2, mmd_multipliers=[0.25, 1.0, 4.0]),
    2: dict(epochs=1, batch_size=16, lr=3e-4, tau_p=0.01, mmd_multipliers=[0.5, 2.0, 8.0]),
}


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory, domains):
    """A smoke-like sweep folder: 3 configs x 2 scenarios x 1 seed, real fits and checkpoints,
    an Optuna study where config 2 was pruned after one unit."""
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("runs") / "tiny"
    folder.mkdir()
    rows = []
    n = 0
    for cid, hp in CONFIGS.items():
        pairs = [("EMODB", "CASIA"), ("CASIA", "EMODB")] if cid != 2 else [("EMODB", "CASIA")]
        for src, tgt in pairs:
            rows.append(run_unit(folder, domains, cid, hp, src, tgt, 0, f"{n:04x}beef"))
            n += 1
    pd.DataFrame(rows).to_parquet(folder / "trials.parquet", index=False)
    study = optuna.create_study(
        study_name="tiny", storage=f"sqlite:///{folder / 'study.db'}", direction="maximize"
    )
    for cid in CONFIGS:
        trial = study.ask()
        trial.set_user_attr("n_units", 2)
        if cid == 2:
            trial.set_user_attr("pruned_after", 1)
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, 0.5)
    (folder / "sweep.json").write_text(json.dumps({"budget": 3, "storage": None, "space": None}))
    return folder


@pytest.fixture(scope="module")
def summary(sweep_dir):
    return S.summarize(sweep_dir)


def test_summary_writes_report_ranking_exports_and_plots(summary, sweep_dir):
    assert not summary.partial
    md = (sweep_dir / "summary.md").read_text()
    for needle in (
        "## Ranking across scenarios",
        "## Choosing without the target's labels",
        "how well each rule tracks the target's labels",
        "| neg_entropy, ensemble of 3 |",
        "## Honest selection",
        "Table 2: arousal",
        "**pruned** (pruned after 1 unit)",
        "| vs #1 |",
        "plots/heatmap.png",
        "critical_difference.png",
    ):
        assert needle in md
    assert "Partial summary" not in md
    ranking = pd.read_parquet(sweep_dir / "ranking.parquet")
    assert len(ranking) == 3 and ranking["status"].iloc[-1] == "pruned"
    best = sweep_dir / "best"
    assert sorted(p.name for p in best.glob("*.yaml")) == sorted(
        [
            "EMODB-CASIA-arousal.yaml",
            "CASIA-EMODB-arousal.yaml",
            "EMODB-CASIA-arousal-honest.yaml",
            "CASIA-EMODB-arousal-honest.yaml",
            "overall-arousal.yaml",
        ]
    )
    assert sorted(p.name for p in best.glob("*.pt")) == sorted(
        ["EMODB-CASIA-arousal.pt", "CASIA-EMODB-arousal.pt"]
    )
    # every trial's kept probabilities, gathered into one file beside trials.parquet
    gathered = pd.read_parquet(sweep_dir / "predictions.parquet")
    assert set(gathered["trial_id"]) == set(
        pd.read_parquet(sweep_dir / "trials.parquet")["trial_id"]
    )
    for name in ("heatmap", "hyperparameters", "critical_difference"):
        img = imread(sweep_dir / "plots" / f"{name}.png")
        assert img.ndim == 3 and img.shape[0] > 50 and img.shape[1] > 50


def test_exported_yaml_is_a_train_config_with_its_origin(summary, sweep_dir):
    for path in (sweep_dir / "best").glob("*.yaml"):
        if is_ensemble(path):
            continue
        cfg = TrainConfig.from_yaml(path)
        raw = yaml.safe_load(path.read_text())
        origin = raw["origin"]
        assert set(raw) - {"origin"} == set(TrainConfig().to_dict())
        assert origin["sweep"] == str(sweep_dir.resolve())
        assert origin["config_id"] in CONFIGS
        assert cfg.mmd_multipliers == CONFIGS[origin["config_id"]]["mmd_multipliers"]
        assert origin["features"]["length"] == {"CASIA": 88000, "EMODB": 96000}[cfg.target]
        assert origin["checkpoint"] == path.with_suffix(".pt").name
        # the checkpoint beside it is the trial's, for this very scenario and seed
        state = torch.load(path.with_suffix(".pt"), weights_only=True)
        assert (state["config"]["source"], state["config"]["target"], state["config"]["seed"]) == (
            cfg.source,
            cfg.target,
            cfg.seed,
        )
        # `emodna train --config` overrides on top of it
        assert TrainConfig.from_yaml(path, task="valence", epochs=None).task == "valence"


def test_honest_and_overall_exports_are_ensembles_predict_and_train_read(summary, sweep_dir):
    from emodna.predict import load_ensemble

    # two corpora: no scenario leaves a target out, so the fallback rule (entropy, ensemble
    # of 3) chose among the configs that ran the scenario (2 was pruned after running it)
    honest = sweep_dir / "best" / "EMODB-CASIA-arousal-honest.yaml"
    origin = yaml.safe_load(honest.read_text())["origin"]
    assert origin["selected_by"].startswith("neg_entropy+ens3")
    assert sorted(origin["configs"]) == [0, 1, 2]
    members = read_members(honest)
    assert [m.config.source for m in members] == ["EMODB"] * 3
    assert all(m.checkpoint is not None and m.checkpoint.is_file() for m in members)
    loaded = load_ensemble(honest)
    assert (loaded.task, len(loaded.members)) == ("arousal", 3)
    # the score the summary gives it is the average of the members' kept probabilities
    rows = summary.validation["scores"]
    got = rows[(rows["rule"] == "neg_entropy+ens3") & (rows["scenario"] == "EMODB-CASIA-arousal")]
    assert got["score"].iloc[0] == pytest.approx(origin["score_mean_over_seeds"])
    # for a corpus the sweep never saw: the best complete config by mean rank, no checkpoint
    overall = sweep_dir / "best" / "overall-arousal.yaml"
    (member,) = read_members(overall, source="EMOVO", target="RAVDESS")
    complete = summary.ranking[summary.ranking["status"] == "complete"]
    assert yaml.safe_load(overall.read_text())["origin"]["configs"] == [
        int(complete["config_id"].iloc[0])
    ]
    assert (member.config.source, member.config.target, member.checkpoint) == (
        "EMOVO",
        "RAVDESS",
        None,
    )
    assert "--source SOURCE --target TARGET" in overall.read_text()


def test_best_per_scenario_is_the_oracle(summary):
    for _, b in summary.best.iterrows():
        sub = summary.scores[summary.scores["scenario"] == b["scenario"]]
        assert b["target_uar"] == pytest.approx(sub["target_uar"].max())


def test_train_from_exported_yaml_reproduces_the_metric(summary, sweep_dir, domains):
    """`emodna train --config best/X.yaml` trains exactly that trial again (CPU, same seed)."""
    path = sweep_dir / "best" / "EMODB-CASIA-arousal.yaml"
    cfg = TrainConfig.from_yaml(path)
    origin = yaml.safe_load(path.read_text())["origin"]
    final = fit(cfg, domains[cfg.source], domains[cfg.target])
    expected = origin["scores"]["target_uar"]["per_seed"][cfg.seed]
    assert final["target_uar"] == pytest.approx(expected, abs=1e-9)
    assert final["target_uar"] == pytest.approx(origin["scores"]["target_uar"]["mean"], abs=0.05)


def test_partial_sweep_is_marked(sweep_dir, tmp_path):
    import shutil

    part = tmp_path / "tiny"
    shutil.copytree(sweep_dir, part, ignore=shutil.ignore_patterns("best", "plots"))
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{part / 'study.db'}")
    study.ask().set_user_attr("n_units", 2)  # a config still running
    t = pd.read_parquet(part / "trials.parquet")
    t = t[~((t["config_id"] == 1) & (t["source"] == "CASIA"))]  # config 1: a unit not in yet
    t.to_parquet(part / "trials.parquet", index=False)
    s = S.summarize(part, plots=False)
    text = " ".join(s.partial)
    assert "1 config(s) still running (3)" in text
    assert "units not yet in" in text
    md = (part / "summary.md").read_text()
    assert "Partial summary" in md
    overall = yaml.safe_load((part / "best" / "overall-arousal.yaml").read_text())
    assert overall["origin"]["partial_sweep"] is True
    status = s.ranking.set_index("config_id")["status"]
    assert status[1] == "incomplete" and status[2] == "pruned"


def test_summary_without_study_or_checkpoints(tmp_path):
    hand_trials().to_parquet(tmp_path / "trials.parquet", index=False)
    s = S.summarize(tmp_path)
    assert (tmp_path / "summary.md").exists()
    assert s.partial  # without a study, config 2 and 3 look unfinished
    origin = yaml.safe_load((tmp_path / "best" / f"{A}.yaml").read_text())["origin"]
    assert origin["checkpoint"] is None and "no checkpoint found" in origin["checkpoint_note"]
    assert origin["features"]["length"] == 88000
    # EMOVO's length is the paper's too
    assert (
        yaml.safe_load((tmp_path / "best" / f"{C}.yaml").read_text())["origin"]["features"][
            "length"
        ]
        == 96000
    )
    for name in ("heatmap", "hyperparameters", "critical_difference"):
        assert imread(tmp_path / "plots" / f"{name}.png").ndim == 3


def test_cli_summarize(sweep_dir, capsys, tmp_path):
    import shutil

    from emodna.cli import main

    copy = tmp_path / "tiny"
    shutil.copytree(sweep_dir, copy)
    # the space that searched lr and tau_p: the best config's values are printed
    space = tmp_path / "space.yaml"
    space.write_text(
        "method: emodna\nparams:\n  lr: {type: float, low: 0.0001, high: 0.01, log: true}\n"
        "  tau_p: {type: float, low: 0.001, high: 1.0, log: true}\n"
    )
    (copy / "sweep.json").write_text(
        json.dumps({"budget": 3, "storage": None, "space": str(space)})
    )
    assert main(["summarize", str(copy), "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert "#1  config" in out and "summary.md" in out
    best = int(out.split("#1  config ")[1].split()[0])
    hp = CONFIGS[best]
    assert f"#1 searched: lr={hp['lr']:.3g}, tau_p={hp['tau_p']:.3g}\n" in out
    assert main(["summarize", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such sweep folder" in err
    assert main(["summarize", str(copy), "--metric", "nope"]) == 2
    assert "pick --metric" in capsys.readouterr().err
    # every trial failed (e.g. fixed batch_size 0 in an old sweep): say so, not "no column"
    failed = pd.DataFrame(
        [
            {
                "trial_id": f"t{i}",
                "config_id": i,
                "status": "error",
                "source": "EMODB",
                "target": "CASIA",
                "task": "arousal",
                "seed": 0,
                "error": "ValueError: x",
            }
            for i in range(4)
        ]
    )
    (tmp_path / "failed").mkdir()
    failed.to_parquet(tmp_path / "failed" / "trials.parquet", index=False)
    assert main(["summarize", str(tmp_path / "failed")]) == 2
    err = capsys.readouterr().err
    assert (
        err.count("\n") == 1
        and "no trial completed yet (4 error); the error column says why" in err
    )


def test_summarize_does_not_import_ray(tmp_path):
    import subprocess

    hand_trials().to_parquet(tmp_path / "trials.parquet", index=False)
    code = (
        "import sys; from sweep.summarize import summarize; "
        f"summarize({str(tmp_path)!r}, export=False, plots=False); "
        "print('ray' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_export_records_normalisation_and_percentile_length(tmp_path):
    """normalize travels with the exported config (its statistics are in the checkpoint,
    see test_predict); a corpus without a paper length gets its 95th-percentile length."""
    import soundfile as sf

    rng = np.random.default_rng(2)
    data = tmp_path / "DATA"
    for emotion, seconds in (("angry", 0.4), ("sad", 0.8), ("neutral", 0.6)):
        (data / "TESS" / f"OAF_{emotion}").mkdir(parents=True, exist_ok=True)
        sf.write(
            data / "TESS" / f"OAF_{emotion}" / f"OAF_back_{emotion}.wav",
            0.1 * rng.normal(size=int(seconds * 22050)),
            22050,
        )
    sweep = tmp_path / "norm"
    sweep.mkdir()
    (sweep / "sweep.json").write_text(
        json.dumps({"corpora_dir": str(data), "cache": str(tmp_path / "cache")})
    )
    rows = []
    for i, (src, tgt, hp) in enumerate(
        (
            ("CASIA", "EMODB", {"hp_normalize": "speaker"}),
            ("EMODB", "TESS", {"hp_normalize_features": True}),
        )
    ):
        rows.append(
            dict(
                trial_id=f"n{i}",
                config_id=i,
                status="completed",
                source=src,
                target=tgt,
                task="arousal",
                seed=0,
                method="emodna",
                hp_epochs=1,
                target_uar=0.6,
                error="",
                **hp,
            )
        )
    pd.DataFrame(rows).to_parquet(sweep / "trials.parquet", index=False)
    S.summarize(sweep, plots=False)
    emodb = yaml.safe_load((sweep / "best" / "CASIA-EMODB-arousal.yaml").read_text())
    assert emodb["normalize"] == "speaker" and "normalize_features" not in emodb
    assert emodb["origin"]["features"]["length"] == 96000
    tess = yaml.safe_load((sweep / "best" / "EMODB-TESS-arousal.yaml").read_text())
    assert tess["normalize"] == "corpus"  # an old sweep's normalize_features: true
    assert tess["origin"]["features"]["length"] == int(np.percentile([0.4, 0.8, 0.6], 95) * 22050)
    assert "percentile" in tess["origin"]["features"]["length_from"]


def test_corpus_names_with_dashes_spaces_and_dots_rank_and_select_the_same():
    """Scenario names are labels, never parsed: with CASIA renamed CREMA-D and EMODB a name
    with a space and dots, the ranking and leave-target-corpus-out choices are unchanged."""
    rename = {"CASIA": "CREMA-D", "EMODB": "my corpus v1.2", "EMOVO": "EMOVO"}
    plain = R.prepare_trials(hand_trials())
    odd = hand_trials()
    odd["source"], odd["target"] = odd["source"].map(rename), odd["target"].map(rename)
    odd = R.prepare_trials(odd)
    assert "CREMA-D-my corpus v1.2-arousal" in set(odd["scenario"])
    results = []
    for t in (plain, odd):
        ranking = R.rank_configs(t, "target_uar", "max", states={2: "pruned"})
        scores = R.pick_best_seed(R.scenario_scores(t, "target_uar"), "max")
        per, loto = SEL.honest_selection(t, scores, ranking, "target_uar", "max", {2: "pruned"})
        results.append((ranking, per, loto))
    (r0, p0, l0), (r1, p1, l1) = results
    assert list(r0["config_id"]) == list(r1["config_id"])
    assert list(r0["mean_metric_arousal"]) == list(r1["mean_metric_arousal"])
    chosen0 = l0["selected_config"].fillna(-1)
    chosen1 = l1["selected_config"].fillna(-1)
    assert dict(zip(l0["held_out_target"].map(rename), chosen0, strict=True)) == dict(
        zip(l1["held_out_target"], chosen1, strict=True)
    )
    assert sorted(p1["target"]) == sorted(p0["target"].map(rename))
    assert sorted(p0["loto_config"].fillna(-1)) == sorted(p1["loto_config"].fillna(-1))


def test_export_finds_a_trial_by_the_folder_trials_parquet_records(sweep_dir, tmp_path):
    """A trial folder whose name does not hold its id (renamed, or another naming scheme)
    is found through trials.parquet's trial_dir, not by parsing folder names."""
    import shutil

    moved = tmp_path / "moved"
    shutil.copytree(sweep_dir, moved, ignore=shutil.ignore_patterns("best", "plots"))
    t = pd.read_parquet(moved / "trials.parquet")
    for i, old in enumerate(t["trial_dir"]):
        (moved / old).rename(moved / f"trial-{i}")
    t["trial_dir"] = [f"trial-{i}" for i in range(len(t))]
    t.to_parquet(moved / "trials.parquet", index=False)
    S.summarize(moved, plots=False)
    for name in ("EMODB-CASIA-arousal", "CASIA-EMODB-arousal"):
        origin = yaml.safe_load((moved / "best" / f"{name}.yaml").read_text())["origin"]
        assert origin["checkpoint"] == f"{name}.pt"
        assert origin["checkpoint_from"].startswith("trial-")
        assert (moved / "best" / f"{name}.pt").is_file()
