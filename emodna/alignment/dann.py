r"""Domain-adversarial training (DANN, Ganin et al. 2016): gradient reversal, the domain
discriminator (shared with CDAN) and the DANN loss.

    >>> loss = DANNLoss(DomainDiscriminator(in_dim=64))
    >>> loss.grl.coeff = 0.5  # scheduled by the method
    >>> value = loss(f_s, f_t)  # -> scalar
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class GradientReverseFunction(torch.autograd.Function):
    r"""Identity forward; backward multiplies the gradient by :math:`-\text{coeff}` (Ganin & Lempitsky 2015)."""

    @staticmethod
    def forward(ctx, x: Tensor, coeff: float = 1.0) -> Tensor:  # type: ignore[override]
        ctx.coeff = float(coeff)
        return x * 1.0

    @staticmethod
    def backward(ctx, grad_output: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        return grad_output.neg() * ctx.coeff, None


def grad_reverse(x: Tensor, coeff: float = 1.0) -> Tensor:
    """Functional gradient reversal: ``x`` forward, ``-coeff * grad`` backward."""
    return GradientReverseFunction.apply(x, coeff)


class GradientReverse(nn.Module):
    """Gradient reversal layer. ``coeff`` is a plain attribute, so a method can schedule it
    (e.g. DANN's ``2 / (1 + exp(-10 p)) - 1``) by assigning to it."""

    def __init__(self, coeff: float = 1.0):
        super().__init__()
        self.coeff = coeff

    def forward(self, x: Tensor) -> Tensor:
        return grad_reverse(x, self.coeff)

    def extra_repr(self) -> str:
        return f"coeff={self.coeff}"


class DomainDiscriminator(nn.Sequential):
    """Linear -> BatchNorm -> ReLU, twice, then Linear(hidden, 1). Returns domain *logits* ``[N]``
    (positive means "target"); no sigmoid, so the losses can use the stable BCE-with-logits."""

    def __init__(self, in_dim: int, hidden: int = 64):
        super().__init__(
            nn.Linear(in_dim, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x).squeeze(1)


class DANNLoss(nn.Module):
    r"""Domain-adversarial loss (DANN, Ganin et al. 2016).

    .. math::
        L = \tfrac12\,\mathrm{BCE}\big(D(R(f^s)), 0\big) + \tfrac12\,\mathrm{BCE}\big(D(R(f^t)), 1\big)

    with :math:`R` a gradient reversal layer (``self.grl``, coefficient ``coeff``), each BCE the
    mean over its own domain's batch. Minimising ``L`` trains the discriminator to tell the
    corpora apart and, through the reversal, the feature extractor to confuse it.

    Inputs: ``f_s [n_s, D], f_t [n_t, D]``. Output: scalar.
    """

    def __init__(self, discriminator: nn.Module, coeff: float = 1.0):
        super().__init__()
        self.discriminator = discriminator
        self.grl = GradientReverse(coeff)

    def forward(self, f_s: Tensor, f_t: Tensor) -> Tensor:
        d = self.discriminator(self.grl(torch.cat([f_s, f_t])))
        d_s, d_t = d[: f_s.shape[0]], d[f_s.shape[0] :]
        loss_s = F.binary_cross_entropy_with_logits(d_s, torch.zeros_like(d_s))
        loss_t = F.binary_cross_entropy_with_logits(d_t, torch.ones_like(d_t))
        return 0.5 * (loss_s + loss_t)
