"""The knobs that decide cross-corpus results (docs/design.md, decisions 6 and 7): input
normalisation, BatchNorm per domain, class balance, the learning-rate schedule, label-free
model selection, and the classical baseline. Each against a hand-computed value or invariant."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from emodna.config import TrainConfig
from emodna.errors import ConfigError
from emodna.methods import center_crop, forward_pair
from emodna.model import SOURCE, TARGET, DomainBatchNorm1d, EmoDNA
from emodna.normalize import normalize
from emodna.train import Domain, _batches, class_weights, fit, split_source
from tests.helpers import domain

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def source() -> Domain:
    d = domain(96, seed=0)
    return Domain(d.x, d.y, "S", np.array([f"s{i % 3}" for i in range(96)]))


@pytest.fixture(scope="module")
def target() -> Domain:
    d = domain(48, seed=1, shift=2.0)
    return Domain(d.x, d.y, "T", np.array([f"t{i % 2}" for i in range(48)]))


def config(**kw) -> TrainConfig:
    return TrainConfig(**{"method": "emodna", "epochs": 2, "batch_size": 32, "seed": 0, **kw})


# ---------------------------------------------------------------------------------------
# Normalisation


def test_normalize_by_hand():
    # one coefficient, two clips of two frames: corpus mean 2.5, std sqrt(1.25)
    x = np.array([[[1.0, 2.0]], [[3.0, 4.0]]], dtype=np.float32)
    got = normalize(x, "corpus")
    np.testing.assert_allclose(
        got[:, 0], (np.array([[1, 2], [3, 4]]) - 2.5) / math.sqrt(1.25), rtol=1e-6
    )
    # per speaker: each clip is its own speaker here, mean 1.5 / 3.5, std 0.5
    got = normalize(x, "speaker", ["a", "b"])
    np.testing.assert_allclose(got[:, 0], [[-1, 1], [-1, 1]], rtol=1e-6)
    assert normalize(x, "none") is x


def test_speaker_normalisation_zeroes_each_speaker_and_unknown_speakers_are_one_group(source):
    x = normalize(source.x, "speaker", source.speaker)
    for spk in np.unique(source.speaker):
        rows = x[source.speaker == spk]
        np.testing.assert_allclose(rows.mean(axis=(0, 2)), 0, atol=1e-5)
        np.testing.assert_allclose(rows.std(axis=(0, 2)), 1, atol=1e-4)
    np.testing.assert_array_equal(
        normalize(source.x, "speaker", None), normalize(source.x, "corpus")
    )
    mixed = normalize(source.x, "speaker", [None] * 48 + ["a"] * 48)
    np.testing.assert_array_equal(mixed[:48], normalize(source.x[:48], "corpus"))


def test_corpus_normalisation_removes_a_constant_corpus_shift(source, target):
    """Shifting the target's MFCCs by a constant changes nothing once each corpus is
    normalised by its own statistics: the same metrics, to float tolerance."""
    cfg = config(method="source_only", normalize="corpus", epochs=1)
    a = fit(cfg, source, target)
    shifted = Domain(target.x + 5.0, target.y, "T", target.speaker)
    b = fit(cfg, source, shifted)
    assert a["target_uar"] == pytest.approx(b["target_uar"], abs=1e-6)
    assert a["target_entropy"] == pytest.approx(b["target_entropy"], abs=1e-4)


# ---------------------------------------------------------------------------------------
# BatchNorm


def test_domain_batchnorm_keeps_statistics_per_domain():
    bn = DomainBatchNorm1d(3, affine_per_domain=False, momentum=0.1)
    x = torch.arange(12.0).view(2, 3, 2)  # channel c: values {2c, 2c+1, 2c+6, 2c+7}, mean 2c+3.5
    bn.domain = TARGET
    bn.train()
    bn(x)
    torch.testing.assert_close(bn.running_mean[TARGET], 0.1 * torch.tensor([3.5, 5.5, 7.5]))
    torch.testing.assert_close(bn.running_mean[SOURCE], torch.zeros(3))  # untouched
    assert bn.weight.shape == (1, 3) and DomainBatchNorm1d(
        3, affine_per_domain=True
    ).weight.shape == (2, 3)
    # eval: the chosen domain's statistics
    bn.eval()
    bn.domain = SOURCE
    torch.testing.assert_close(bn(x), x / math.sqrt(1 + 1e-5))


def test_adabn_evaluates_the_target_with_the_target_statistics(source, target):
    """After training with bn=adabn, the target's running mean differs from the source's and
    predictions use it: switching the model to the source's statistics changes the output."""
    torch.manual_seed(0)
    model = EmoDNA(n_mfcc=40, bn="adabn")
    model.train()
    forward_pair(
        model,
        torch.from_numpy(source.x[:32].copy()),
        torch.from_numpy(target.x[:32].copy()),
        "adabn",
    )
    first = model.backbone[1]
    assert not torch.allclose(first.running_mean[SOURCE], first.running_mean[TARGET])
    model.eval()
    x = torch.from_numpy(target.x[:4].copy())
    model.set_domain(TARGET)
    on_target = model.predict_logits(x)
    model.set_domain(SOURCE)
    assert not torch.allclose(on_target, model.predict_logits(x))


