"""fit(): determinism, resume, the per-epoch metrics, NaN guard, configs and checkpoints."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
import yaml

from emodna.checkpoint import CHECKPOINT, load_checkpoint
from emodna.config import METHODS, TrainConfig
from emodna.errors import ConfigError, TrainingError
from emodna.model import EmoDNA
from emodna.train import Domain, fit
from tests.helpers import domain

torch.set_num_threads(1)

TIMING = {"epoch_seconds"}


@pytest.fixture(scope="module")
def source() -> Domain:
    return domain(128, seed=0)


@pytest.fixture(scope="module")
def target() -> Domain:
    return domain(64, seed=1, shift=0.3)


def config(**kw) -> TrainConfig:
    values = {"method": "emodna", "epochs": 2, "batch_size": 32, "seed": 0, **kw}
    return TrainConfig(**values)


def without_timing(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in TIMING}


def run(cfg, source, target, **kw):
    history = []
    final = fit(cfg, source, target, on_epoch=history.append, **kw)
    return final, history


# ---------------------------------------------------------------------------------------
# Determinism and resume


def test_same_seed_gives_identical_metrics(source, target):
    a, hist_a = run(config(), source, target)
    b, hist_b = run(config(), source, target)
    assert without_timing(a) == without_timing(b)
    assert [without_timing(m) for m in hist_a] == [without_timing(m) for m in hist_b]


def test_different_seeds_differ(source, target):
    a, _ = run(config(seed=0, epochs=1), source, target)
    b, _ = run(config(seed=1, epochs=1), source, target)
    assert a["loss"] != b["loss"]
    assert a["loss_emotion"] != b["loss_emotion"]


def test_resume_matches_a_straight_run(source, target, tmp_path):
    straight, straight_hist = run(config(epochs=2), source, target)

    first, _ = run(config(epochs=1), source, target, checkpoint_dir=tmp_path)
    assert first["epoch"] == 1 and (tmp_path / CHECKPOINT).exists()
    resumed, resumed_hist = run(config(epochs=2), source, target, checkpoint_dir=tmp_path)

    assert [m["epoch"] for m in resumed_hist] == [2]  # only the missing epoch ran
    assert without_timing(resumed) == without_timing(straight)
    state = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    assert [without_timing(m) for m in state["history"]] == [
        without_timing(m) for m in straight_hist
    ]
    # a finished run started again does nothing and returns the last metrics
    again, again_hist = run(config(epochs=2), source, target, checkpoint_dir=tmp_path)
    assert again_hist == [] and without_timing(again) == without_timing(straight)


# ---------------------------------------------------------------------------------------
# Per-epoch metrics


@pytest.mark.parametrize("method", ["emodna", "source_only", "bsp"])
def test_on_epoch_is_called_once_per_epoch_with_the_documented_keys(method, source, target):
    final, history = run(config(method=method, epochs=2), source, target)
    assert [m["epoch"] for m in history] == [1, 2]
    assert history[-1] == final

    objective_terms = {
        "emodna": ["emotion", "corpus", "decouple", "mmd", "supcon"],
        "source_only": ["emotion"],
        "bsp": ["emotion", "bsp", "bsp_penalty"],
    }[method]
    keys = {
        "epoch",
        "loss",
        *(f"loss_{t}" for t in objective_terms),
        "target_war",
        "target_uar",
        "target_f1_pos",
        "target_f1_macro",
        "source_val_acc",
        "source_val_uar",
        "target_entropy",
        "epoch_seconds",
    }
    if METHODS[method].supcon:
        keys |= {"threshold", "pseudo_fraction"}
    for m in history:
        assert set(m) == keys
        assert all(isinstance(v, int | float) and math.isfinite(v) for v in m.values())
        # the total is the sum of the terms (each averaged over the epoch's steps)
        assert m["loss"] == pytest.approx(sum(m[f"loss_{t}"] for t in objective_terms), rel=1e-6)
        for k in (
            "target_war",
            "target_uar",
            "target_f1_pos",
            "target_f1_macro",
            "source_val_acc",
            "pseudo_fraction",
        ):
            if k in m:
                assert 0.0 <= m[k] <= 1.0
        assert 0.0 <= m["target_entropy"] <= math.log(2) + 1e-6
        assert m["epoch_seconds"] > 0
    if method == "emodna":
        assert 0.5 < history[0]["threshold"] < 1.0  # tau_0 = 1/2, moved up by the EMA


def test_the_model_learns_a_separable_problem():
    source, target = domain(200, seed=2, signal=2.0), domain(80, seed=3, signal=2.0, shift=0.2)
    _, history = run(config(method="source_only", epochs=4), source, target)
    assert max(m["source_val_acc"] for m in history) > 0.9
    assert history[-1]["loss"] < history[0]["loss"]
    assert history[-1]["target_war"] > 0.8  # a small shift: the source model transfers


# ---------------------------------------------------------------------------------------
# Blow-ups


def test_inf_in_the_target_names_the_first_term_that_breaks(source, target):
    x = np.array(target.x)
    x[3, 0, 0] = np.inf
    bad_target = Domain(x, target.y, "bad")
    # the source-only CE is fine; the corpus CE is the first term that sees the target
    with pytest.raises(TrainingError, match=r"loss term 'corpus' became nan at epoch 1, step 1"):
        fit(config(method="emodna"), source, bad_target)
    with pytest.raises(TrainingError, match=r"loss term 'mmd' became nan"):
        fit(config(method="dan"), source, bad_target)


def test_a_huge_learning_rate_raises_training_error(source, target):
    with pytest.raises(
        TrainingError,
        match=r"loss term 'emotion' became (nan|inf) at epoch \d+.*lower learning rate",
    ):
        fit(config(method="source_only", lr=1e6, epochs=3), source, target)


# ---------------------------------------------------------------------------------------
# Configs


def test_from_dict_unknown_key_suggests_the_close_match():
    with pytest.raises(ConfigError, match=r"unknown key 'tua_p'.*did you mean 'tau_p'"):
        TrainConfig.from_dict({"tua_p": 0.1})
    with pytest.raises(
        ConfigError, match=r"my.yaml: unknown key 'zzz'.*known keys: source, target"
    ):
        TrainConfig.from_dict({"zzz": 1}, origin="my.yaml")


@pytest.mark.parametrize(
    "key, value",
    [
        ("epochs", "ten"),
        ("epochs", 2.5),
        ("lr", "fast"),
        ("normalize_features", "yes"),
        ("mmd_multipliers", 2.0),
        ("method", 3),
    ],
)
def test_from_dict_wrong_type_names_the_key(key, value):
    with pytest.raises(ConfigError, match=rf"{key} must be a \S+, got {re.escape(repr(value))}"):
        TrainConfig.from_dict({key: value})


def test_from_dict_accepts_ints_for_floats_and_ignores_origin():
    cfg = TrainConfig.from_dict({"lr": 1, "epochs": 3.0, "origin": "sweep x, trial 7"})
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float)
    assert cfg.epochs == 3 and isinstance(cfg.epochs, int)


def test_from_dict_bad_method_lists_the_methods():
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_dict({"method": "emodnaa"})
    message = str(info.value)
    assert "unknown method 'emodnaa'" in message
    assert all(name in message for name in METHODS)


def test_yaml_round_trip(tmp_path):
    cfg = TrainConfig(
        source="CASIA",
        target="RAVDESS",
        task="valence",
        method="dann",
        epochs=7,
        tau_p=0.05,
        mmd_multipliers=[0.5, 1.0, 8.0],
        decouple_negative="other",
        normalize="speaker",
        bn="dsbn",
        class_balance="sampler",
        lr_schedule="cosine",
        select="source_val",
        decouple_level="sample",
        trade_off=0.3,
    )
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    assert TrainConfig.from_yaml(path) == cfg
    # flags override the file; None means "not given"
    assert TrainConfig.from_yaml(path, epochs=2, seed=None).epochs == 2
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="a mapping"):
        TrainConfig.from_yaml(tmp_path / "list.yaml")


# ---------------------------------------------------------------------------------------
# Checkpoints


def test_checkpoint_loads_with_weights_only(source, target, tmp_path):
    run(config(epochs=1), source, target, checkpoint_dir=tmp_path)
    state = torch.load(tmp_path / CHECKPOINT, map_location="cpu", weights_only=True)
    assert state["epoch"] == 1 and len(state["history"]) == 1
    assert state["config"] == config(epochs=1).to_dict()
    assert state["model_shape"] == {"n_mfcc": 40, "n_classes": 2}
    assert float(state["objective"]["threshold.tau"]) == pytest.approx(
        state["history"][0]["threshold"]
    )
    model = EmoDNA(n_mfcc=40, n_classes=2, bn=state["config"]["bn"])
    model.load_state_dict(state["model"])
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically, no leftovers


def test_checkpoint_of_another_model_shape_is_refused(source, target, tmp_path):
    run(config(epochs=1), source, target, checkpoint_dir=tmp_path)
    narrow_source = domain(64, seed=4, n_mfcc=20)
    narrow_target = domain(32, seed=5, n_mfcc=20)
    with pytest.raises(
        TrainingError, match=r"model with n_mfcc=40, n_classes=2.*has n_mfcc=20.*fresh --out"
    ):
        fit(config(epochs=2), narrow_source, narrow_target, checkpoint_dir=tmp_path)
    with pytest.raises(TrainingError, match=r"n_classes=2.*has n_mfcc=40, n_classes=3"):
        load_checkpoint(tmp_path / CHECKPOINT, EmoDNA(n_mfcc=40, n_classes=3))


def test_checkpoint_of_another_method_is_refused(source, target, tmp_path):
    run(config(method="dann", epochs=1), source, target, checkpoint_dir=tmp_path)
    with pytest.raises(TrainingError, match="does not fit this model"):
        fit(config(method="cdan", epochs=2), source, target, checkpoint_dir=tmp_path)


def test_unreadable_checkpoint_is_a_training_error(source, target, tmp_path):
    (tmp_path / CHECKPOINT).write_bytes(b"not a checkpoint")
    with pytest.raises(TrainingError, match="not a readable checkpoint.*delete it"):
        fit(config(epochs=1), source, target, checkpoint_dir=tmp_path)


def test_hand_edited_export_with_a_wrong_type_names_file_and_key(tmp_path):
    """An exported best config edited by hand: `epochs: thirty` must not reach training."""

    exported = TrainConfig(source="EMODB", target="CASIA").to_dict()
    exported["origin"] = {"sweep": "runs/x", "config_id": 3}
    for key, bad in (("epochs", "thirty"), ("mmd_multipliers", 2.0), ("normalize_features", "yes")):
        path = tmp_path / f"{key}.yaml"
        path.write_text(yaml.safe_dump({**exported, key: bad}))
        with pytest.raises(ConfigError, match=rf"{key}.yaml: {key} must be a"):
            TrainConfig.from_yaml(path)


def test_device_is_validated_resolved_and_a_missing_gpu_is_one_line():
    import socket

    from emodna.train import resolve_device

    assert TrainConfig().device == "auto"
    for good in ("auto", "cpu", "cuda", "cuda:1"):
        TrainConfig.from_dict({"device": good})
    with pytest.raises(ConfigError, match="device 'gpu' is not auto, cpu, cuda or cuda:N"):
        TrainConfig.from_dict({"device": "gpu"})
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    if not torch.cuda.is_available():
        with pytest.raises(
            TrainingError, match=f"torch sees 0 GPU\\(s\\) on node {socket.gethostname()}"
        ):
            resolve_device("cuda:0")


def test_divergence_is_found_at_its_step_with_the_loss_sums_kept_on_the_device(source, target):
    """The per-epoch loss means come from one stacked tensor of every step's terms; a term
    that is not finite is still named with its epoch and step."""
    from emodna.train import _check_steps

    cfg = config(epochs=1)
    values = torch.tensor([[0.5, 0.1], [0.4, float("inf")], [float("nan"), 0.2]])
    with pytest.raises(TrainingError, match=r"loss term 'mmd' became inf at epoch 2, step 5 "):
        _check_steps(values, ["emotion", "mmd"], 3, 1, cfg)
    _check_steps(values[:1], ["emotion", "mmd"], 0, 0, cfg)  # all finite: no error
    _, history = run(config(epochs=1), source, target)
    terms = [k for k in history[0] if k.startswith("loss_")]
    assert history[0]["loss"] == pytest.approx(sum(history[0][k] for k in terms))


def test_bf16_amp_trains_close_to_float32_and_is_validated(source, target):
    """amp: bf16 runs the network under autocast (on the CPU here): the run is finite, its loss
    terms track the float32 run's to bf16 precision, and the config refuses other precisions."""
    f32, _ = run(config(amp="off"), source, target)  # the default (auto) is bf16 on some CPUs
    b16, _ = run(config(amp="bf16"), source, target)
    assert set(b16) == set(f32)
    terms = [k for k in f32 if k.startswith("loss")]
    for k in terms:
        assert math.isfinite(b16[k])
        assert b16[k] == pytest.approx(f32[k], rel=0.02, abs=0.01), k
    assert b16 != f32  # bf16 really ran: some digits differ
    with pytest.raises(ConfigError, match="amp .fp16. is not one of auto, off, bf16"):
        TrainConfig.from_dict({"amp": "fp16"})
