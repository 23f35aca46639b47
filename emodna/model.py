"""The Emo-DNA network (Ye et al., ACM MM 2023), one model for Emo-DNA, its ablations and the baselines.

Shapes, with ``B`` the batch, ``F`` the MFCC count (40) and ``T`` the MFCC frame count::

    x [B, F, T]
      └─ backbone: 3 x (Conv1d k=3 -> BatchNorm1d -> ReLU -> Dropout -> MaxPool1d(2))   [B, T//8, 64]
           ├─ emotion_encoder: TCN, 5 residual blocks, k=2, dilations 1..16, mean over time -> E [B, 64]
           └─ corpus_encoder: Bi-LSTM(64 per direction), mean over time, Linear(128, 64)      -> C [B, 64]
    projection g (shared):   E -> proj_e,  C -> proj_c   (L2-normalised, [B, proj_dim])
    emotion_classifier phi_e: E -> logits_e [B, n_classes]
    corpus_classifier  phi_c: C -> logits_c [B, 2]        (corpus label 0 = source, 1 = target)

Both encoders pool over time, so source and target batches may have different lengths. The
submodule names above are the ones methods use to pick parameters; keep them.

How BatchNorm sees the two corpora is the ``bn`` argument (``TrainConfig.bn``):

* ``separate`` (the paper's code): one BatchNorm; source and target batches go through the
  model one after the other, so in training each is normalised by its own batch statistics,
  while at test time the running statistics are a mixture of both corpora.
* ``joint``: one BatchNorm; source and target go through as one batch (``emodna.methods``
  crops both to the shorter clip length), so training and test statistics match.
* ``adabn``: shared affine parameters, running statistics kept per corpus; the target is
  evaluated with the target's own statistics (AdaBN, Li et al. 2016).
* ``dsbn``: affine parameters and running statistics per corpus (domain-specific
  BatchNorm, Chang et al. 2019).

With ``adabn`` / ``dsbn`` the model has a current domain (:meth:`EmoDNA.set_domain`, 0 =
source, 1 = target); a trained model predicts with the target's (the corpus it was adapted to).

``FunctionalsLR`` is the classical baseline as a module with the same ``predict_logits``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from emodna.config import BN_MODES

SOURCE, TARGET = 0, 1

__all__ = [
    "DomainBatchNorm1d",
    "FunctionalsLR",
    "EmoDNA",
    "Output",
    "Backbone",
    "TemporalBlock",
    "TCN",
    "CorpusEncoder",
    "ProjectionHead",
]


@dataclass
class Output:
    """Everything one forward pass gives: features, logits and projections."""

    e: Tensor  # emotion features E [B, channels]
    c: Tensor  # corpus features C [B, channels]
    logits_e: Tensor  # phi_e(E) [B, n_classes]
    logits_c: Tensor  # phi_c(C) [B, 2]
    proj_e: Tensor  # g(E), unit norm [B, proj_dim]
    proj_c: Tensor  # g(C), unit norm [B, proj_dim]


class DomainBatchNorm1d(nn.Module):
    """BatchNorm1d with running statistics per domain (0 = source, 1 = target).

    ``affine_per_domain=False`` shares gamma and beta (AdaBN); ``True`` gives each domain its
    own (DSBN). ``domain`` picks the statistics (and affine parameters) a forward pass uses.
    """

    def __init__(
        self, channels: int, affine_per_domain: bool, momentum: float = 0.1, eps: float = 1e-5
    ):
        super().__init__()
        n_affine = 2 if affine_per_domain else 1
        self.weight = nn.Parameter(torch.ones(n_affine, channels))
        self.bias = nn.Parameter(torch.zeros(n_affine, channels))
        self.register_buffer("running_mean", torch.zeros(2, channels))
        self.register_buffer("running_var", torch.ones(2, channels))
        self.momentum, self.eps = momentum, eps
        self.domain = SOURCE

    def forward(self, x: Tensor) -> Tensor:
        d = self.domain
        a = d if self.weight.shape[0] == 2 else 0
        # running_mean[d] is a view: F.batch_norm updates that domain's row in place
        return F.batch_norm(
            x,
            self.running_mean[d],
            self.running_var[d],
            self.weight[a],
            self.bias[a],
            self.training,
            self.momentum,
            self.eps,
        )


class Dropout(nn.Dropout):
    """``nn.Dropout`` with its training mask drawn from 15-bit random integers: the same
    distribution as ``F.dropout`` up to p rounded to a multiple of 2**-15 (0.1 becomes
    0.100006), kept values scaled by 1 / (1 - p), but a different random stream, so runs are
    equivalent in distribution, not bit-identical (bench/equivalence.py, docs/scaling.md).

    Why: drawing the random numbers is most of dropout's cost on the CPU, one generator call
    per mask element for ``F.dropout``'s ``bernoulli_`` and for ``torch.rand``. ``random_()``
    on int32 gives 31 random bits per call (uniform on [0, 2**31)); with bit 15 cleared, each
    int32 read as two int16 is two independent integers uniform on [0, 2**15), so one call
    serves two mask elements, and a mask element is dropped when its integer is below
    ``round(p * 2**15)``.
    """

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0:
            return x
        if self.p >= 1:  # F.dropout's p = 1: everything dropped (1 / (1 - p) would divide by 0)
            return x * 0
        n = x.numel()
        bits = torch.empty((n + 1) // 2, dtype=torch.int32, device=x.device).random_()
        halves = bits.bitwise_and_(0x7FFF7FFF).view(torch.int16)[:n]  # each on [0, 2**15)
        # the comparison writes 1.0 / 0.0 straight into x's dtype: converting a bool mask
        # with .to() is a slow path that cost more than the comparison (docs/scaling.md)
        keep = torch.ge(halves.view(x.shape), round(self.p * 2**15), out=torch.empty_like(x))
        return x * keep.mul_(1.0 / (1.0 - self.p))


class _PairMax(torch.autograd.Function):
    """max(x[:, 2k], x[:, 2k+1]) over the frames of ``x [B, T, C]`` (time before channels),
    with MaxPool1d's gradient: all of it to the first frame of a pair unless the second is
    larger (so a tie goes to the first). An odd last frame is dropped, as by MaxPool1d(2)."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        batch, frames, channels = x.shape
        pairs = x[:, : frames // 2 * 2].view(batch, frames // 2, 2, channels)
        first, second = pairs[:, :, 0], pairs[:, :, 1]  # each a run of C contiguous values
        # 1.0 where the second frame wins, in x's dtype (a bool mask's .to() is a slow path)
        ctx.save_for_backward(torch.lt(first, second, out=torch.empty_like(first)))
        ctx.frames = frames
        return torch.maximum(first, second)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (to_second,) = ctx.saved_tensors
        batch, half, channels = grad.shape
        out = grad.new_empty(batch, ctx.frames, channels)
        if ctx.frames % 2:
            out[:, -1] = 0
        pairs = out[:, : 2 * half].view(batch, half, 2, channels)
        # exact: grad * 1 or grad * 0 to the second, and grad minus that (grad or 0) to the first
        torch.mul(grad, to_second, out=pairs[:, :, 1])
        torch.sub(grad, pairs[:, :, 1], out=pairs[:, :, 0])
        return out


class PairMaxPool(nn.Module):
    """``MaxPool1d(2)`` over the frames of ``[B, T, C]`` as the elementwise max of the even and
    the odd frames: the same values, and the same gradient, ties included. With time before
    channels, each frame is C contiguous values, so both passes run on whole vectors: about
    4x faster forward + backward on the CPU than the same max over the last axis of
    ``[B, C, T]`` (strided pairs), itself 1.7x faster than ``max_pool1d``'s kernel, whose cost
    is its indices (docs/scaling.md)."""

    def forward(self, x: Tensor) -> Tensor:
        return _PairMax.apply(x)


def time_major_conv(conv: nn.Conv1d, x: Tensor) -> Tensor:
    """``conv`` (its own padding and dilation) over the frames of ``x [B, T, C_in]`` (time
    before channels, contiguous), ``-> [B, T', C_out]`` contiguous: the numbers of
    ``conv(x.transpose(1, 2)).transpose(1, 2)``, computed as a 2-D convolution on the
    channels-last view of x, so oneDNN reads and writes that layout without reordering it
    (docs/scaling.md)."""
    nhwc = x.permute(0, 2, 1).unsqueeze(2)  # [B, C_in, 1, T] in channels-last memory
    out = F.conv2d(
        nhwc,
        conv.weight.unsqueeze(2),
        conv.bias,
        padding=(0, conv.padding[0]),
        dilation=(1, conv.dilation[0]),
    )
    return out.squeeze(2).permute(0, 2, 1)


def _norm_layer(bn: str) -> Callable[[int], nn.Module]:
    if bn in ("separate", "joint"):
        return nn.BatchNorm1d
    if bn in ("adabn", "dsbn"):
        return lambda channels: DomainBatchNorm1d(channels, affine_per_domain=bn == "dsbn")
    raise ValueError(f"unknown bn mode {bn!r}; use one of {', '.join(BN_MODES)}")


class Backbone(nn.Sequential):
    """Three blocks of Conv1d(k=3, padding=1) -> BatchNorm1d -> ReLU -> Dropout -> MaxPool1d(2).

    ``[B, in_channels, T] -> [B, T // 8, channels]``: the output has time before channels, the
    layout the TCN and the LSTM read. T must be at least 8.

    Each block runs as Conv1d -> BatchNorm1d -> Dropout -> MaxPool1d(2) -> ReLU: the same
    values and gradients, since ReLU commutes with dropout's scaling by 0 or 1 / (1 - p) and
    with a max, and it then runs on half the frames. All three blocks run on ``[B, T, C]``
    (:func:`time_major_conv`, BatchNorm over ``B*T`` rows, the pool over pairs of frames):
    the same function as on ``[B, C, T]``, per channel the same statistics, faster on the CPU
    (docs/scaling.md); only the rounding order of the convolutions and the positions that
    dropout's draws land on differ. The layers are this Sequential's children, so the state-dict
    names are those of the ``[B, C, T]`` form.
    """

    def __init__(
        self,
        in_channels: int = 40,
        channels: int = 64,
        dropout: float = 0.1,
        n_blocks: int = 3,
        norm: Callable[[int], nn.Module] = nn.BatchNorm1d,
    ):
        layers: list[nn.Module] = []
        for i in range(n_blocks):
            layers += [
                nn.Conv1d(in_channels if i == 0 else channels, channels, kernel_size=3, padding=1),
                norm(channels),
                Dropout(dropout),
                PairMaxPool(),
                nn.ReLU(inplace=True),
            ]
        super().__init__(*layers)

    def forward(self, x: Tensor) -> Tensor:
        h = x.transpose(1, 2).contiguous()  # [B, T, F]
        for conv, norm, drop, pool, relu in zip(*[iter(self)] * 5, strict=True):
            h = relu(pool(drop(_rows(norm, time_major_conv(conv, h)))))
        return h


def causal_conv(conv: nn.Conv1d, x: Tensor) -> Tensor:
    """``conv`` (kernel k, dilation d, no padding of its own) applied causally along time to
    ``x [B, T, C_in]`` (time before channels), ``-> [B, T, C_out]``: the output at t is
    ``sum_j W[:, :, j] x[t - (k-1-j) d] + b``, zeros before the first frame; the same numbers
    as ``conv`` with padding ``(k-1) d`` and its last ``(k-1) d`` outputs cut off.

    Computed as one matmul over the k time-shifted copies of x stacked on the channel axis:
    at the TCN's sizes (64 channels, ~23 frames) the CPU runs that faster than a dilated
    convolution plus the cut (docs/scaling.md)."""
    k, d = conv.kernel_size[0], conv.dilation[0]
    frames = x.shape[1]
    padded = F.pad(x, (0, 0, (k - 1) * d, 0))
    taps = torch.cat([padded[:, j * d : j * d + frames] for j in range(k)], dim=2)  # [B, T, k*C_in]
    weight = conv.weight.permute(0, 2, 1).reshape(conv.out_channels, -1)  # [C_out, k*C_in]
    return F.linear(taps, weight, conv.bias)


def _rows(norm: nn.Module, x: Tensor) -> Tensor:
    """BatchNorm over ``x [B, T, C]`` as ``B*T`` rows of C channels: per channel the same
    statistics as BatchNorm1d over ``[B, C, T]``."""
    return norm(x.reshape(-1, x.shape[2])).view(x.shape)


class TemporalBlock(nn.Module):
    """Residual TCN block (Bai et al. 2018) with BatchNorm in place of weight norm, on
    ``[B, T, C]`` (time before channels, as the backbone gives it).

    Two rounds of causal dilated conv -> BatchNorm1d -> ReLU -> Dropout, plus the input
    (through a 1x1 conv when the channel count changes), then ReLU. Length is kept. The
    convolutions are ``nn.Conv1d`` parameters applied by :func:`causal_conv`.
    """

    # the state-dict names of checkpoints written before the block ran on [B, T, C]
    _OLD_NAMES = {"net.0.": "conv1.", "net.2.": "norm1.", "net.5.": "conv2.", "net.7.": "norm2."}

    def __init__(
        self,
        in_channels: int,
        channels: int,
        kernel_size: int,
        dilation: int,
        dropout: float,
        norm: Callable[[int], nn.Module] = nn.BatchNorm1d,
    ):
        super().__init__()
        self.conv1 = nn.Conv1d(in_channels, channels, kernel_size, dilation=dilation)
        self.norm1 = norm(channels)
        self.drop1 = Dropout(dropout)
        self.conv2 = nn.Conv1d(channels, channels, kernel_size, dilation=dilation)
        self.norm2 = norm(channels)
        self.drop2 = Dropout(dropout)
        self.downsample = (
            nn.Conv1d(in_channels, channels, 1) if in_channels != channels else nn.Identity()
        )

    def forward(self, x: Tensor) -> Tensor:
        y = self.drop1(F.relu(_rows(self.norm1, causal_conv(self.conv1, x))))
        y = self.drop2(F.relu(_rows(self.norm2, causal_conv(self.conv2, y))))
        skip = causal_conv(self.downsample, x) if isinstance(self.downsample, nn.Conv1d) else x
        return F.relu(y + skip)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for old, new in self._OLD_NAMES.items():
            for key in [k for k in state_dict if k.startswith(prefix + old)]:
                state_dict[prefix + new + key[len(prefix + old) :]] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class TCN(nn.Module):
    """Emotion encoder: TCN blocks with dilations ``2**i`` then a mean over time. ``[B, T, C] -> [B, C]``."""

    def __init__(
        self,
        channels: int = 64,
        n_blocks: int = 5,
        kernel_size: int = 2,
        dropout: float = 0.1,
        norm: Callable[[int], nn.Module] = nn.BatchNorm1d,
    ):
        super().__init__()
        self.blocks = nn.Sequential(
            *(
                TemporalBlock(channels, channels, kernel_size, 2**i, dropout, norm)
                for i in range(n_blocks)
            )
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.blocks(x).mean(dim=1)


class CorpusEncoder(nn.Module):
    """Corpus encoder: Bi-LSTM, mean over time of both directions, Linear(2*hidden, out). ``[B, T, C] -> [B, out]``."""

    def __init__(self, channels: int = 64, hidden: int = 64, out_dim: int = 64):
        super().__init__()
        self.lstm = nn.LSTM(channels, hidden, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(2 * hidden, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        h, _ = self.lstm(x)  # [B, T, 2*hidden]
        return self.fc(h.mean(dim=1))


class ProjectionHead(nn.Module):
    """g: Linear -> ReLU -> Linear, output L2-normalised."""

    def __init__(self, in_dim: int = 64, proj_dim: int = 64):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_dim, in_dim), nn.ReLU(inplace=True), nn.Linear(in_dim, proj_dim)
        )

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(self.net(x), dim=1)


class EmoDNA(nn.Module):
    """Backbone, emotion encoder (TCN), corpus encoder (Bi-LSTM), shared projection g, phi_e, phi_c.

    ``forward(x)`` with ``x`` of shape ``[B, n_mfcc, T]`` (T >= 8) returns an :class:`Output`.
    ``features(x)`` returns E alone and skips the corpus branch (for inference).
    """

    def __init__(
        self,
        n_mfcc: int = 40,
        n_classes: int = 2,
        channels: int = 64,
        dropout: float = 0.1,
        lstm_hidden: int = 64,
        proj_dim: int = 64,
        bn: str = "separate",
    ):
        super().__init__()
        self.n_mfcc = n_mfcc
        self.n_classes = n_classes
        self.bn = bn
        norm = _norm_layer(bn)
        self.backbone = Backbone(n_mfcc, channels, dropout, norm=norm)
        self.emotion_encoder = TCN(channels, n_blocks=5, kernel_size=2, dropout=dropout, norm=norm)
        self.corpus_encoder = CorpusEncoder(channels, lstm_hidden, out_dim=channels)
        self.projection = ProjectionHead(channels, proj_dim)
        self.emotion_classifier = nn.Linear(channels, n_classes)
        self.corpus_classifier = nn.Linear(channels, 2)

    def set_domain(self, domain: int) -> None:
        """Which corpus's BatchNorm statistics the next passes use (``adabn`` / ``dsbn`` only)."""
        for m in self.modules():
            if isinstance(m, DomainBatchNorm1d):
                m.domain = domain

    def features(self, x: Tensor) -> Tensor:
        """Emotion features E ``[B, channels]``."""
        return self.emotion_encoder(self.backbone(x))

    def predict_logits(self, x: Tensor) -> Tensor:
        """phi_e(E) ``[B, n_classes]``, without the corpus branch."""
        return self.emotion_classifier(self.features(x))

    def forward(self, x: Tensor) -> Output:
        h = self.backbone(x)
        e = self.emotion_encoder(h)
        c = self.corpus_encoder(h)
        return Output(
            e=e,
            c=c,
            logits_e=self.emotion_classifier(e),
            logits_c=self.corpus_classifier(c),
            proj_e=self.projection(e),
            proj_c=self.projection(c),
        )


class FunctionalsLR(nn.Module):
    """The classical baseline as a module: MFCC functionals -> per-corpus standardisation -> linear.

    ``functionals(x)`` is the mean and std over time of each coefficient, ``[B, 2F]``. Each
    corpus is standardised by its own statistics (buffers ``mean``, ``std`` ``[2, 2F]``, row 0
    the source's, row 1 the target's; :meth:`set_domain` picks the row, the target by default
    after training), the linear layer holds the weights scikit-learn's
    LogisticRegression fitted on the source (``emodna.classical.fit_classical``). For two classes
    sklearn fits one weight vector w, i.e. P(class 1) = sigmoid(w.x + b); the logits
    ``[0, w.x + b]`` give exactly that under a softmax.
    """

    def __init__(self, n_mfcc: int = 40, n_classes: int = 2):
        super().__init__()
        self.n_mfcc, self.n_classes = n_mfcc, n_classes
        self.bn = "none"
        self.domain = TARGET
        self.register_buffer("mean", torch.zeros(2, 2 * n_mfcc))
        self.register_buffer("std", torch.ones(2, 2 * n_mfcc))
        self.linear = nn.Linear(2 * n_mfcc, 1 if n_classes == 2 else n_classes)

    @staticmethod
    def functionals(x: Tensor) -> Tensor:
        return torch.cat([x.mean(dim=2), x.std(dim=2, correction=0)], dim=1)

    def set_domain(self, domain: int) -> None:
        self.domain = domain

    def predict_logits(self, x: Tensor) -> Tensor:
        z = self.linear((self.functionals(x) - self.mean[self.domain]) / self.std[self.domain])
        return torch.cat([torch.zeros_like(z), z], dim=1) if self.n_classes == 2 else z
