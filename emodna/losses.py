r"""Losses of Emo-DNA (Ye et al., ACM MM 2023) and of the alignment baselines.

Equation numbers are the paper's; each is cited beside the line that implements it.

Emo-DNA's objective (11)-(12), put together by ``emodna.methods``::

    L = L_e (2) + L_c (3) + L_dec (4)-(5) + L_align,
    L_align = MK-MMD(E^S, E^T) (10) + alpha_1 * SupCon(source + confident target) (9),

with the confident target samples chosen by an adaptive threshold (6)-(8).

Conventions used throughout:

* Corpus / domain labels: 0 = source, 1 = target (for ``phi_c`` and for the baseline
  discriminators alike).
* Source and target batches may differ in size; every two-sample loss here accepts that.
* Losses that take features expect raw feature tensors ``[N, D]``; losses that take
  predictions take *logits* and apply the softmax themselves, except :class:`AdaptiveThreshold`,
  which takes probabilities.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from emodna.errors import DivergedError

__all__ = [
    "emotion_ce",
    "corpus_ce",
    "PrototypeDecoupling",
    "AdaptiveThreshold",
    "SupConLoss",
    "gaussian_kernel_matrix",
    "mmd_from_kernel",
    "MKMMD",
    "GradientReverseFunction",
    "grad_reverse",
    "GradientReverse",
    "DomainDiscriminator",
    "DANNLoss",
    "JMMD",
    "CDANLoss",
    "BSPPenalty",
    "check_finite",
]

# ---------------------------------------------------------------------------------------------
# Classification terms
# ---------------------------------------------------------------------------------------------


def emotion_ce(logits_s: Tensor, labels_s: Tensor, weight: Tensor | None = None) -> Tensor:
    r"""Emotion loss on labeled source samples, Eq. (2): :math:`\mathrm{CE}(\phi_e(E^S), y^S)`, mean over the batch.

    With ``weight`` (one per class), the weighted mean :math:`\sum_i w_{y_i} \ell_i / \sum_i w_{y_i}`
    (PyTorch's convention), e.g. inverse class frequencies for class balance."""
    return F.cross_entropy(logits_s, labels_s, weight=weight)  # (2)


def corpus_ce(logits_s: Tensor, logits_t: Tensor) -> Tensor:
    r"""Corpus loss, Eq. (3): cross-entropy of :math:`\phi_c(C)` against corpus labels 0 (source) and 1 (target).

    The two batches are concatenated, so the value is the mean over all ``n_s + n_t`` samples.
    """
    logits = torch.cat([logits_s, logits_t])
    labels = torch.cat(
        [
            logits_s.new_zeros(logits_s.shape[0], dtype=torch.long),
            logits_t.new_ones(logits_t.shape[0], dtype=torch.long),
        ]
    )
    return F.cross_entropy(logits, labels)  # (3)


# ---------------------------------------------------------------------------------------------
# Contrastive emotion decoupling (4)-(5)
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Adaptive threshold pseudo-labelling (6)-(8)
# ---------------------------------------------------------------------------------------------


class AdaptiveThreshold(nn.Module):
    r"""Self-adaptive global confidence threshold (FreeMatch-style EMA), Eqs. (6)-(8).

    .. math::
        \tau_0 = 1 / K \qquad (6)

        \tau_t = \lambda\,\tau_{t-1} + (1 - \lambda)\,\frac{1}{N_T}\sum_{i=1}^{N_T} \max_k p_{ik} \qquad (7)

        m_i = \mathbb{1}[\max_k p_{ik} \ge \tau_t],\quad \hat y_i = \arg\max_k p_{ik} \qquad (8)

    with ``K = n_classes``, ``lambda = momentum`` and ``p`` the target batch's softmax outputs.
    Call :meth:`update` once per target batch (before :meth:`mask`, as in FreeMatch). ``tau`` is
    a buffer, so it is saved in and restored from ``state_dict``.

    ``fixed=0.9`` turns it into a constant threshold (the ``fixed_threshold`` ablation):
    ``tau`` starts at ``fixed`` and :meth:`update` leaves it alone.
    """

    tau: Tensor

    def __init__(self, n_classes: int, momentum: float = 0.999, fixed: float | None = None):
        super().__init__()
        if n_classes < 2:
            raise ValueError(f"n_classes must be >= 2, not {n_classes}")
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], not {momentum}")
        self.n_classes = n_classes
        self.momentum = momentum
        self.fixed = fixed
        init = 1.0 / n_classes if fixed is None else float(fixed)  # (6)
        self.register_buffer("tau", torch.tensor(init, dtype=torch.float32))

    @torch.no_grad()
    def update(self, probs_target: Tensor) -> Tensor:
        """One EMA step on a target batch of probabilities ``[N, K]``; returns the new ``tau`` (a copy)."""
        if self.fixed is None and probs_target.shape[0] > 0:
            confidence = probs_target.detach().max(dim=1).values.mean().to(self.tau)
            self.tau.mul_(self.momentum).add_((1.0 - self.momentum) * confidence)  # (7)
        return self.tau.clone()

    @torch.no_grad()
    def mask(self, probs: Tensor) -> tuple[Tensor, Tensor]:
        """``(mask [N] bool, pseudo_labels [N] long)``: confidence >= tau, and the argmax class, Eq. (8)."""
        confidence, pseudo = probs.detach().max(dim=1)
        return confidence >= self.tau.to(confidence), pseudo  # (8)

    def extra_repr(self) -> str:
        return f"n_classes={self.n_classes}, momentum={self.momentum}, fixed={self.fixed}"