def test_joint_batchnorm_is_one_pass_over_both_corpora_cropped_to_the_shorter():
    torch.manual_seed(0)
    model = EmoDNA(n_mfcc=8, bn="joint")
    model.eval()  # deterministic, so one pass and two passes can be compared
    xs, xt = torch.randn(3, 8, 20), torch.randn(2, 8, 16)
    out_s, out_t = forward_pair(model, xs, xt, "joint")
    assert out_s.logits_e.shape == (3, 2) and out_t.logits_e.shape == (2, 2)
    torch.testing.assert_close(out_s.logits_e, model(center_crop(xs, 16)).logits_e)
    torch.testing.assert_close(center_crop(xs, 16), xs[:, :, 2:18])


@pytest.mark.parametrize("bn", ["joint", "adabn", "dsbn"])
def test_every_bn_mode_trains_resumes_and_checkpoints(bn, source, target, tmp_path):
    cfg = config(bn=bn)
    straight = fit(cfg, source, target)
    fit(config(bn=bn, epochs=1), source, target, checkpoint_dir=tmp_path)
    resumed = fit(cfg, source, target, checkpoint_dir=tmp_path)
    assert resumed["target_uar"] == pytest.approx(straight["target_uar"])


# ---------------------------------------------------------------------------------------
# Class balance, schedule, selection


def test_class_weights_are_inverse_frequencies():
    np.testing.assert_allclose(class_weights(np.array([0, 0, 0, 1]), 2), [4 / 6, 4 / 2])
    np.testing.assert_allclose(class_weights(np.array([0, 1, 0, 1]), 2), [1.0, 1.0])


def test_balanced_sampler_draws_classes_equally_often():
    y = np.array([0] * 90 + [1] * 10)
    idx = np.arange(100)
    p = class_weights(y, 2)[y]
    drawn = np.concatenate(list(_batches(idx, 64, 200, torch.Generator().manual_seed(0), p)))
    assert len(drawn) == 64 * 200
    assert (y[drawn] == 1).mean() == pytest.approx(0.5, abs=0.02)


def test_class_balanced_loss_and_sampler_change_training(source, target):
    base = fit(config(method="source_only", epochs=1), source, target)
    for mode in ("loss", "sampler"):
        other = fit(config(method="source_only", epochs=1, class_balance=mode), source, target)
        assert other["loss"] != pytest.approx(base["loss"])


def test_cosine_schedule_ends_near_zero(source, target, tmp_path):
    cfg = config(method="source_only", lr_schedule="cosine", epochs=2, lr=1e-3)
    fit(cfg, source, target, checkpoint_dir=tmp_path)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    # two epochs of the larger corpus: the source less its held-out speaker (1 of 3)
    train_idx, _ = split_source(source.y, cfg.val_fraction, cfg.seed, source.speaker)
    assert len(train_idx) == 64
    steps = math.ceil(max(len(train_idx), len(target.y)) / 32) * 2
    last = (steps - 1) / steps
    lr = state["optimizer"]["param_groups"][0]["lr"]
    assert lr == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi * last)), rel=1e-6)


def test_source_val_selection_reports_the_kept_epoch(source, target, tmp_path):
    history = []
    final = fit(
        config(epochs=3, select="source_val"),
        source,
        target,
        on_epoch=history.append,
        checkpoint_dir=tmp_path,
    )
    best = max(range(3), key=lambda i: (history[i]["source_val_acc"], i))  # a later epoch wins ties
    assert final["selected_epoch"] == best + 1
    assert final["target_uar"] == history[best]["epoch_target_uar"]
    for i, m in enumerate(history):  # each epoch reports the best so far
        kept = max(range(i + 1), key=lambda j: (history[j]["source_val_acc"], j))
        assert (
            m["selected_epoch"] == kept + 1 and m["target_war"] == history[kept]["epoch_target_war"]
        )
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["kept"]["epoch"] == best + 1 and set(state["kept"]["model"]) == set(state["model"])
    with pytest.raises(ConfigError, match="val_fraction"):
        config(select="source_val", val_fraction=0.0).validate()


def test_unknown_choice_lists_the_allowed_values_and_old_exports_still_load():
    with pytest.raises(ConfigError, match=r"bn 'both' is not one of separate, joint, adabn, dsbn"):
        TrainConfig.from_dict({"bn": "both"})
    assert TrainConfig.from_dict({"normalize_features": True}).normalize == "corpus"
    assert TrainConfig.from_dict({"normalize_features": False}).normalize == "none"


# ---------------------------------------------------------------------------------------
# The classical baseline


