r"""Joint MMD over features and predictions (JAN, Long et al. 2017), the JAN baseline's term.

>>> value = JMMD()(f_s, logits_s, f_t, logits_t)  # -> scalar
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from emodna.alignment.mmd import gaussian_kernel_matrix, mmd_from_kernel, sq_dists
from emodna.losses import in_float32


class JMMD(nn.Module):
    r"""Joint MMD^2 over (features, softmax outputs) (JAN, Long et al. 2017).

    The joint kernel is the **product** of a kernel on the features and one on the predictions:

    .. math::
        k\big((z, y), (z', y')\big) = \Big[\sum_i \exp\!\big(-\|z-z'\|^2/(m_i b_0)\big)\Big]
            \cdot \exp\!\big(-\|y-y'\|^2 / (2\sigma_y^2)\big)

    with :math:`b_0` as in :class:`MKMMD` (adaptive, over the joint feature set) and a fixed
    :math:`\sigma_y = 0.92` on the softmax outputs (thuml's JAN defaults). Biased estimator,
    like :class:`MKMMD`. The softmax is taken here and is *not* detached (JAN adapts the
    classifier too).

    Inputs: ``f_s [n_s, D], logits_s [n_s, K], f_t [n_t, D], logits_t [n_t, K]``. Output: scalar.
    """

    def __init__(
        self, multipliers: Sequence[float] = (0.25, 0.5, 1.0, 2.0, 4.0), sigma_y: float = 0.92
    ):
        super().__init__()
        self.multipliers = tuple(float(m) for m in multipliers)
        self.sigma_y = sigma_y

    @in_float32  # bf16 would tie the logits / kernels (emodna.losses.in_float32)
    def forward(self, f_s: Tensor, logits_s: Tensor, f_t: Tensor, logits_t: Tensor) -> Tensor:
        k_feat = gaussian_kernel_matrix(torch.cat([f_s, f_t]), self.multipliers)
        y = torch.cat([F.softmax(logits_s, dim=1), F.softmax(logits_t, dim=1)])
        k_pred = torch.exp(-sq_dists(y) / (2.0 * self.sigma_y**2))
        return mmd_from_kernel(k_feat * k_pred, f_s.shape[0])

    def extra_repr(self) -> str:
        return f"multipliers={self.multipliers}, sigma_y={self.sigma_y}"