# ---------------------------------------------------------------------------------------------
# Supervised contrastive loss (9)
# ---------------------------------------------------------------------------------------------


class SupConLoss(nn.Module):
    r"""Supervised contrastive loss (Khosla et al. 2020, "L_out"), Eq. (9).

    With :math:`z` the L2-normalised features, :math:`A(i)` all samples but :math:`i` and
    :math:`P(i)\subset A(i)` those with the label of :math:`i`:

    .. math::
        L = \frac{1}{|I^+|}\sum_{i \in I^+} \frac{-1}{|P(i)|} \sum_{p\in P(i)}
            \log \frac{\exp(z_i\cdot z_p/\tau_s)}{\sum_{a\in A(i)} \exp(z_i\cdot z_a/\tau_s)}

    where :math:`I^+` are the anchors with at least one positive: the loss is the **mean over
    anchors that have a positive**, each anchor's term the mean over its positives. Self-pairs
    are excluded from numerator and denominator. Anchors without a positive contribute nothing;
    if no anchor has one the loss is 0 (still attached to the graph, so ``backward`` works).
    Features are L2-normalised here (a no-op for the projection head's outputs), and each row's
    maximum logit is subtracted before exponentiating, so ``tau_s = 0.001`` stays finite.

    Inputs: ``features [N, D]``, ``labels [N]`` (source labels and target pseudo labels,
    concatenated by the caller). Output: scalar.
    """

    def __init__(self, tau_s: float = 0.01):
        super().__init__()
        if tau_s <= 0:
            raise ValueError(f"tau_s must be > 0, not {tau_s}")
        self.tau_s = tau_s

    def forward(self, features: Tensor, labels: Tensor) -> Tensor:
        n = features.shape[0]
        self_mask = torch.eye(n, dtype=torch.bool, device=features.device)
        positives = (labels.view(-1, 1) == labels.view(1, -1)) & ~self_mask
        n_pos = positives.sum(dim=1)
        has_pos = n_pos > 0
        if not bool(has_pos.any()):
            return features.sum() * 0.0  # no anchor has a positive: 0, still differentiable
        z = F.normalize(features, dim=1)
        logits = (z @ z.T / self.tau_s).masked_fill(self_mask, float("-inf"))  # A(i) excludes i
        # subtract the row max for stability; it cancels in the log-ratio below
        logits = logits - logits.max(dim=1, keepdim=True).values.detach()
        log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)  # log of the ratio in (9)
        # masked_fill, not multiply: the diagonal is -inf and -inf * 0 would be nan
        pos_log_prob = log_prob.masked_fill(~positives, 0.0).sum(dim=1)
        per_anchor = -pos_log_prob[has_pos] / n_pos[has_pos]
        return per_anchor.mean()  # (9)

    def extra_repr(self) -> str:
        return f"tau_s={self.tau_s}"


# ---------------------------------------------------------------------------------------------
# Kernel two-sample discrepancies: MK-MMD (10) and JMMD
# ---------------------------------------------------------------------------------------------


def _sq_dists(z: Tensor) -> Tensor:
    """Pairwise squared Euclidean distances of the rows of ``z``, exact (no cancellation), ``[N, N]``."""
    return (z.unsqueeze(0) - z.unsqueeze(1)).pow(2).sum(dim=-1)


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
    d2 = _sq_dists(z)
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

    def forward(self, f_s: Tensor, f_t: Tensor) -> Tensor:
        kernel = gaussian_kernel_matrix(torch.cat([f_s, f_t]), self.multipliers, self.base)
        return mmd_from_kernel(kernel, f_s.shape[0])  # (10)

    def extra_repr(self) -> str:
        return f"multipliers={self.multipliers}, base={self.base}"


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

    def forward(self, f_s: Tensor, logits_s: Tensor, f_t: Tensor, logits_t: Tensor) -> Tensor:
        k_feat = gaussian_kernel_matrix(torch.cat([f_s, f_t]), self.multipliers)
        y = torch.cat([F.softmax(logits_s, dim=1), F.softmax(logits_t, dim=1)])
        k_pred = torch.exp(-_sq_dists(y) / (2.0 * self.sigma_y**2))
        return mmd_from_kernel(k_feat * k_pred, f_s.shape[0])

    def extra_repr(self) -> str:
        return f"multipliers={self.multipliers}, sigma_y={self.sigma_y}"


# ---------------------------------------------------------------------------------------------
# Adversarial baselines: gradient reversal, discriminator, DANN, CDAN; and BSP
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Guard
# ---------------------------------------------------------------------------------------------


def check_finite(terms: Mapping[str, Tensor | float], where: str = "") -> None:
    """Raise :class:`DivergedError` naming the first loss term that is NaN or infinite.

    ``where`` is appended to the term, e.g. ``check_finite(terms, where="at epoch 3")`` gives
    "loss term 'mmd' became nan at epoch 3; ...".
    """
    for name, value in terms.items():
        t = torch.as_tensor(value).detach()
        if bool(torch.isfinite(t).all()):
            continue
        kind = "nan" if bool(torch.isnan(t).any()) else "inf"
        place = f" {where.strip()}" if where.strip() else ""
        raise DivergedError(
            f"loss term {name!r} became {kind}{place}; "
            "try a lower learning rate or a larger temperature / kernel bandwidth",
            term=name,
        )
