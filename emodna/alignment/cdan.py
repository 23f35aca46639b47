r"""Conditional domain-adversarial training (CDAN, Long et al. 2018).

>>> value = CDANLoss(DomainDiscriminator(in_dim=64 * n_classes))(f_s, logits_s, f_t, logits_t)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from emodna.alignment.dann import GradientReverse


class CDANLoss(nn.Module):
    r"""Conditional domain-adversarial loss (CDAN, Long et al. 2018).

    The discriminator sees the multilinear map :math:`h = f \otimes g` (outer product of the
    features and the *detached* softmax predictions, flattened to ``D * K``) through gradient
    reversal:

    .. math::
        L = \frac{1}{n_s+n_t}\sum_i w_i\,\mathrm{BCE}\big(D(R(f_i \otimes g_i)), d_i\big),
        \qquad d_i = 0 \text{ (source)}, 1 \text{ (target)}

    With ``entropy_conditioning=True`` (CDAN+E), :math:`w_i = 1 + e^{-H(g_i)}` rescaled to sum
    to :math:`n_s + n_t`; otherwise :math:`w_i = 1`. The mean is over the concatenated batch.
    The discriminator's ``in_dim`` must be ``D * n_classes``.

    Inputs: ``f_s [n_s, D], logits_s [n_s, K], f_t [n_t, D], logits_t [n_t, K]``. Output: scalar.
    """

    def __init__(
        self, discriminator: nn.Module, entropy_conditioning: bool = False, coeff: float = 1.0
    ):
        super().__init__()
        self.discriminator = discriminator
        self.entropy_conditioning = entropy_conditioning
        self.grl = GradientReverse(coeff)

    @staticmethod
    def multilinear_map(f: Tensor, g: Tensor) -> Tensor:
        """``[N, D], [N, K] -> [N, K * D]``: row-wise outer product ``g_i f_i^T``, flattened."""
        return torch.bmm(g.unsqueeze(2), f.unsqueeze(1)).flatten(1)

    def forward(self, f_s: Tensor, logits_s: Tensor, f_t: Tensor, logits_t: Tensor) -> Tensor:
        f = torch.cat([f_s, f_t])
        g = F.softmax(torch.cat([logits_s, logits_t]), dim=1).detach()
        d = self.discriminator(self.grl(self.multilinear_map(f, g)))
        labels = torch.cat([d.new_zeros(f_s.shape[0]), d.new_ones(f_t.shape[0])])
        if self.entropy_conditioning:
            entropy = -(g * torch.log(g.clamp_min(1e-12))).sum(dim=1)
            weight = 1.0 + torch.exp(-entropy)
            weight = weight / weight.sum() * f.shape[0]
        else:
            weight = None
        return F.binary_cross_entropy_with_logits(d, labels, weight=weight)
