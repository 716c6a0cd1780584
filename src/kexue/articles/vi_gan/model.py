"""The networks of vi_gan: Su's 64x64 DCGAN (spec §3), the MLP analogue for 2-D targets and
digits, and the MLP VAE of vae_keras.py."""

from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor, nn


def _levels(image_size: int) -> int:
    """Number of stride-2 layers between 4x4 and ``image_size`` (64 → 4, 32 → 3)."""
    levels = math.log2(image_size / 4)
    if image_size < 8 or levels != int(levels):
        raise ValueError(f"image_size must be 4·2^k ≥ 8, not {image_size}")
    return int(levels)


def _norm(channels: int, batch_norm: bool) -> nn.Module:
    # TF slim BN: decay 0.9 (PyTorch momentum 0.1), ε 1e-5, γ = 1, β = 0
    return nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1) if batch_norm else nn.Identity()


class DCGANGenerator(nn.Module):
    """z → Linear (4·4·8w, no bias) → BN → ReLU → [ConvT 5x5 s2 (no bias) → BN → ReLU] × (L−1)
    → ConvT 5x5 s2 (bias) → tanh, halving channels from 8w; L = 4 at 64x64 (512-256-128-64).
    Without batch norm the hidden layers stay bias-free, as in Su's E2."""

    def __init__(self, latent_dim: int = 100, width: int = 64, channels: int = 3,
                 image_size: int = 64, batch_norm: bool = True):
        super().__init__()
        levels = _levels(image_size)
        widths = [width * 2 ** (levels - 1 - i) for i in range(levels)]  # 512, 256, 128, 64
        self.fc = nn.Linear(latent_dim, widths[0] * 16, bias=False)
        self.fc_norm = nn.BatchNorm1d(widths[0] * 16) if batch_norm else nn.Identity()
        layers: list[nn.Module] = []
        for c_in, c_out in itertools.pairwise(widths):
            layers += [_up(c_in, c_out, bias=False), _norm(c_out, batch_norm), nn.ReLU()]
        layers += [_up(widths[-1], channels, bias=True), nn.Tanh()]
        self.body = nn.Sequential(*layers)
        self.top = widths[0]
        _init_dcgan(self)

    def forward(self, z: Tensor) -> Tensor:
        h = torch.relu(self.fc_norm(self.fc(z)))
        return self.body(h.view(len(z), self.top, 4, 4))


class DCGANDiscriminator(nn.Module):
    """x → Conv 5x5 s2 (bias) → LReLU(0.2) → [Conv 5x5 s2 (no bias) → BN → LReLU(0.2)] × (L−1)
    → Linear → one logit; channels w, 2w, 4w, 8w at 64x64."""

    def __init__(self, width: int = 64, channels: int = 3, image_size: int = 64,
                 batch_norm: bool = True):
        super().__init__()
        levels = _levels(image_size)
        widths = [width * 2**i for i in range(levels)]
        layers: list[nn.Module] = [_down(channels, widths[0], bias=True), nn.LeakyReLU(0.2)]
        for c_in, c_out in itertools.pairwise(widths):
            layers += [_down(c_in, c_out, bias=False), _norm(c_out, batch_norm), nn.LeakyReLU(0.2)]
        self.body = nn.Sequential(*layers, nn.Flatten())
        self.fc = nn.Linear(widths[-1] * 16, 1)
        _init_dcgan(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.body(x)).squeeze(1)


def _up(c_in: int, c_out: int, bias: bool) -> nn.ConvTranspose2d:
    # k5 s2 p2 op1 doubles the size (TF "same" pads one pixel bottom/right instead: a shift)
    return nn.ConvTranspose2d(c_in, c_out, 5, stride=2, padding=2, output_padding=1, bias=bias)


def _down(c_in: int, c_out: int, bias: bool) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 5, stride=2, padding=2, bias=bias)


def _init_dcgan(model: nn.Module) -> None:
    """Su's TF init: conv N(0, 0.02) truncated at 2σ; transposed-conv and linear N(0, 0.02);
    biases 0; BN γ = 1, β = 0 (PyTorch's BN default)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.trunc_normal_(m.weight, std=0.02, a=-0.04, b=0.04)
        elif isinstance(m, (nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)) and m.bias is not None:
            nn.init.zeros_(m.bias)


class MLPGenerator(nn.Module):
    """z → hidden ReLU → hidden ReLU → x; ``image_shape`` reshapes to images through tanh."""

    def __init__(self, latent_dim: int, hidden: int, out_shape: tuple[int, ...], tanh: bool):
        super().__init__()
        self.out_shape = out_shape
        self.net = nn.Sequential(
            nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, math.prod(out_shape)), nn.Tanh() if tanh else nn.Identity())

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(len(z), *self.out_shape)


class MLPDiscriminator(nn.Module):
    """x → hidden ReLU → hidden ReLU → one logit (x flattened)."""

    def __init__(self, in_features: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
            nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(1)


class VAE(nn.Module):
    """q(z|x) = N(μ(x), diag σ²(x)), p(z) = N(0, I), p(x|z) = Bernoulli(sigmoid(logits(z)))."""

    def __init__(self, in_features: int = 784, hidden: int = 256, latent_dim: int = 2):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU())
        self.mean = nn.Linear(hidden, latent_dim)
        self.log_var = nn.Linear(hidden, latent_dim)
        self.decoder = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(),
                                     nn.Linear(hidden, in_features))  # logits; sigmoid in loss

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.encoder(x)
        return self.mean(h), self.log_var(h)

    def decode_logits(self, z: Tensor) -> Tensor:
        return self.decoder(z)

    def forward(self, x: Tensor, noise: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(decoder logits at z = μ + σ·noise, μ, log σ²): the reparameterised sample."""
        mean, log_var = self.encode(x)
        z = mean + torch.exp(0.5 * log_var) * noise
        return self.decode_logits(z), mean, log_var
