r"""Multi-kernel MMD (DAN, Long et al. 2015): Emo-DNA's feature-level alignment, Eq. (10), and the
DAN baseline's only term. The kernel helpers are shared with JAN (``emodna.alignment.jan``).

    >>> value = MKMMD(multipliers=(0.25, 0.5, 1, 2, 4))(f_s, f_t)  # [n_s, D], [n_t, D] -> scalar
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from emodna.losses import in_float32


def sq_dists(z: Tensor) -> Tensor:
    """Pairwise squared Euclidean distances of the rows of ``z``, ``[N, N]``.

    Exact (no cancellation: ``cdist``'s direct form, not ``|a|^2 + |b|^2 - 2ab``), so the
    diagonal is exactly 0; the same values as ``(z_i - z_j)^2`` summed over a broadcast
    ``[N, N, D]`` tensor, about 4x faster forward + backward (docs/scaling.md)."""
    return torch.cdist(z, z, compute_mode="donot_use_mm_for_euclid_dist").pow(2)


def gaussian_kernel_matrix(
    z: Tensor, multipliers: Sequence[float], base: float | None = None, eps: float = 1e-8
) -> Tensor:
    r"""Sum of Gaussian kernels over the rows of ``z``: :math:`K = \sum_i \exp(-d^2 / (m_i\,b))`.

    ``b`` (``base``) is the mean of all ``N*N`` squared pairwise distances of ``z`` (diagonal
    zeros included, detached, floored at ``eps``) unless given. Equivalently kernel ``i`` is
    :math:`\exp(-d^2/2\sigma_i^2)` with :math:`\sigma_i^2 = m_i b / 2`; with multipliers
    ``(0.25, 0.5, 1, 2, 4)`` that is exactly DAN's / thuml's ``GaussianKernel(alpha=2**k)``,
    ``k = -3..1``.
    """
    d2 = sq_dists(z)
    if base is None:
        b = d2.detach().mean().clamp_min(eps)
    else:
        b = torch.as_tensor(base, dtype=d2.dtype, device=d2.device)
    return sum(torch.exp(-d2 / (float(m) * b)) for m in multipliers)


def mmd_from_kernel(kernel: Tensor, n_s: int) -> Tensor:
    r"""Biased (V-statistic) MMD^2 from a kernel matrix over ``[source; target]``:
    ``mean(K_ss) + mean(K_tt) - 2 mean(K_st)``, diagonals included; any ``n_s``, ``n_t`` >= 1."""
    k_ss = kernel[:n_s, :n_s]
    k_tt = kernel[n_s:, n_s:]
    k_st = kernel[:n_s, n_s:]
    return k_ss.mean() + k_tt.mean() - 2.0 * k_st.mean()


class MKMMD(nn.Module):
    r"""Multi-kernel MMD^2 between source and target features (DAN, Long et al. 2015), Eq. (10).

    .. math::
        \mathrm{MK\text{-}MMD}^2(Z^S, Z^T) = \frac{1}{n_s^2}\sum_{i,j} k(z_i^s, z_j^s)
            + \frac{1}{n_t^2}\sum_{i,j} k(z_i^t, z_j^t) - \frac{2}{n_s n_t}\sum_{i,j} k(z_i^s, z_j^t),

        k(a, b) = \sum_{i} \exp\!\left(-\frac{\|a-b\|^2}{m_i\, b_0}\right)

    * The kernel is the **sum** (not the mean) of the Gaussian kernels, one per multiplier
      :math:`m_i` (default ``(0.25, 0.5, 1, 2, 4)``, the values the sweep searches).
    * Bandwidth base :math:`b_0`: the mean squared pairwise distance over the joint set
      :math:`Z^S \cup Z^T` (all ``N*N`` pairs including the zero diagonal, detached), recomputed
      on every call; pass ``base=`` to fix it instead.
    * The estimator is the biased V-statistic, so it is >= 0 up to rounding, exactly 0 for
      identical sets, symmetric in S and T, and fine with ``n_s != n_t``.

    Inputs: ``f_s [n_s, D], f_t [n_t, D]``. Output: scalar.
    """

    def __init__(
        self, multipliers: Sequence[float] = (0.25, 0.5, 1.0, 2.0, 4.0), base: float | None = None
    ):
        super().__init__()
        if len(multipliers) == 0 or any(m <= 0 for m in multipliers):
            raise ValueError(
                f"multipliers must be a non-empty list of positive numbers, not {multipliers!r}"
            )
        self.multipliers = tuple(float(m) for m in multipliers)
        self.base = base

    @in_float32  # bf16 would tie the logits / kernels (emodna.losses.in_float32)
    def forward(self, f_s: Tensor, f_t: Tensor) -> Tensor:
        kernel = gaussian_kernel_matrix(torch.cat([f_s, f_t]), self.multipliers, self.base)
        return mmd_from_kernel(kernel, f_s.shape[0])  # (10)

    def extra_repr(self) -> str:
        return f"multipliers={self.multipliers}, base={self.base}"
