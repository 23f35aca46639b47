"""The Emo-DNA network: shapes, normalisation, determinism, causality and where gradients go."""

from __future__ import annotations

import pytest
import torch

from emodna.losses import corpus_ce, emotion_ce
from emodna.model import TCN, EmoDNA, Output

torch.set_num_threads(1)

NAMES = (
    "backbone",
    "emotion_encoder",
    "corpus_encoder",
    "projection",
    "emotion_classifier",
    "corpus_classifier",
)


@pytest.fixture(scope="module")
def model() -> EmoDNA:
    torch.manual_seed(0)
    return EmoDNA(n_mfcc=40, n_classes=3)


def test_output_shapes_and_unit_projections(model):
    model.train()
    out = model(torch.randn(5, 40, 64))
    assert isinstance(out, Output)
    assert out.e.shape == (5, 64) and out.c.shape == (5, 64)
    assert out.logits_e.shape == (5, 3) and out.logits_c.shape == (5, 2)
    assert out.proj_e.shape == (5, 64) and out.proj_c.shape == (5, 64)
    assert torch.allclose(out.proj_e.norm(dim=1), torch.ones(5), atol=1e-5)
    assert torch.allclose(out.proj_c.norm(dim=1), torch.ones(5), atol=1e-5)


def test_source_and_target_may_differ_in_length(model):
    model.train()
    src, tgt = model(torch.randn(4, 40, 172)), model(torch.randn(6, 40, 40))
    assert src.e.shape == (4, 64) and tgt.e.shape == (6, 64)
    assert src.proj_c.shape[1] == tgt.proj_c.shape[1]


def test_eval_is_deterministic_and_features_match_forward(model):
    model.eval()
    x = torch.randn(3, 40, 48)
    with torch.no_grad():
        a, b = model(x), model(x)
        e_only = model.features(x)
        logits = model.predict_logits(x)
    assert torch.equal(a.logits_e, b.logits_e) and torch.equal(a.proj_c, b.proj_c)
    assert torch.allclose(e_only, a.e) and torch.allclose(logits, a.logits_e)


def test_submodule_names_are_stable(model):
    assert {name for name, _ in model.named_children()} == set(NAMES)
    prefixes = {k.split(".")[0] for k in model.state_dict()}
    assert prefixes == set(NAMES)


def test_tcn_is_causal():
    torch.manual_seed(0)
    tcn = TCN(channels=8).eval()
    x = torch.randn(2, 40, 8)  # the blocks run on [B, T, C]
    y = x.clone()
    y[:, 25:] = torch.randn(2, 15, 8)  # change only the future of frame 24
    with torch.no_grad():
        hx, hy = tcn.blocks(x), tcn.blocks(y)
    assert torch.allclose(hx[:, :25], hy[:, :25])
    assert not torch.allclose(hx[:, 25:], hy[:, 25:])


def test_tcn_computes_conv1d_with_its_last_frames_cut():
    """The [B, T, C] matmul form of the TCN (causal_conv) gives the numbers of the textbook
    form: Conv1d with padding (k-1) d on [B, C, T], the last (k-1) d outputs cut off; and a
    state dict with the old names (net.0 / net.2 / net.5 / net.7) loads into the new block."""
    torch.manual_seed(0)
    tcn = TCN(channels=8).double().eval()
    x = torch.randn(3, 8, 30, dtype=torch.float64)

    def conv_then_cut(conv, z):
        pad = (conv.kernel_size[0] - 1) * conv.dilation[0]
        out = torch.nn.functional.conv1d(
            z, conv.weight, conv.bias, padding=pad, dilation=conv.dilation
        )
        return out[:, :, : z.shape[2]]

    h = x
    for b in tcn.blocks:
        y = torch.relu(b.norm1(conv_then_cut(b.conv1, h)))
        h = torch.relu(torch.relu(b.norm2(conv_then_cut(b.conv2, y))) + h)
    with torch.no_grad():  # the TCN takes [B, T, C], as the backbone gives it
        assert torch.allclose(tcn(x.transpose(1, 2).contiguous()), h.mean(dim=2), atol=1e-12)
    names = {"conv1.": "net.0.", "norm1.": "net.2.", "conv2.": "net.5.", "norm2.": "net.7."}
    old = {}
    for key, value in tcn.state_dict().items():
        for new_name, old_name in names.items():
            key = key.replace(new_name, old_name)
        old[key] = value.clone()
    assert any(".net.5.weight" in key for key in old)
    fresh = TCN(channels=8).double()
    fresh.load_state_dict(old)  # strict: every old name found its parameter
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in tcn.state_dict().items())


def _touched(model: EmoDNA) -> dict[str, bool]:
    return {
        name: any(
            p.grad is not None and p.grad.abs().sum() > 0 for p in getattr(model, name).parameters()
        )
        for name in NAMES
    }


def test_emotion_ce_reaches_emotion_branch_only():
    torch.manual_seed(1)
    model = EmoDNA(n_classes=2).train()
    out = model(torch.randn(4, 40, 32))
    emotion_ce(out.logits_e, torch.tensor([0, 1, 0, 1])).backward()
    touched = _touched(model)
    assert touched["backbone"] and touched["emotion_encoder"] and touched["emotion_classifier"]
    assert not touched["corpus_encoder"] and not touched["corpus_classifier"]
    assert not touched["projection"]


