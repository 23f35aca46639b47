"""The Emo-DNA network (Ye et al., ACM MM 2023), one model for Emo-DNA, its ablations and the baselines.

Shapes, with ``B`` the batch, ``F`` the MFCC count (40) and ``T`` the MFCC frame count::

    x [B, F, T]
      └─ backbone: 3 x (Conv1d k=3 -> BatchNorm1d -> ReLU -> Dropout -> MaxPool1d(2))   [B, 64, T//8]
           ├─ emotion_encoder: TCN, 5 residual blocks, k=2, dilations 1..16, mean over time -> E [B, 64]
           └─ corpus_encoder: Bi-LSTM(64 per direction), mean over time, Linear(128, 64)      -> C [B, 64]
    projection g (shared):   E -> proj_e,  C -> proj_c   (L2-normalised, [B, proj_dim])
    emotion_classifier phi_e: E -> logits_e [B, n_classes]
    corpus_classifier  phi_c: C -> logits_c [B, 2]        (corpus label 0 = source, 1 = target)

Both encoders pool over time, so source and target batches may have different lengths. The
submodule names above are the ones methods use to pick parameters; keep them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
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


class Backbone(nn.Sequential):
    """Three blocks of Conv1d(k=3, padding=1) -> BatchNorm1d -> ReLU -> Dropout -> MaxPool1d(2).

    ``[B, in_channels, T] -> [B, channels, T // 8]``; T must be at least 8.
    """

    def __init__(
        self, in_channels: int = 40, channels: int = 64, dropout: float = 0.1, n_blocks: int = 3
    ):
        layers: list[nn.Module] = []
        for i in range(n_blocks):
            layers += [
                nn.Conv1d(in_channels if i == 0 else channels, channels, kernel_size=3, padding=1),
                nn.BatchNorm1d(channels),
                nn.ReLU(inplace=True),
                nn.Dropout(dropout),
                nn.MaxPool1d(2),
            ]
        super().__init__(*layers)


class _Chomp(nn.Module):
    """Drop the last ``size`` frames: with left+right padding of ``size``, makes a conv causal."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def forward(self, x: Tensor) -> Tensor:
        return x[:, :, : -self.size].contiguous() if self.size else x


class TemporalBlock(nn.Module):
    """Residual TCN block (Bai et al. 2018) with BatchNorm in place of weight norm.

    Two rounds of causal dilated Conv1d -> chomp -> BatchNorm1d -> ReLU -> Dropout, plus the
    input (through a 1x1 conv when the channel count changes), then ReLU. Length is kept.
    """

    def __init__(
        self, in_channels: int, channels: int, kernel_size: int, dilation: int, dropout: float
    ):
        super().__init__()
        pad = (kernel_size - 1) * dilation
        self.net = nn.Sequential(
            nn.Conv1d(in_channels, channels, kernel_size, padding=pad, dilation=dilation),
            _Chomp(pad),
            nn.BatchNorm1d(channels),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Conv1d(channels, channels, kernel_size, padding=pad, dilation=dilation),
            _Chomp(pad),
            nn.BatchNorm1d(channels),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
        )
        self.downsample = (
            nn.Conv1d(in_channels, channels, 1) if in_channels != channels else nn.Identity()
        )

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.net(x) + self.downsample(x))


class TCN(nn.Module):
    """Emotion encoder: TCN blocks with dilations ``2**i`` then a mean over time. ``[B, C, T] -> [B, C]``."""

    def __init__(
        self, channels: int = 64, n_blocks: int = 5, kernel_size: int = 2, dropout: float = 0.1
    ):
        super().__init__()
        self.blocks = nn.Sequential(
            *(
                TemporalBlock(channels, channels, kernel_size, 2**i, dropout)
                for i in range(n_blocks)
            )
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.blocks(x).mean(dim=2)


class CorpusEncoder(nn.Module):
    """Corpus encoder: Bi-LSTM, mean over time of both directions, Linear(2*hidden, out). ``[B, C, T] -> [B, out]``."""

    def __init__(self, channels: int = 64, hidden: int = 64, out_dim: int = 64):
        super().__init__()
        self.lstm = nn.LSTM(channels, hidden, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(2 * hidden, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        h, _ = self.lstm(x.transpose(1, 2))  # [B, T, 2*hidden]
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
    ):
        super().__init__()
        self.n_mfcc = n_mfcc
        self.n_classes = n_classes
        self.backbone = Backbone(n_mfcc, channels, dropout)
        self.emotion_encoder = TCN(channels, n_blocks=5, kernel_size=2, dropout=dropout)
        self.corpus_encoder = CorpusEncoder(channels, lstm_hidden, out_dim=channels)
        self.projection = ProjectionHead(channels, proj_dim)
        self.emotion_classifier = nn.Linear(channels, n_classes)
        self.corpus_classifier = nn.Linear(channels, 2)

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
