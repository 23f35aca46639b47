r"""Emo-DNA's contrastive emotion decoupling, Eqs. (4)-(5) (Ye et al., ACM MM 2023).

>>> loss = PrototypeDecoupling(tau_p=0.5, level="sample")
>>> value = loss(g_e_s, g_e_t, g_c_s, g_c_t)  # projections [n, D] -> scalar
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from emodna.losses import in_float32


class PrototypeDecoupling(nn.Module):
    r"""Two-way prototype contrastive decoupling loss, Eqs. (4)-(5).

    Prototypes are L2-normalised batch means of the projections, per corpus (4):

    .. math::
        p_e^S = \frac{\bar g(E^S)}{\|\bar g(E^S)\|},\quad p_e^T,\ p_c^S,\ p_c^T \text{ likewise.}

    Each emotion prototype is pulled towards the other corpus's emotion prototype (one positive)
    and pushed from a corpus prototype (one negative) (5):

    .. math::
        \ell(p, q, n) = -\log \frac{\exp(p\cdot q/\tau_p)}{\exp(p\cdot q/\tau_p) + \exp(p\cdot n/\tau_p)}

        L_{dec} = \ell(p_e^S, p_e^T, p_c^{X_S}) + \ell(p_e^T, p_e^S, p_c^{X_T})

    The two directions are **summed** (the "two-way" loss is the sum of the S-anchored and the
    T-anchored terms, not their mean). The paper's Eq. (5) as extracted does not show which
    corpus prototype is the negative, hence the switch:

    * ``negative="same"`` (default): the anchor's own corpus, :math:`X_S = S,\ X_T = T`.
    * ``negative="other"``: the other corpus, :math:`X_S = T,\ X_T = S`.

    Why it is inert as written, and the variant that acts (``level``). Per direction the loss
    is :math:`\mathrm{softplus}((p\cdot n - p\cdot q)/\tau_p)`. The batch means of two corpora's
    ReLU features point the same way, so at initialisation :math:`p_e^S\cdot p_e^T \approx 1`
    while :math:`p_e\cdot p_c \approx 0.15`: with :math:`\tau_p = 0.01` the loss is about
    :math:`e^{-85}`, exactly 0 in float32, with zero gradient, and it stays there.

    * ``level="prototype"`` (default): Eq. (5) as written, anchors are the prototypes.
    * ``level="sample"``: every sample's projection is an anchor (its corpus's prototypes as
      positive and negative are unchanged), the loss the mean over anchors. A single clip is
      far less aligned with the other corpus's emotion prototype than a batch mean is, so
      with a temperature of 0.1 or more the term is non-zero and pulls each clip's emotion
      projection towards the other corpus while pushing it from its corpus's projection.

    .. math::
        L^{sample}_{dec} = \frac{1}{n_s}\sum_i \ell(g(E^S_i), p_e^T, p_c^{X_S})
                         + \frac{1}{n_t}\sum_j \ell(g(E^T_j), p_e^S, p_c^{X_T})

    Computed with ``logsumexp``, so small ``tau_p`` (0.01 by default) does not overflow.

    Inputs: ``proj_e_s [n_s, D], proj_e_t [n_t, D], proj_c_s [n_s, D], proj_c_t [n_t, D]``
    (outputs of the projection head g). Output: scalar.
    """

    def __init__(self, tau_p: float = 0.01, negative: str = "same", level: str = "prototype"):
        super().__init__()
        if negative not in ("same", "other"):
            raise ValueError(f"negative must be 'same' or 'other', not {negative!r}")
        if level not in ("prototype", "sample"):
            raise ValueError(f"level must be 'prototype' or 'sample', not {level!r}")
        if tau_p <= 0:
            raise ValueError(f"tau_p must be > 0, not {tau_p}")
        self.tau_p = tau_p
        self.negative = negative
        self.level = level

    @staticmethod
    def prototype(z: Tensor) -> Tensor:
        """L2-normalised mean of the rows of ``z``, Eq. (4)."""
        return F.normalize(z.mean(dim=0), dim=0)  # (4)

    def _direction(self, anchor: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
        """Anchor ``[D]`` (a prototype) or ``[n, D]`` (samples; mean over them)."""
        logits = torch.stack([anchor @ positive, anchor @ negative]) / self.tau_p
        return (torch.logsumexp(logits, dim=0) - logits[0]).mean()  # (5), one direction

    @in_float32  # bf16 would tie the logits / kernels (emodna.losses.in_float32)
    def forward(
        self, proj_e_s: Tensor, proj_e_t: Tensor, proj_c_s: Tensor, proj_c_t: Tensor
    ) -> Tensor:
        pe_s, pe_t = self.prototype(proj_e_s), self.prototype(proj_e_t)
        pc_s, pc_t = self.prototype(proj_c_s), self.prototype(proj_c_t)
        neg_s, neg_t = (pc_s, pc_t) if self.negative == "same" else (pc_t, pc_s)
        if self.level == "prototype":
            anchor_s, anchor_t = pe_s, pe_t
        else:  # unit rows (a no-op for the projection head's outputs)
            anchor_s, anchor_t = F.normalize(proj_e_s, dim=1), F.normalize(proj_e_t, dim=1)
        loss_s = self._direction(anchor_s, pe_t, neg_s)  # (5), S-anchored
        loss_t = self._direction(anchor_t, pe_s, neg_t)  # (5), T-anchored
        return loss_s + loss_t  # two-way: the sum

    def extra_repr(self) -> str:
        return f"tau_p={self.tau_p}, negative={self.negative!r}, level={self.level!r}"
