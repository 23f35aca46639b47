r"""Losses of Emo-DNA (Ye et al., ACM MM 2023): the classification terms and a guard; the
alignment terms are in ``emodna.alignment``, one module per method.

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

import functools
from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from emodna.errors import DivergedError

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
# Mixed precision
# ---------------------------------------------------------------------------------------------


def in_float32(forward: Callable) -> Callable:
    """Decorate a loss's ``forward`` so it runs in float32 under ``torch.autocast`` (TrainConfig
    ``amp: bf16``): its half-precision tensor arguments are cast up and autocast is off inside.

    bf16 keeps 8 bits of mantissa: a cosine of 0.95 divided by a temperature of 0.01 (SupCon
    (9), decoupling (5)) is 95 in steps of 0.5 in bf16, so logits closer than that are tied;
    the Gaussian kernels of MK-MMD (10) exponentiate distances the same way. Without autocast
    the cast is a no-op."""

    def up(a):  # bf16 / fp16 to float32; float64 (the hand-value tests) stays
        return a.float() if isinstance(a, Tensor) and a.dtype in (torch.bfloat16, torch.half) else a

    @functools.wraps(forward)
    def wrapper(self, *args, **kwargs) -> Tensor:
        device = next(a for a in (*args, *kwargs.values()) if isinstance(a, Tensor)).device.type
        with torch.autocast(device, enabled=False):
            return forward(self, *map(up, args), **{k: up(v) for k, v in kwargs.items()})

    return wrapper


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
