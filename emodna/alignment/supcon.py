r"""Emo-DNA's sample-level alignment: the adaptive confidence threshold, Eqs. (6)-(8), and the
supervised contrastive loss over source and confident target samples, Eq. (9).

    >>> threshold, supcon = AdaptiveThreshold(n_classes=2, momentum=0.999), SupConLoss(tau_s=0.01)
    >>> threshold.update(probs_t); confident, pseudo = threshold.mask(probs_t)
    >>> value = supcon(torch.cat([z_s, z_t[confident]]), torch.cat([y_s, pseudo[confident]]))
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from emodna.losses import in_float32


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

    @in_float32  # bf16 would tie the logits / kernels (emodna.losses.in_float32)
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
