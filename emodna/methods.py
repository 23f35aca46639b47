"""Methods are loss recipes over one model (docs/design.md, decision 4).

A :class:`Method` says which loss terms are on. :class:`Objective` holds the loss modules
a method needs and, given a source batch (with labels) and a target batch (without),
returns the weighted loss terms by name; ``emodna.train.fit`` sums and minimises them.

Emo-DNA's total, Eq. (11)-(12)::

    L = L_emotion (2) + L_corpus (3) + L_decouple (4)-(5)
        + MK-MMD(E^S, E^T) (10) + alpha_1 * SupCon(g(E) of source + confident target) (9)

The ablations switch terms off (paper Tables 4 and 6); the baselines (source only, DAN,
DANN, JAN, CDAN, BSP) use the same backbone and TCN emotion encoder, with their own
alignment term on the emotion features E, weighted by ``trade_off``. ``functionals_lr`` is
the classical baseline nobody tuned (docs/design.md, decision 6): no network, no loss terms;
``emodna.train.fit`` fits it with scikit-learn instead of gradient steps.

How the two batches meet BatchNorm is ``cfg.bn`` (see ``emodna.model``): with ``joint`` they
go through the model as one batch, cropped to the shorter clip length; otherwise one after
the other, each with its own domain's statistics under ``adabn`` / ``dsbn``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from emodna.alignment.bsp import BSPPenalty
from emodna.alignment.cdan import CDANLoss
from emodna.alignment.dann import DANNLoss, DomainDiscriminator
from emodna.alignment.decoupling import PrototypeDecoupling
from emodna.alignment.jan import JMMD
from emodna.alignment.mmd import MKMMD
from emodna.alignment.supcon import AdaptiveThreshold, SupConLoss
from emodna.config import METHODS
from emodna.losses import corpus_ce, emotion_ce
from emodna.model import SOURCE, TARGET, EmoDNA, FunctionalsLR

BSP_WEIGHT = 1e-4  # BSP's own default weight of the spectral penalty


def grl_schedule(progress: float) -> float:
    """DANN's warm-up of the reversal coefficient: 2 / (1 + exp(-10 p)) - 1, p in [0, 1]."""
    return 2.0 / (1.0 + math.exp(-10.0 * progress)) - 1.0


