"""Networks of the article: the Part A classifier and the Part B critics and generators.

Spectral normalisation is applied by :func:`kexue.nn.lipschitz.spectral_norm`, recipe ``su``
(5 differentiable iterations from ones, also on BN's γ) or ``original`` (PyTorch's).
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from kexue.nn.lipschitz import Recipe, reshaped_sigma, spectral_norm

_CONV = {1: nn.Conv1d, 2: nn.Conv2d}
_POOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d}
_GAP = {1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d}


class FixedRadius(nn.Module):
    """Parametrisation W ↦ r·W for a fixed r (a buffer): after spectral normalisation, σ = r."""

    def __init__(self, radius: float):
        super().__init__()
        self.register_buffer("radius", torch.tensor(float(radius)))

    def forward(self, weight: Tensor) -> Tensor:
        return self.radius * weight


class VGGClassifier(nn.Module):
    """Part A [assumption]: per width, two 3-wide convs + ReLU then 2x max-pooling; global
    average pooling; a linear head. No batch norm, so that the product of the layers' norms
    bounds the Lipschitz constant (ReLU, non-overlapping max-pooling and averaging are
    1-Lipschitz). ``dims`` 1 for sequences (N, C, L), 2 for images (N, C, H, W)."""

    def __init__(self, in_channels: int, n_classes: int, widths: tuple[int, ...], dims: int,
                 spectral: Recipe | None = None):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for w in widths:
            for _ in range(2):
                layers += [_CONV[dims](c, w, 3, padding=1), nn.ReLU()]
                c = w
            layers.append(_POOL[dims](2, ceil_mode=True))
        layers += [_GAP[dims](1), nn.Flatten(), nn.Linear(c, n_classes)]
        self.net = nn.Sequential(*layers)
        weighted = [m for m in self.net if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))]
        for m in weighted:
            # He init: without batch norm, PyTorch's default init shrinks the signal layer by
            # layer and a 7-layer net barely starts learning in a few hundred steps
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
        for m in weighted if spectral is not None else ():
            # σ(W) is held at its He-init value r instead of 1 [assumption]: with σ = 1 in
            # every layer the logits of this ReLU net stay tiny and it does not learn
            # (measured: 10-50 % on MNIST-1D); W ↦ r·W/σ(W) starts as the same function as the
            # unconstrained net with the same seed, and Π r is its Lipschitz budget
            radius = reshaped_sigma(m.weight)
            spectral_norm(m, spectral)
            parametrize.register_parametrization(m, "weight", FixedRadius(radius))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def _keras(layer: nn.Module) -> nn.Module:
    """Keras defaults, as in Su's scripts: Glorot-uniform kernels, zero biases (BN: γ 1, β 0)."""
    if isinstance(layer, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.xavier_uniform_(layer.weight)
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)
    return layer


def _normalised(layer: nn.Module, spectral: Recipe | None) -> nn.Module:
    _keras(layer)
    return layer if spectral is None else spectral_norm(layer, spectral)


class ConvCritic(nn.Module):
    """Su's critic (wgan_sn_celeba.py), any size: conv k s2 → widths[0], LeakyReLU; then per
    further width conv k s2, BN (γ normalised too under SN ``su``), LeakyReLU; flatten; a dense
    layer to 1 without bias. Convs keep an unconstrained bias, BN's β is unconstrained.
    64x64 RGB with widths (64, 128, 256, 512) and kernel 5 is Su's net."""

    def __init__(self, image_size: int, channels: int, widths: tuple[int, ...], kernel: int = 5,
                 spectral: Recipe | None = "su", batchnorm: bool = True, slope: float = 0.3):
        super().__init__()
        layers: list[nn.Module] = []
        c, size = channels, image_size
        for i, w in enumerate(widths):
            layers.append(_normalised(nn.Conv2d(c, w, kernel, 2, padding=kernel // 2), spectral))
            if i > 0 and batchnorm:  # Keras BN: momentum 0.99 -> PyTorch 0.01, ε 1e-3
                layers.append(_normalised(nn.BatchNorm2d(w, momentum=0.01, eps=1e-3), spectral))
            layers.append(nn.LeakyReLU(slope))
            c, size = w, (size + 1) // 2
        layers += [nn.Flatten(), _normalised(nn.Linear(c * size * size, 1, bias=False), spectral)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(1)


class ConvGenerator(nn.Module):
    """Su's generator: z → dense to (widths[0], s, s), BN, ReLU; per further width ConvT k s2,
    BN, ReLU; ConvT k s2 → channels, tanh. No SN. 64x64 with widths (512, 256, 128, 64)."""

    def __init__(self, image_size: int, channels: int, widths: tuple[int, ...], latent_dim: int,
                 kernel: int = 5):
        super().__init__()
        self.start = image_size // 2 ** len(widths)
        self.widths = widths
        self.dense = nn.Sequential(
            _keras(nn.Linear(latent_dim, widths[0] * self.start ** 2)),
            nn.Unflatten(1, (widths[0], self.start, self.start)),
            nn.BatchNorm2d(widths[0], momentum=0.01, eps=1e-3), nn.ReLU())
        layers: list[nn.Module] = []
        for c_in, c_out in itertools.pairwise(widths):
            layers += [_keras(nn.ConvTranspose2d(c_in, c_out, kernel, 2, kernel // 2,
                                                 output_padding=1)),
                       nn.BatchNorm2d(c_out, momentum=0.01, eps=1e-3), nn.ReLU()]
        layers += [_keras(nn.ConvTranspose2d(widths[-1], channels, kernel, 2, kernel // 2,
                                             output_padding=1)), nn.Tanh()]
        self.body = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.body(self.dense(z))


class MLPCritic(nn.Module):
    """The 2-D critic of the spec (2 → 128 → 128 → 1), built like Su's: dense, then BN (γ
    normalised too under SN ``su``) and LeakyReLU on the hidden layers; the output without bias."""

    def __init__(self, hidden: tuple[int, ...] = (128, 128), spectral: Recipe | None = "su",
                 batchnorm: bool = True, slope: float = 0.3, in_features: int = 2):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_features
        for i, h in enumerate(hidden):
            layers.append(_normalised(nn.Linear(c, h), spectral))
            if i > 0 and batchnorm:
                layers.append(_normalised(nn.BatchNorm1d(h, momentum=0.01, eps=1e-3), spectral))
            layers.append(nn.LeakyReLU(slope))
            c = h
        layers.append(_normalised(nn.Linear(c, 1, bias=False), spectral))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(1)


class MLPGenerator(nn.Module):
    """The 2-D generator of the spec (16 → 128 → 128 → 2): dense, BN, ReLU; a linear output."""

    def __init__(self, latent_dim: int = 16, hidden: tuple[int, ...] = (128, 128),
                 out_features: int = 2):
        super().__init__()
        layers: list[nn.Module] = []
        c = latent_dim
        for h in hidden:
            layers += [_keras(nn.Linear(c, h)), nn.BatchNorm1d(h, momentum=0.01, eps=1e-3),
                       nn.ReLU()]
            c = h
        layers.append(_keras(nn.Linear(c, out_features)))
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)
