"""Methods as loss recipes: which terms each one has, where their gradients go, the threshold."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from emodna.alignment.supcon import SupConLoss
from emodna.cli import main
from emodna.config import METHODS, TrainConfig
from emodna.methods import build_objective, grl_schedule
from emodna.model import EmoDNA

torch.set_num_threads(1)

FULL = {"emotion", "corpus", "decouple", "mmd", "supcon"}
TERMS = {
    "emodna": FULL,
    "v2_corpus_encoder_only": {"emotion", "corpus"},
    "v3_no_decouple": {"emotion", "corpus", "mmd", "supcon"},
    "v4_no_align": {"emotion", "corpus", "decouple"},
    "v5_no_decoupling": {"emotion", "mmd", "supcon"},
    "no_scl": {"emotion", "corpus", "decouple", "mmd"},
    "no_threshold": FULL,
    "fixed_threshold": FULL,
    "source_only": {"emotion"},
    "dan": {"emotion", "mmd"},
    "dann": {"emotion", "dann"},
    "jan": {"emotion", "jan"},
    "cdan": {"emotion", "cdan"},
    "bsp": {"emotion", "bsp", "bsp_penalty"},
}
ADVERSARIAL = {"dann", "cdan", "bsp"}  # the methods with a trained domain discriminator


def batches(seed: int = 0, n_s: int = 16, n_t: int = 12, frames: int = 24):
    """A source batch with labels and a target batch of another size and length."""
    g = torch.Generator().manual_seed(seed)
    xs = torch.randn(n_s, 40, frames, generator=g)
    ys = torch.arange(n_s) % 2
    xs[ys == 1, :4] += 1.0
    xt = torch.randn(n_t, 40, frames + 8, generator=g) * 1.3 + 0.2
    return xs, ys, xt


def setup(method: str, **cfg):
    torch.manual_seed(0)
    config = TrainConfig(method=method, **cfg)
    return EmoDNA(n_mfcc=40, n_classes=2, dropout=0.0), build_objective(config, n_classes=2), config


def has_grad(module: torch.nn.Module) -> bool:
    return any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in module.parameters())


def test_methods_command_lists_exactly_the_methods(capsys):
    assert main(["methods"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    classical = {name for name, m in METHODS.items() if m.classical}
    assert classical == {"functionals_lr"}  # no loss terms: fitted by scikit-learn (test_transfer)
    assert {line.split()[0] for line in lines} == set(TERMS) | classical
    assert len(lines) == len(TERMS) + len(classical)
    assert all(len(line.split()) > 2 for line in lines)  # each has a summary
    assert set(METHODS) == set(TERMS) | classical


@pytest.mark.parametrize("method", sorted(TERMS))
def test_terms_and_gradient_flow(method):
    model, objective, _ = setup(method)
    model.train()
    objective.train()
    xs, ys, xt = batches()
    terms = objective(model, xs, ys, xt, progress=0.5)
    assert set(terms) == TERMS[method]
    for name, value in terms.items():
        assert value.ndim == 0 and torch.isfinite(value), name
    sum(terms.values()).backward()

    spec = METHODS[method]
    # the corpus branch learns only in methods that train it (L_corpus)
    assert has_grad(model.corpus_classifier) == spec.corpus
    assert has_grad(model.corpus_encoder) == spec.corpus
    if method == "source_only":
        assert all(p.grad is None for p in model.corpus_encoder.parameters())
        assert all(p.grad is None for p in model.corpus_classifier.parameters())
        assert all(p.grad is None for p in model.projection.parameters())
        assert list(objective.parameters()) == []
    # the shared trunk and the emotion path always learn
    for part in (model.backbone, model.emotion_encoder, model.emotion_classifier):
        assert has_grad(part)
    # discriminators exist, and learn, only in the adversarial baselines
    params = list(objective.parameters())
    assert bool(params) == (method in ADVERSARIAL)
    if params:
        assert all(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in params)
        assert objective.adversary.grl.coeff == pytest.approx(grl_schedule(0.5))


def test_decouple_term_reaches_both_encoders():
    """L_decouple alone moves the emotion and the corpus encoder (at a temperature where it is not saturated)."""
    model, objective, _ = setup("v4_no_align", tau_p=1.0)
    xs, ys, xt = batches()
    terms = objective(model, xs, ys, xt)
    terms["decouple"].backward()
    assert terms["decouple"] > 0
    for part in (model.emotion_encoder, model.corpus_encoder, model.projection, model.backbone):
        assert has_grad(part)
    assert not has_grad(model.emotion_classifier) and not has_grad(model.corpus_classifier)


def test_adversary_gradient_is_reversed_against_a_hand_computed_gradient():
    """DANN through a linear discriminator D(f) = w.f + b: by hand,
    dL/df_i = 0.5 / n_s * sigmoid(D(f_i)) * w for a source clip (label 0) and
    0.5 / n_t * (sigmoid(D(f_i)) - 1) * w for a target clip; the reversal layer multiplies
    both by -coeff, while the discriminator's own gradient is not reversed."""
    from emodna.alignment.dann import DANNLoss

    class Linear(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)

        def forward(self, x):
            return self.layer(x).squeeze(1)

    torch.manual_seed(0)
    disc = Linear()
    loss_fn = DANNLoss(disc, coeff=0.7)
    f_s = torch.randn(3, 4, requires_grad=True)
    f_t = torch.randn(5, 4, requires_grad=True)
    loss = loss_fn(f_s, f_t)
    g_s, g_t, g_w = torch.autograd.grad(loss, [f_s, f_t, disc.layer.weight])
    w, b = disc.layer.weight.detach()[0], disc.layer.bias.detach()[0]
    p_s, p_t = torch.sigmoid(f_s.detach() @ w + b), torch.sigmoid(f_t.detach() @ w + b)
    expected_s = -0.7 * (0.5 / 3) * p_s[:, None] * w[None, :]
    expected_t = -0.7 * (0.5 / 5) * (p_t - 1)[:, None] * w[None, :]
    assert torch.allclose(g_s, expected_s, atol=1e-6) and torch.allclose(g_t, expected_t, atol=1e-6)
    expected_w = (0.5 / 3) * (p_s[:, None] * f_s.detach()).sum(0) + (0.5 / 5) * (
        (p_t - 1)[:, None] * f_t.detach()
    ).sum(0)
    assert torch.allclose(g_w[0], expected_w, atol=1e-6)  # the discriminator descends its loss