def test_functionals_lr_is_sklearn_on_per_corpus_standardised_functionals(source, target):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score

    history = []
    final = fit(
        config(method="functionals_lr", normalize="none", epochs=30),
        source,
        target,
        on_epoch=history.append,
    )
    assert [m["epoch"] for m in history] == [1]  # no epochs: one report

    def standardised(x):
        f = np.concatenate([x.mean(axis=2), x.std(axis=2)], axis=1).astype(np.float64)
        return (f - f.mean(0)) / f.std(0)

    train_idx, _ = split_source(source.y, 0.1, 0, source.speaker)
    clf = LogisticRegression(max_iter=2000).fit(
        standardised(source.x)[train_idx], source.y[train_idx]
    )
    expected = balanced_accuracy_score(target.y, clf.predict(standardised(target.x)))
    assert final["target_uar"] == pytest.approx(expected)
    assert final["target_uar"] > 0.8  # the class signal survives the shift of the target


# ---------------------------------------------------------------------------------------
# The source hold-out and weight averaging


def test_source_validation_holds_out_whole_speakers_and_says_when_it_cannot():
    from emodna.train import source_val_grouped

    y = np.array([0, 1] * 50)
    speakers = np.array([f"spk{i // 10}" for i in range(100)])  # 5 clips of each class each
    train, val = split_source(y, 0.1, 0, speakers)
    assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == 100
    assert len(set(speakers[val])) == 1  # one of ten speakers: 10% of the clips
    assert not set(speakers[val]) & set(speakers[train])
    assert set(y[val]) == {0, 1}
    # four speakers: at least one whole speaker, a quarter of the clips
    four = np.array([f"spk{i // 25}" for i in range(100)])
    _, val4 = split_source(y, 0.1, 0, four)
    assert len(set(four[val4])) == 1 and len(val4) == 25
    # unknown speakers (or one): stratified by label as before, 10 clips
    for unknown in (None, np.array(["None"] * 100), np.array(["a"] * 100)):
        assert not source_val_grouped(unknown)
        _, val_u = split_source(y, 0.1, 0, unknown)
        assert len(val_u) == 10 and np.bincount(y[val_u]).tolist() == [5, 5]


@pytest.mark.parametrize("mode", ["ema", "swa"])
def test_weight_averaging_is_evaluated_kept_and_resumed(source, target, tmp_path, mode):
    from emodna.checkpoint import read_checkpoint

    cfg = config(method="source_only", epochs=3, weight_average=mode, weight_ema_decay=0.5)
    final = fit(cfg, source, target, checkpoint_dir=tmp_path / "a")
    state = read_checkpoint(tmp_path / "a" / "checkpoint.pt", "")
    kept, last = state["kept"]["model"], state["model"]
    # the kept (evaluated) weights are the average, not the last step's
    name = next(k for k in last if k.endswith("weight") and last[k].dtype.is_floating_point)
    assert not torch.equal(kept[name], last[name])
    assert int(state["averaged"]["n_averaged"]) == (2 if mode == "swa" else 3 * math.ceil(64 / 32))
    # stopped after 2 epochs and resumed: the same final scores as one run of 3
    fit(
        config(method="source_only", epochs=2, weight_average=mode, weight_ema_decay=0.5),
        source,
        target,
        checkpoint_dir=tmp_path / "b",
    )
    resumed = fit(cfg, source, target, checkpoint_dir=tmp_path / "b")
    assert resumed["target_uar"] == pytest.approx(final["target_uar"])
    assert resumed["source_val_acc"] == pytest.approx(final["source_val_acc"])


def test_predictions_are_the_kept_models_probabilities(source, target, tmp_path):
    import pandas as pd

    from emodna.metrics import scores

    final = fit(config(epochs=2), source, target, predictions_path=tmp_path / "p.parquet")
    table = pd.read_parquet(tmp_path / "p.parquet")
    tgt = table[table["split"] == "target"].sort_values("row")
    assert tgt["row"].tolist() == list(range(len(target.y)))
    assert (tgt["label"].to_numpy() == target.y).all()
    p = tgt[["p0", "p1"]].to_numpy()
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-5)
    # the reported target UAR is the one of these probabilities
    assert scores(target.y, p.argmax(1), 2)["uar"] == pytest.approx(final["target_uar"])
    val = table[table["split"] == "source_val"]
    assert len(val) == 32 and (val["weight"] > 0).all()  # one held-out speaker of three
    # with select: source_val they are the kept epoch's, whose scores fit reports
    kept = fit(
        config(epochs=3, select="source_val"),
        source,
        target,
        predictions_path=tmp_path / "k.parquet",
    )
    k = pd.read_parquet(tmp_path / "k.parquet").query("split == 'target'").sort_values("row")
    assert scores(target.y, k[["p0", "p1"]].to_numpy().argmax(1), 2)["uar"] == pytest.approx(
        kept["target_uar"]
    )