class Objective(nn.Module):
    """The loss modules of one method; ``forward`` returns its weighted terms by name."""

    def __init__(self, method: str, cfg, n_classes: int, feature_dim: int = 64, class_weight=None):
        super().__init__()
        self.name = method
        self.method = m = METHODS[method]
        self.cfg = cfg
        # inverse class frequencies of the source for class_balance: loss, else None
        self.register_buffer(
            "class_weight",
            None if class_weight is None else torch.as_tensor(class_weight, dtype=torch.float32),
        )
        self.decouple = (
            PrototypeDecoupling(cfg.tau_p, cfg.decouple_negative, cfg.decouple_level)
            if m.decouple
            else None
        )
        self.mmd = MKMMD(cfg.mmd_multipliers) if m.mmd else None
        self.supcon = SupConLoss(cfg.tau_s) if m.supcon else None
        self.threshold = None
        if m.supcon:
            fixed = {"adaptive": None, "fixed": cfg.fixed_threshold, "none": 0.0}[m.threshold]
            self.threshold = AdaptiveThreshold(n_classes, cfg.ema_lambda, fixed=fixed)
        self.adversary = self.bsp = None
        if m.adversary in ("dann", "bsp"):
            self.adversary = DANNLoss(DomainDiscriminator(feature_dim))
        elif m.adversary == "cdan":
            self.adversary = CDANLoss(DomainDiscriminator(feature_dim * n_classes))
        elif m.adversary == "jan":
            self.adversary = JMMD(cfg.mmd_multipliers)
        if m.adversary == "bsp":
            self.bsp = BSPPenalty(k=1)

    def forward(self, model, xs, ys, xt, progress: float = 0.0) -> dict[str, torch.Tensor]:
        m, cfg = self.method, self.cfg
        out_s, out_t = forward_pair(model, xs, xt, cfg.bn)
        terms = {"emotion": emotion_ce(out_s.logits_e, ys, self.class_weight)}  # (2)
        if m.corpus:
            terms["corpus"] = corpus_ce(out_s.logits_c, out_t.logits_c)  # (3)
        if m.decouple:
            terms["decouple"] = self.decouple(
                out_s.proj_e, out_t.proj_e, out_s.proj_c, out_t.proj_c
            )  # (4)-(5)
        if m.mmd:
            weight = cfg.trade_off if m.mmd_trade_off else 1.0  # Emo-DNA's MK-MMD has weight 1 (11)
            terms["mmd"] = weight * self.mmd(out_s.e, out_t.e)  # (10), first half of L_align
        if m.supcon:
            probs_t = F.softmax(out_t.logits_e.detach(), dim=1)
            if self.training:
                self.threshold.update(probs_t)  # (7)
            confident, pseudo = self.threshold.mask(probs_t)  # (8)
            features = torch.cat([out_s.proj_e, out_t.proj_e[confident]])
            labels = torch.cat([ys, pseudo[confident]])
            terms["supcon"] = cfg.alpha_1 * self.supcon(
                features, labels
            )  # (9), weighted as in (11)
        if m.adversary in ("dann", "bsp", "cdan"):
            self.adversary.grl.coeff = grl_schedule(progress)
        if m.adversary in ("dann", "bsp"):
            terms[m.adversary] = cfg.trade_off * self.adversary(out_s.e, out_t.e)
        elif m.adversary == "cdan":
            terms["cdan"] = cfg.trade_off * self.adversary(
                out_s.e, out_s.logits_e, out_t.e, out_t.logits_e
            )
        elif m.adversary == "jan":
            terms["jan"] = cfg.trade_off * self.adversary(
                out_s.e, out_s.logits_e, out_t.e, out_t.logits_e
            )
        if self.bsp is not None:
            terms["bsp_penalty"] = BSP_WEIGHT * self.bsp(out_s.e, out_t.e)
        return terms

    def threshold_value(self) -> float | None:
        """The current confidence threshold tau_t, for methods that pseudo-label."""
        return None if self.threshold is None else float(self.threshold.tau)


def center_crop(x: torch.Tensor, frames: int) -> torch.Tensor:
    """The middle ``frames`` frames of ``x`` [B, F, T]."""
    start = (x.shape[2] - frames) // 2
    return x[:, :, start : start + frames]


def forward_pair(model, xs: torch.Tensor, xt: torch.Tensor, bn: str):
    """The model's outputs on a source and a target batch, as ``cfg.bn`` says they meet BatchNorm."""
    if bn == "joint":  # one batch: one set of statistics over both corpora
        frames = min(xs.shape[2], xt.shape[2])
        out = model(torch.cat([center_crop(xs, frames), center_crop(xt, frames)]))
        n = xs.shape[0]
        fields = {
            k: getattr(out, k) for k in ("e", "c", "logits_e", "logits_c", "proj_e", "proj_c")
        }
        return (
            type(out)(**{k: v[:n] for k, v in fields.items()}),
            type(out)(**{k: v[n:] for k, v in fields.items()}),
        )
    model.set_domain(SOURCE)  # a no-op unless bn is adabn / dsbn
    out_s = model(xs)
    model.set_domain(TARGET)
    out_t = model(xt)
    return out_s, out_t


def build_model(
    method: str, n_mfcc: int, n_classes: int, dropout: float = 0.1, bn: str = "separate"
) -> nn.Module:
    """The network a method trains: FunctionalsLR for the classical baseline, else EmoDNA."""
    if METHODS[method].classical:
        return FunctionalsLR(n_mfcc, n_classes)
    return EmoDNA(n_mfcc=n_mfcc, n_classes=n_classes, dropout=dropout, bn=bn)


def build_objective(cfg, n_classes: int, class_weight=None) -> Objective:
    return Objective(cfg.method, cfg, n_classes, class_weight=class_weight)