def test_grl_schedule_hand_values():
    assert grl_schedule(0.0) == 0.0
    assert grl_schedule(0.5) == pytest.approx(2 / (1 + math.exp(-5)) - 1)
    assert grl_schedule(0.5) == pytest.approx(0.986614, abs=1e-6)
    assert grl_schedule(1.0) == pytest.approx(0.9999092, abs=1e-7)


def hand_supcon(model, objective, xs, ys, xt, threshold):
    """SupCon over the source and the target samples whose confidence is >= threshold."""
    out_s, out_t = model(xs), model(xt)
    probs = F.softmax(out_t.logits_e, dim=1)
    conf, pseudo = probs.max(dim=1)
    keep = conf >= threshold
    loss = SupConLoss(objective.cfg.tau_s)(
        torch.cat([out_s.proj_e, out_t.proj_e[keep]]), torch.cat([ys, pseudo[keep]])
    )
    return objective.cfg.alpha_1 * loss, probs, keep


def test_fixed_threshold_stays_at_its_value():
    model, objective, cfg = setup("fixed_threshold")
    assert objective.threshold_value() == pytest.approx(0.9)
    model.eval()  # deterministic forward; the objective still trains (updates its threshold)
    objective.train()
    for seed in range(3):
        xs, ys, xt = batches(seed)
        terms = objective(model, xs, ys, xt)
        assert objective.threshold_value() == pytest.approx(cfg.fixed_threshold)
    expected, _, _ = hand_supcon(model, objective, xs, ys, xt, 0.9)
    assert terms["supcon"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_no_threshold_pseudo_labels_every_target_sample():
    model, objective, _ = setup("no_threshold")
    model.eval()
    objective.train()
    xs, ys, xt = batches()
    terms = objective(model, xs, ys, xt)
    expected, _, keep = hand_supcon(model, objective, xs, ys, xt, 0.0)
    assert bool(keep.all()) and objective.threshold_value() == 0.0
    assert terms["supcon"].item() == pytest.approx(expected.item(), rel=1e-5)
    # and it differs from SupCon over the source alone: the target samples are in it
    source_only = objective.cfg.alpha_1 * SupConLoss(objective.cfg.tau_s)(model(xs).proj_e, ys)
    assert terms["supcon"].item() != pytest.approx(source_only.item(), rel=1e-4)


def test_adaptive_threshold_moves_by_the_ema():
    model, objective, cfg = setup("emodna", ema_lambda=0.9)
    assert objective.threshold_value() == pytest.approx(0.5)  # tau_0 = 1 / n_classes
    model.eval()
    objective.train()
    xs, ys, xt = batches()
    with torch.no_grad():
        mean_conf = F.softmax(model(xt).logits_e, dim=1).max(dim=1).values.mean().item()
    tau_1 = 0.9 * 0.5 + 0.1 * mean_conf  # Eq. (7), by hand
    terms = objective(model, xs, ys, xt)
    assert objective.threshold_value() == pytest.approx(tau_1, abs=1e-6)
    expected, _, _ = hand_supcon(model, objective, xs, ys, xt, tau_1)  # masked with the new tau
    assert terms["supcon"].item() == pytest.approx(expected.item(), rel=1e-5)
    tau_2 = 0.9 * tau_1 + 0.1 * mean_conf
    objective(model, xs, ys, xt)
    assert objective.threshold_value() == pytest.approx(tau_2, abs=1e-6)
    # evaluation does not move it
    objective.eval()
    objective(model, xs, ys, xt)
    assert objective.threshold_value() == pytest.approx(tau_2, abs=1e-6)


def test_baselines_weight_their_term_by_trade_off():
    xs, ys, xt = batches()
    for method, term in (
        ("dan", "mmd"),
        ("dann", "dann"),
        ("jan", "jan"),
        ("cdan", "cdan"),
        ("bsp", "bsp"),
    ):
        got = {}
        for trade_off in (1.0, 0.25):
            model, objective, _ = setup(method, trade_off=trade_off)
            model.eval()
            objective.eval()
            got[trade_off] = objective(model, xs, ys, xt, progress=1.0)[term].item()
        assert got[0.25] == pytest.approx(0.25 * got[1.0], rel=1e-5), method
    # Emo-DNA's own MK-MMD keeps weight 1, whatever trade_off says (Eq. 11)
    got = {}
    for trade_off in (1.0, 0.25):
        model, objective, _ = setup("emodna", trade_off=trade_off)
        model.eval()
        got[trade_off] = objective(model, xs, ys, xt)["mmd"].item()
    assert got[0.25] == pytest.approx(got[1.0], rel=1e-6)
