"""Losses against values computed by hand on tiny tensors (the expected numbers are written out here)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from emodna.alignment.bsp import BSPPenalty
from emodna.alignment.cdan import CDANLoss
from emodna.alignment.dann import DANNLoss, DomainDiscriminator, GradientReverse, grad_reverse
from emodna.alignment.decoupling import PrototypeDecoupling
from emodna.alignment.jan import JMMD
from emodna.alignment.mmd import MKMMD
from emodna.alignment.supcon import AdaptiveThreshold, SupConLoss
from emodna.errors import DivergedError, EmodnaError, TrainingError
from emodna.losses import check_finite, corpus_ce, emotion_ce

torch.set_num_threads(1)
e = math.exp


def t(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)


# ----------------------------------------------------------------------------- (2), (3)


def test_emotion_ce_hand_value():
    logits = t([[0.0, 0.0], [2.0, 0.0]])
    labels = torch.tensor([0, 1])
    expected = (math.log(2) + (math.log(e(2) + 1) - 0.0)) / 2
    assert emotion_ce(logits, labels).item() == pytest.approx(expected)


def test_corpus_ce_labels_source_0_target_1():
    # source predicted as corpus 0 with logit gap 3, target as corpus 0 too (wrong)
    ls, lt = t([[3.0, 0.0]]), t([[3.0, 0.0], [3.0, 0.0]])
    right = math.log(1 + e(-3))  # -log softmax of the true class when it wins by 3
    wrong = math.log(1 + e(3))
    assert corpus_ce(ls, lt).item() == pytest.approx((right + 2 * wrong) / 3)


# ----------------------------------------------------------------------------- (4)-(5)

# prototypes: p_e^S = (1, 0), p_e^T = (0.6, 0.8), p_c^S = (0, 1), p_c^T = (0.8, 0.6)
PROTO_INPUTS = dict(
    proj_e_s=t([[1.0, 0.2], [1.0, -0.2]]),  # mean (1, 0)
    proj_e_t=t([[3.0, 4.0]]),  # normalised (0.6, 0.8)
    proj_c_s=t([[0.0, 2.0], [0.0, 1.0]]),  # (0, 1)
    proj_c_t=t([[0.8, 0.6]]),
)


def _two_way(pos: float, neg: float, tau: float) -> float:
    # -log(e^{pos/tau} / (e^{pos/tau} + e^{neg/tau})) = log(1 + e^{(neg - pos)/tau})
    return math.log(1 + e((neg - pos) / tau))


def test_decoupling_same_corpus_negative():
    tau = 0.5
    # S anchor: pos p_e^S.p_e^T = 0.6, neg p_e^S.p_c^S = 0
    # T anchor: pos 0.6, neg p_e^T.p_c^T = 0.48 + 0.48 = 0.96
    expected = _two_way(0.6, 0.0, tau) + _two_way(0.6, 0.96, tau)
    loss = PrototypeDecoupling(tau_p=tau, negative="same")(**PROTO_INPUTS)
    assert loss.item() == pytest.approx(expected, rel=1e-9)


def test_decoupling_other_corpus_negative():
    tau = 0.5
    # S anchor: neg p_e^S.p_c^T = 0.8; T anchor: neg p_e^T.p_c^S = 0.8
    expected = _two_way(0.6, 0.8, tau) + _two_way(0.6, 0.8, tau)
    loss = PrototypeDecoupling(tau_p=tau, negative="other")(**PROTO_INPUTS)
    assert loss.item() == pytest.approx(expected, rel=1e-9)


def test_decoupling_small_tau_is_finite_and_rejects_bad_switch():
    loss = PrototypeDecoupling(tau_p=1e-4)(**PROTO_INPUTS)
    # (neg - pos)/tau = (0.96 - 0.6)/1e-4 = 3600: exp would overflow, logsumexp does not
    assert loss.item() == pytest.approx(_two_way(0.6, 0.0, 1e-4) + 3600.0, rel=1e-6)
    with pytest.raises(ValueError):
        PrototypeDecoupling(negative="target")


def test_decoupling_gradient_reaches_all_inputs():
    inputs = {k: v.clone().requires_grad_(True) for k, v in PROTO_INPUTS.items()}
    PrototypeDecoupling(tau_p=0.5)(**inputs).backward()
    for v in inputs.values():
        assert v.grad is not None and torch.isfinite(v.grad).all()


def test_decoupling_sample_level_averages_per_sample_anchors():
    """level="sample": each row of g(E) is an anchor against the same prototypes."""
    tau = 0.5
    loss = PrototypeDecoupling(tau_p=tau, negative="same", level="sample")(**PROTO_INPUTS)
    # S anchors: (1, 0.2)/|.| and (1, -0.2)/|.|; pos p_e^T = (0.6, 0.8), neg p_c^S = (0, 1)
    n = math.hypot(1.0, 0.2)
    s_terms = [_two_way((0.6 + 0.8 * d) / n, d / n, tau) for d in (0.2, -0.2)]
    # the T anchor is the one sample (0.6, 0.8): pos p_e^S = (1, 0), neg p_c^T = (0.8, 0.6)
    expected = sum(s_terms) / 2 + _two_way(0.6, 0.96, tau)
    assert loss.item() == pytest.approx(expected, rel=1e-9)


def test_decoupling_is_inert_at_the_papers_temperature_and_acts_per_sample():
    """The diagnosis behind level="sample": collinear emotion prototypes far from the corpus
    prototypes give exactly 0 loss and 0 gradient at tau_p = 0.01 in float32; per-sample
    anchors at tau_p = 0.5 give a non-zero loss and gradient on the same inputs."""
    g = torch.Generator().manual_seed(0)
    # emotion projections of both corpora around one direction; corpus ones elsewhere
    base = F.normalize(torch.ones(8), dim=0)
    e_s = F.normalize(base + 0.3 * torch.randn(16, 8, generator=g), dim=1).requires_grad_(True)
    e_t = F.normalize(base + 0.3 * torch.randn(16, 8, generator=g), dim=1).requires_grad_(True)
    c = F.normalize(
        torch.tensor([1.0, -1, 1, -1, 1, -1, 1, -1]) + 0.1 * torch.randn(16, 8, generator=g), dim=1
    )
    paper = PrototypeDecoupling(tau_p=0.01)(e_s, e_t, c, c)
    paper.backward()
    assert paper.item() == 0.0 and e_s.grad.abs().max().item() < 1e-30  # exp(-100): nothing moves
    e_s.grad = None
    sample = PrototypeDecoupling(tau_p=0.5, level="sample")(e_s, e_t, c, c)
    sample.backward()
    assert sample.item() > 0.05 and e_s.grad.abs().max().item() > 1e-4
    with pytest.raises(ValueError, match="level"):
        PrototypeDecoupling(level="batch")


def test_emotion_ce_class_weights_hand_value():
    logits = t([[0.0, 0.0], [2.0, 0.0]])
    labels = torch.tensor([0, 1])
    w = t([1.0, 3.0])
    # PyTorch's weighted mean: sum_i w_{y_i} l_i / sum_i w_{y_i}
    expected = (1.0 * math.log(2) + 3.0 * math.log(e(2) + 1)) / 4.0
    assert emotion_ce(logits, labels, w).item() == pytest.approx(expected)


# ----------------------------------------------------------------------------- (6)-(8)


def test_adaptive_threshold_recurrence():
    lam = 0.9
    thr = AdaptiveThreshold(n_classes=2, momentum=lam)
    assert thr.tau.item() == pytest.approx(0.5)  # (6): 1 / n_classes
    batches = [
        t([[0.9, 0.1], [0.3, 0.7]]),  # mean max prob 0.8
        t([[0.6, 0.4], [0.5, 0.5], [0.2, 0.8]]),  # (0.6 + 0.5 + 0.8) / 3
        t([[0.99, 0.01]]),  # 0.99
    ]
    tau1 = 0.9 * 0.5 + 0.1 * 0.8  # 0.53
    tau2 = 0.9 * tau1 + 0.1 * (1.9 / 3)  # 0.540333...
    tau3 = 0.9 * tau2 + 0.1 * 0.99  # 0.5853
    got = [thr.update(b).item() for b in batches]
    assert got == pytest.approx([tau1, tau2, tau3], abs=1e-6)
    mask, pseudo = thr.mask(t([[0.6, 0.4], [0.2, 0.8], [0.55, 0.45]]))
    assert mask.tolist() == [True, True, False]
    assert pseudo.tolist() == [0, 1, 0]


def test_adaptive_threshold_initial_mask_accepts_everything_for_two_classes():
    thr = AdaptiveThreshold(n_classes=2)
    mask, _ = thr.mask(t([[0.5, 0.5], [0.49, 0.51]]))
    assert mask.tolist() == [True, True]  # max prob >= 0.5 always holds


def test_fixed_threshold_stays_constant():
    thr = AdaptiveThreshold(n_classes=2, momentum=0.5, fixed=0.9)
    for _ in range(3):
        assert thr.update(t([[0.6, 0.4], [0.5, 0.5]])).item() == pytest.approx(0.9)
    mask, pseudo = thr.mask(t([[0.95, 0.05], [0.1, 0.9], [0.2, 0.8]]))
    assert mask.tolist() == [True, True, False]
    assert pseudo.tolist() == [0, 1, 1]


def test_threshold_state_dict_round_trip():
    a = AdaptiveThreshold(n_classes=3, momentum=0.8)
    a.update(t([[0.7, 0.2, 0.1]]))
    a.update(t([[0.4, 0.3, 0.3]]))
    sd = a.state_dict()
    assert "tau" in sd
    b = AdaptiveThreshold(n_classes=3, momentum=0.8)
    assert b.tau.item() != pytest.approx(a.tau.item())
    b.load_state_dict(sd)
    assert b.tau.item() == pytest.approx(a.tau.item())
    nxt = t([[0.1, 0.1, 0.8]])
    assert b.update(nxt).item() == pytest.approx(a.update(nxt).item())


def test_threshold_update_returns_copy_and_ignores_empty_batch():
    thr = AdaptiveThreshold(n_classes=2, momentum=0.5)
    before = thr.update(torch.empty(0, 2))
    assert before.item() == pytest.approx(0.5)
    thr.update(t([[1.0, 0.0]]))
    assert before.item() == pytest.approx(0.5)  # the returned value is not the live buffer
    assert thr.tau.item() == pytest.approx(0.75)


# ----------------------------------------------------------------------------- (9)

# z1 = (1, 0), z2 = (0, 1), z3 = (0.6, 0.8), z4 = (0.8, -0.6)
# dot products: z1.z2 = 0, z1.z3 = 0.6, z1.z4 = 0.8, z2.z3 = 0.8, z2.z4 = -0.6, z3.z4 = 0
Z4 = t([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [0.8, -0.6]])


def test_supcon_hand_value():
    # labels (0, 0, 1, 1): every anchor has one positive whose dot product is 0, so each term is
    # -log(e^0 / sum over the other three) = log(sum over the other three), with tau = 1
    l1 = math.log(e(0) + e(0.6) + e(0.8))
    l2 = math.log(e(0) + e(0.8) + e(-0.6))
    l3 = math.log(e(0.6) + e(0.8) + e(0))
    l4 = math.log(e(0.8) + e(-0.6) + e(0))
    loss = SupConLoss(tau_s=1.0)(Z4, torch.tensor([0, 0, 1, 1]))
    assert loss.item() == pytest.approx((l1 + l2 + l3 + l4) / 4, rel=1e-9)


def test_supcon_hand_value_with_temperature_and_two_positives():
    # labels (0, 0, 0, 1), tau = 0.5: anchor 1 has positives 2 and 3
    tau = 0.5
    d = {(1, 2): 0.0, (1, 3): 0.6, (1, 4): 0.8, (2, 3): 0.8, (2, 4): -0.6, (3, 4): 0.0}

    def s(i, j):
        return d[(min(i, j), max(i, j))] / tau

    def term(i, positives):
        log_den = math.log(sum(e(s(i, a)) for a in (1, 2, 3, 4) if a != i))
        return -sum(s(i, p) - log_den for p in positives) / len(positives)

    expected = (term(1, [2, 3]) + term(2, [1, 3]) + term(3, [1, 2])) / 3  # anchor 4: no positive
    loss = SupConLoss(tau_s=tau)(Z4, torch.tensor([0, 0, 0, 1]))
    assert loss.item() == pytest.approx(expected, rel=1e-9)


def test_supcon_excludes_self_pairs():
    # two identical vectors with one label: the only positive is the other copy, the only
    # element of the denominator too, so the loss is exactly 0 (it would be log 2 with self-pairs)
    z = t([[0.6, 0.8], [0.6, 0.8]])
    assert SupConLoss(tau_s=0.1)(z, torch.tensor([1, 1])).item() == pytest.approx(0.0, abs=1e-12)


def test_supcon_anchors_without_positive_contribute_nothing():
    l1 = math.log(e(0) + e(0.6) + e(0.8))
    l2 = math.log(e(0) + e(0.8) + e(-0.6))
    loss = SupConLoss(tau_s=1.0)(Z4, torch.tensor([0, 0, 1, 2]))
    assert loss.item() == pytest.approx((l1 + l2) / 2, rel=1e-9)


def test_supcon_no_positive_at_all_is_zero_with_grad():
    z = Z4.clone().requires_grad_(True)
    loss = SupConLoss()(z, torch.tensor([0, 1, 2, 3]))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(z.grad, torch.zeros_like(z))


def test_supcon_tiny_temperature_stays_finite():
    g = torch.Generator().manual_seed(0)
    z = F.normalize(torch.randn(16, 8, generator=g), dim=1).requires_grad_(True)
    labels = torch.randint(0, 2, (16,), generator=g)
    loss = SupConLoss(tau_s=0.001)(z, labels)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()


# ----------------------------------------------------------------------------- (10), JMMD


def test_mmd_fixed_bandwidth_hand_value():
    # {0, 1} vs {2, 3}, base 1, one kernel exp(-d^2)
    xs, xt = t([[0.0], [1.0]]), t([[2.0], [3.0]])
    k_ss = (2 * e(0) + 2 * e(-1)) / 4  # d^2 in {0, 1, 1, 0}
    k_tt = k_ss
    k_st = (e(-4) + e(-9) + e(-1) + e(-4)) / 4  # (0,2) (0,3) (1,2) (1,3)
    expected = k_ss + k_tt - 2 * k_st
    assert MKMMD(multipliers=(1.0,), base=1.0)(xs, xt).item() == pytest.approx(expected, rel=1e-12)


def test_mmd_adaptive_bandwidth_hand_value():
    xs, xt = t([[0.0], [1.0]]), t([[2.0], [3.0]])
    # joint set {0, 1, 2, 3}: sum of d^2 over the 16 ordered pairs = 2*(3*1 + 2*4 + 1*9) = 40
    base = 40 / 16

    def k(d2):  # multipliers (1, 2): a sum of two kernels
        return e(-d2 / (1 * base)) + e(-d2 / (2 * base))

    k_ss = (2 * k(0) + 2 * k(1)) / 4
    k_st = (k(4) + k(9) + k(1) + k(4)) / 4
    expected = 2 * k_ss - 2 * k_st
    assert MKMMD(multipliers=(1.0, 2.0))(xs, xt).item() == pytest.approx(expected, rel=1e-12)


def test_mmd_identical_sets_is_zero_and_symmetric():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(7, 5, generator=g, dtype=torch.float64)
    b = torch.randn(4, 5, generator=g, dtype=torch.float64) + 1.0
    mmd = MKMMD()
    assert mmd(a, a.clone()).item() == pytest.approx(0.0, abs=1e-12)
    assert mmd(a, b).item() == pytest.approx(mmd(b, a).item(), rel=1e-12)
    assert mmd(a, b).item() > 0


def test_mmd_gradient_is_finite_for_duplicate_points():
    a = t([[1.0, 2.0], [1.0, 2.0]]).requires_grad_(True)
    b = t([[0.0, 0.0], [1.0, 2.0], [3.0, 1.0]])
    MKMMD()(a, b).backward()
    assert torch.isfinite(a.grad).all()


def test_sq_dists_are_exact_with_a_zero_diagonal_and_the_broadcast_gradient():
    """sq_dists (cdist's direct form) against the textbook broadcast (z_i - z_j)^2 summed:
    equal values and gradients, and an exactly zero diagonal in float32 even for rows of
    norm ~1e3, where |a|^2 + |b|^2 - 2ab would cancel to a nonzero number."""
    from emodna.alignment.mmd import sq_dists

    g = torch.Generator().manual_seed(3)
    z = (torch.randn(9, 6, generator=g, dtype=torch.float64) * 50).requires_grad_(True)
    weights = torch.randn(9, 9, generator=g, dtype=torch.float64)
    ours, textbook = sq_dists(z), (z.unsqueeze(0) - z.unsqueeze(1)).pow(2).sum(-1)
    assert torch.allclose(ours, textbook, rtol=1e-12, atol=1e-9)
    (grad_ours,) = torch.autograd.grad((ours * weights).sum(), z)
    (grad_textbook,) = torch.autograd.grad((textbook * weights).sum(), z)
    assert torch.allclose(grad_ours, grad_textbook, rtol=1e-10, atol=1e-9)
    far = torch.randn(16, 64, generator=g) + 400.0
    assert torch.equal(sq_dists(far).diagonal(), torch.zeros(16))


def test_jmmd_equals_mkmmd_when_predictions_agree():
    g = torch.Generator().manual_seed(2)
    fs = torch.randn(5, 3, generator=g, dtype=torch.float64)
    ft = torch.randn(6, 3, generator=g, dtype=torch.float64)
    same = t([[0.3, -0.2]])
    # identical predictions everywhere: the prediction kernel is 1, JMMD reduces to MK-MMD
    got = JMMD()(fs, same.expand(5, 2), ft, same.expand(6, 2))
    assert got.item() == pytest.approx(MKMMD()(fs, ft).item(), rel=1e-12)


def test_jmmd_product_kernel_hand_value():
    # one feature kernel exp(-d^2/(1*base)), prediction kernel exp(-|dy|^2/(2*0.92^2))
    fs, ft = t([[0.0]]), t([[1.0]])
    ls, lt = t([[0.0, 0.0]]), t([[math.log(3.0), 0.0]])  # softmax (0.5, 0.5) vs (0.75, 0.25)
    base = 2 / 4  # d^2 over ordered pairs of {0, 1}: 0, 1, 1, 0
    dy2 = 0.25**2 + 0.25**2
    k_st = e(-1 / base) * e(-dy2 / (2 * 0.92**2))
    expected = 1 + 1 - 2 * k_st
    got = JMMD(multipliers=(1.0,))(fs, ls, ft, lt)
    assert got.item() == pytest.approx(expected, rel=1e-12)


# ----------------------------------------------------------------------------- baselines


def test_gradient_reverse_flips_and_scales_gradient():
    x = t([[1.0, -2.0], [0.5, 3.0]]).requires_grad_(True)
    w = t([[2.0, 1.0], [-1.0, 4.0]])
    y = grad_reverse(x, 0.5)
    assert torch.equal(y, x)
    (y * w).sum().backward()
    assert torch.allclose(x.grad, -0.5 * w)

    x.grad = None
    layer = GradientReverse(coeff=2.0)
    (layer(x) * w).sum().backward()
    assert torch.allclose(x.grad, -2.0 * w)


def test_dann_reverses_the_discriminator_gradient():
    torch.manual_seed(0)
    disc = DomainDiscriminator(in_dim=3, hidden=8).double()
    fs = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    ft = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    loss = DANNLoss(disc)(fs, ft)
    loss.backward()
    g_rev = fs.grad.clone()
    # the same loss written without reversal, by hand: 0.5 * (BCE(d_s, 0) + BCE(d_t, 1))
    fs.grad = None
    d = disc(torch.cat([fs, ft]))
    plain = 0.5 * (F.softplus(d[:4]).mean() + F.softplus(-d[4:]).mean())
    assert plain.item() == pytest.approx(loss.item(), rel=1e-12)
    plain.backward()
    assert torch.allclose(g_rev, -fs.grad)


def test_domain_discriminator_returns_one_logit_per_row():
    assert DomainDiscriminator(in_dim=6)(torch.randn(10, 6)).shape == (10,)


def test_cdan_multilinear_map_and_loss():
    f, g = t([[1.0, 2.0]]), t([[0.25, 0.75]])
    assert CDANLoss.multilinear_map(f, g).tolist() == [[0.25, 0.5, 0.75, 1.5]]

    torch.manual_seed(0)
    disc = DomainDiscriminator(in_dim=3 * 2, hidden=8)
    fs, ft = torch.randn(4, 3, requires_grad=True), torch.randn(6, 3)
    ls, lt = torch.randn(4, 2, requires_grad=True), torch.randn(6, 2)
    loss = CDANLoss(disc)(fs, ls, ft, lt)
    loss.backward()
    assert torch.isfinite(loss) and fs.grad is not None
    assert ls.grad is None or torch.all(ls.grad == 0)  # predictions are detached in the map
    # with uniform predictions every entropy weight is equal, so CDAN+E equals CDAN
    zs, zt = torch.zeros(4, 2), torch.zeros(6, 2)
    disc.eval()
    a = CDANLoss(disc)(fs, zs, ft, zt)
    b = CDANLoss(disc, entropy_conditioning=True)(fs, zs, ft, zt)
    assert a.item() == pytest.approx(b.item(), rel=1e-6)


def test_bsp_penalty_hand_value():
    fs = t([[3.0, 0.0], [0.0, 1.0]])  # singular values 3, 1
    ft = t([[2.0, 0.0], [0.0, 0.0], [0.0, 0.0]])  # singular values 2, 0
    assert BSPPenalty(k=1)(fs, ft).item() == pytest.approx(9 + 4)
    assert BSPPenalty(k=2)(fs, ft).item() == pytest.approx(9 + 1 + 4 + 0)


# ----------------------------------------------------------------------------- guard


def test_check_finite_names_the_term():
    check_finite({"ce": torch.tensor(1.0), "mmd": 0.5})  # no error
    with pytest.raises(TrainingError, match=r"loss term 'mmd' became nan at epoch 3"):
        check_finite(
            {"ce": torch.tensor(1.0), "mmd": torch.tensor(float("nan"))}, where="at epoch 3"
        )
    with pytest.raises(TrainingError, match=r"loss term 'supcon' became inf") as info:
        check_finite({"supcon": torch.tensor([1.0, float("inf")])})
    # a DivergedError carries the term, so a sweep records it without retrying the trial
    assert isinstance(info.value, DivergedError) and info.value.term == "supcon"
    assert issubclass(TrainingError, EmodnaError)


# ---------------------------------------------------------------------------------------------
# Mixed precision: the temperature-scaled and kernel losses stay float32 under bf16 autocast


def test_contrastive_and_mmd_losses_run_in_float32_under_bf16_autocast():
    """Under ``torch.autocast(bf16)`` (TrainConfig amp: bf16) SupCon, decoupling, MK-MMD and JMMD
    get bf16 features from the network; each returns exactly its float32 value on the same
    (upcast) inputs, and the gradient still reaches the bf16 inputs."""
    g = torch.Generator().manual_seed(0)
    f_s, f_t = (torch.randn(16, 32, generator=g).bfloat16().requires_grad_() for _ in range(2))
    y = torch.arange(16) % 2
    logits = torch.randn(16, 2, generator=g).bfloat16()
    cases = {
        "supcon": (SupConLoss(0.01), (f_s, y)),
        "decouple": (
            PrototypeDecoupling(0.01, level="sample"),
            (f_s, f_t, f_t.flip(0), f_s.flip(0)),
        ),
        "mmd": (MKMMD(), (f_s, f_t)),
        "jmmd": (JMMD(), (f_s, logits, f_t, logits)),
    }
    for name, (loss, args) in cases.items():
        with torch.autocast("cpu", torch.bfloat16):
            value = loss(*args)
        up = [a.detach().float() if a.is_floating_point() else a for a in args]
        assert value.dtype == torch.float32, name
        assert value.item() == loss(*up).item(), name
        value.backward()
    assert f_s.grad is not None and f_s.grad.dtype == torch.bfloat16


def test_bf16_ties_temperature_scaled_logits_that_float32_tells_apart():
    """Why the guard: cosines 0.950 and 0.951 over tau 0.01 are 95.0 and 95.1 in float32 but
    one bf16 number (both cosines round to 243/256, and bf16's step is 0.5 between 64 and 128)."""
    cos = torch.tensor([0.950, 0.951])
    assert (cos / 0.01)[1] - (cos / 0.01)[0] == pytest.approx(0.1, abs=1e-4)
    as_bf16 = (cos.bfloat16() / 0.01).float()
    assert as_bf16[0] == as_bf16[1] == 95.0
