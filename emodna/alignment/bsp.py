r"""Batch spectral penalization (BSP, Chen et al. 2019), added to DANN by the ``bsp`` method.

>>> value = BSPPenalty(k=1)(f_s, f_t)  # -> scalar
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class BSPPenalty(nn.Module):
    r"""Batch spectral penalization (BSP, Chen et al. 2019).

    .. math::
        L = \sum_{i=1}^{k} \sigma_i(F^S)^2 + \sum_{i=1}^{k} \sigma_i(F^T)^2

    where :math:`\sigma_1 \ge \sigma_2 \ge \dots` are the singular values of the source and of the
    target feature matrices (``[n, D]``). Added to a transfer loss (BSP + DANN in the paper).

    Inputs: ``f_s [n_s, D], f_t [n_t, D]``. Output: scalar.
    """

    def __init__(self, k: int = 1):
        super().__init__()
        if k < 1:
            raise ValueError(f"k must be >= 1, not {k}")
        self.k = k

    def forward(self, f_s: Tensor, f_t: Tensor) -> Tensor:
        s_s = torch.linalg.svdvals(f_s)[: self.k]
        s_t = torch.linalg.svdvals(f_t)[: self.k]
        return s_s.pow(2).sum() + s_t.pow(2).sum()

    def extra_repr(self) -> str:
        return f"k={self.k}"
