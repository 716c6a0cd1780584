"""Su's Conv1D residual classifier (spec §3) and the soft macro-F1 loss (§4)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from kexue.nn import keras_init

WIDTHS = (16, 16, 32, 32, 64, 64, 128, 128)
SPECTRA_POOLS = (0, 1, 2, 3, 4, 5, 6)  # MaxPool(2) after blocks 1..7: 2600 -> ... -> 20
MNIST1D_POOLS = (1, 3, 5)  # the length-40 adaptation: after blocks 2, 4, 6: 40 -> 5


class SplitSumConv(nn.Module):
    """relu(W1 x) + relu(W2 x) as one double-width conv, split in two and summed (not concat)."""

    def __init__(self, in_ch: int, f: int, dilation: int):
        super().__init__()
        self.f = f
        self.conv = nn.Conv1d(in_ch, 2 * f, 3, dilation=dilation, padding=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.conv(x))  # ReLU before the sum
        return h[:, : self.f] + h[:, self.f:]


class Block(nn.Module):
    """Three split-sum convs (dilations 1, 2, 4) plus a shortcut; no norm, no final activation."""

    def __init__(self, in_ch: int, f: int):
        super().__init__()
        self.convs = nn.Sequential(*[SplitSumConv(in_ch if i == 0 else f, f, d)
                                     for i, d in enumerate((1, 2, 4))])
        self.shortcut = nn.Conv1d(in_ch, f, 1) if in_ch != f else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.convs(x)


class TimestepDropout(nn.Module):
    """Keras Dropout(p, noise_shape=(batch, steps, 1)): one (B, 1, T) mask shared by all channels.

    ``nn.Dropout1d`` drops channels and ``nn.Dropout`` single elements; neither is this. The mask
    is drawn from ``generator`` (CPU) when given, so a resumed run replays the same masks.
    """

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = torch.empty(x.shape[0], 1, x.shape[2]).bernoulli_(1 - self.p, generator=generator)
        return x * keep.to(device=x.device, dtype=x.dtype) / (1 - self.p)


class SpectraNet(nn.Module):
    def __init__(self, n_classes: int = 4, pools=SPECTRA_POOLS, dropout: float = 0.5):
        super().__init__()
        chans = (1,) + WIDTHS
        self.blocks = nn.ModuleList(Block(chans[i], chans[i + 1]) for i in range(len(WIDTHS)))
        self.pools = frozenset(pools)
        self.dropout = TimestepDropout(dropout)
        self.fc = nn.Linear(WIDTHS[-1], 128)
        self.out = nn.Linear(128, n_classes)
        keras_init(self)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The output after every block (and its pool): for the shape tests."""
        outs = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.pools:
                x = F.max_pool1d(x, 2)  # floors odd lengths: 325 -> 162, 81 -> 40
            outs.append(x)
        return outs

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        h = self.dropout(self.features(x)[-1], generator)
        h = h.amax(dim=2)  # global max-pool over time
        return self.out(F.relu(self.fc(h)))  # logits; the softmax lives in the loss


def build_model(task: str, dropout: float = 0.5) -> SpectraNet:
    if task == "spectra":
        return SpectraNet(4, SPECTRA_POOLS, dropout)
    if task == "mnist1d":
        return SpectraNet(10, MNIST1D_POOLS, dropout)
    raise ValueError(f"unknown task {task!r} (spectra | mnist1d)")


def score_loss(logits: torch.Tensor, y: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Su's soft macro-F1 loss: -log(Σ_c ½ Σ_i y_ic p_ic / (Σ_i (y_ic + p_ic) + B·C·ε) + ε).

    Su masks y and p to column c but sums the whole (B, C) tensor with ε added to every
    element, so the inner ε enters B·C times per class (spec §4); one ε before the log.
    ½ = (1/4)·2: the argument is the soft 4-class macro-F1. At p = y the loss is
    (B·ε/2)·Σ_c 1/n_c − ε for C = 4, slightly above 0.
    """
    p = torch.softmax(logits.float(), dim=1)
    onehot = F.one_hot(y, p.shape[1]).to(p.dtype)
    per_class = (onehot * p).sum(0) / ((onehot + p).sum(0) + eps * p.numel())
    return -torch.log(0.5 * per_class.sum() + eps)