def test_corpus_ce_reaches_corpus_branch_only():
    torch.manual_seed(2)
    model = EmoDNA(n_classes=2).train()
    out_s, out_t = model(torch.randn(3, 40, 32)), model(torch.randn(5, 40, 24))
    corpus_ce(out_s.logits_c, out_t.logits_c).backward()
    touched = _touched(model)
    assert touched["backbone"] and touched["corpus_encoder"] and touched["corpus_classifier"]
    assert not touched["emotion_encoder"] and not touched["emotion_classifier"]


def test_dropout_keeps_1_minus_p_scaled_and_matches_f_dropout_at_the_ends():
    """emodna.model.Dropout (masks from 15-bit integers, two per int32 draw): the kept
    fraction is 1 - p at even and at odd positions alike (the two halves of each draw), kept
    values are scaled by 1 / (1 - p), eval mode and p = 0 pass x through, p = 1 drops all."""
    from emodna.model import Dropout

    torch.manual_seed(0)
    x = torch.ones(400_001)  # odd: the last draw's second half is unused
    for p in (0.1, 0.5):
        y = Dropout(p).train()(x)
        kept = y != 0
        # binomial sd over 200,000 draws is at most 0.0012: 0.004 is more than 3 sd
        assert kept[0::2].float().mean().item() == pytest.approx(1 - p, abs=0.004)
        assert kept[1::2].float().mean().item() == pytest.approx(1 - p, abs=0.004)
        assert torch.allclose(y[kept], torch.full_like(y[kept], 1 / (1 - p)))
    # neighbours come from one draw's two halves, and are independent: P(both kept) = 0.81
    y = Dropout(0.1).train()(x)
    both = (y[0:-1:2] != 0) & (y[1::2] != 0)
    assert both.float().mean().item() == pytest.approx(0.81, abs=0.004)
    assert torch.equal(Dropout(0.1).eval()(x), x) and torch.equal(Dropout(0.0).train()(x), x)
    assert torch.equal(Dropout(1.0).train()(x), torch.zeros_like(x))
    assert Dropout(0.1).train()(torch.ones(3, 5, 7, dtype=torch.bfloat16)).dtype == torch.bfloat16


@pytest.mark.parametrize("frames", [188, 47, 2])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_pair_max_pool_is_maxpool1d_values_and_gradients_ties_included(frames, dtype):
    """PairMaxPool over the frames of [B, T, C] against nn.MaxPool1d(2) over the last axis of
    [B, C, T], after a ReLU (many tied zero pairs): the same values and the same input
    gradient, bit for bit; an odd last frame gets no gradient."""
    from emodna.model import PairMaxPool

    torch.manual_seed(0)
    x = torch.relu(torch.randn(4, 8, frames)).to(dtype).requires_grad_()
    ours = x.detach().transpose(1, 2).contiguous().requires_grad_()  # [B, T, C]
    ref, out = torch.nn.MaxPool1d(2)(x), PairMaxPool()(ours)
    assert out.shape == (4, frames // 2, 8)
    grad = torch.randn_like(ref)
    ref.backward(grad)
    out.backward(grad.transpose(1, 2))
    assert torch.equal(out.transpose(1, 2), ref) and torch.equal(ours.grad.transpose(1, 2), x.grad)
    assert torch.equal(PairMaxPool()(x.detach().transpose(1, 2)), out)  # a non-contiguous view
    assert (ref == 0).any()  # the ties were there to be routed


@pytest.mark.parametrize("dilation", [1, 4])
def test_time_major_conv_is_conv1d_on_the_transposed_input(dilation):
    from emodna.model import time_major_conv

    torch.manual_seed(0)
    conv = torch.nn.Conv1d(6, 5, kernel_size=3, padding=2, dilation=dilation).double()
    x = torch.randn(3, 6, 40, dtype=torch.float64)
    out = time_major_conv(conv, x.transpose(1, 2).contiguous())
    assert out.is_contiguous()
    assert torch.allclose(out, conv(x).transpose(1, 2), atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_backbone_is_conv_bn_relu_dropout_maxpool_values_and_gradients(dtype):
    """The backbone runs ReLU after the pool; in the paper's order (Conv -> BN -> ReLU ->
    Dropout -> MaxPool1d(2)) with the same dropout draws (drawn on [B, T, C], as the
    backbone does) it gives the same values and the same gradients, bit for bit, and its
    output has time before channels."""
    from emodna.model import Backbone, PairMaxPool, _rows, time_major_conv

    torch.manual_seed(0)
    backbone = Backbone(in_channels=6, channels=16, dropout=0.3).train().to(dtype)

    def reference(x):  # [B, F, T] -> [B, T // 8, C], the paper's order
        h = x.transpose(1, 2).contiguous()
        for conv, norm, drop, pool, relu in zip(*[iter(backbone)] * 5, strict=True):
            assert isinstance(pool, PairMaxPool) and isinstance(relu, torch.nn.ReLU)
            h = drop(torch.relu(_rows(norm, time_major_conv(conv, h))))
            h = torch.nn.MaxPool1d(2)(h.transpose(1, 2)).transpose(1, 2).contiguous()
        return h

    x = torch.randn(5, 6, 64, dtype=dtype)
    xs = [x.clone().requires_grad_() for _ in range(2)]
    outs = []
    for net, xi in zip((backbone, reference), xs, strict=True):
        torch.manual_seed(1)  # the same dropout draws: masks depend on shapes, not values
        outs.append(net(xi))
    grad = torch.randn_like(outs[0])
    for out in outs:
        out.backward(grad)
    assert outs[0].shape == (5, 8, 16)  # [B, T // 8, C]
    assert torch.equal(outs[0], outs[1]) and torch.equal(xs[0].grad, xs[1].grad)
    assert (outs[0] == 0).float().mean() > 0.2  # ReLU and dropout zeros were there
