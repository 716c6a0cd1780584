"""The f-GAN networks, as *stacks*: K independent members (one per divergence) evaluated in one
batched matmul. Members share no parameter, and Adam is elementwise, so training a stack is
exactly training K separate networks; on a CPU it costs about what one costs (the step overhead
dominates networks this small), which is what lets every divergence run within the budget.

Shapes: a stack maps a shared input (B, ...) or a per-member input (K, B, ...) to (K, B, ...).
A critic outputs the raw V(x), shape (K, B); each divergence's activation and conjugate are
applied in ``losses``.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class StackedLinear(nn.Module):
    """K Linear layers, (K, B, in) -> (K, B, out), each initialised as ``nn.Linear`` is."""

    def __init__(self, members: int, in_features: int, out_features: int):
        super().__init__()
        bound = 1 / math.sqrt(in_features)
        self.weight = nn.Parameter(torch.empty(members, in_features, out_features)
                                   .uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(members, 1, out_features).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.expand(self.weight.shape[0], *x.shape)
        return torch.baddbmm(self.bias, x, self.weight)


class StackedBatchNorm(nn.BatchNorm1d):
    """BatchNorm1d over (K, B, F), with per-member statistics (K x F features)."""

    def __init__(self, members: int, features: int):
        super().__init__(members * features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, b, f = x.shape
        flat = x.transpose(0, 1).reshape(b, k * f)
        return super().forward(flat).view(b, k, f).transpose(0, 1)


class GaussianGenerator(nn.Module):
    """G_k(z) = mu_k + sigma_k z with z ~ N(0, 1): E2's model Q = N(mu, sigma^2), sigma = e^s."""

    def __init__(self, members: int, mu: float = 0.0, sigma: float = 1.0):
        super().__init__()
        self.mu = nn.Parameter(torch.full((members,), float(mu)))
        self.log_sigma = nn.Parameter(torch.full((members,), math.log(sigma)))

    @property
    def sigma(self) -> torch.Tensor:
        return self.log_sigma.exp()

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # (B, 1) -> (K, B, 1)
        return self.mu[:, None, None] + self.sigma[:, None, None] * z


class Critic(nn.Module):
    """V_k: an MLP through ``hidden`` widths to one raw output per sample, (K, B); inputs of
    shape ``in_shape`` come as a shared (B, *in_shape) or a per-member (K, B, *in_shape) batch.
    E2: 2 x 64 tanh (spec §4.1); E3: 3 linear layers with ELU between, width 240 (spec §4.2)."""

    def __init__(self, members: int, in_shape: tuple[int, ...], hidden: tuple[int, ...],
                 act: str):
        super().__init__()
        self.in_shape = tuple(in_shape)
        nonlinearity = {"tanh": nn.Tanh, "elu": nn.ELU}[act]
        in_features = math.prod(in_shape)
        layers: list[nn.Module] = []
        for width in hidden:
            layers += [StackedLinear(members, in_features, width), nonlinearity()]
            in_features = width
        layers.append(StackedLinear(members, in_features, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch_dims = x.dim() - len(self.in_shape)
        return self.net(x.flatten(batch_dims)).squeeze(-1)


class MLPGenerator(nn.Module):
    """The f-GAN paper's MNIST generator: z ~ U[-1, 1]^latent -> 2 x [Linear + BN + ReLU] ->
    Linear + sigmoid, images in [0, 1] (spec §4.2; width 1200 at ``full``).

    It takes z ~ N(0, 1) (the GAN kit's latent), shared by the members, and maps it exactly to
    U[-1, 1] by erf(z / sqrt 2) = 2 Phi(z) - 1: the network sees the paper's uniform latent."""

    def __init__(self, members: int, latent_dim: int, hidden: int, out_shape: tuple[int, ...]):
        super().__init__()
        self.out_shape = tuple(out_shape)
        self.net = nn.Sequential(
            StackedLinear(members, latent_dim, hidden), StackedBatchNorm(members, hidden),
            nn.ReLU(),
            StackedLinear(members, hidden, hidden), StackedBatchNorm(members, hidden), nn.ReLU(),
            StackedLinear(members, hidden, math.prod(out_shape)), nn.Sigmoid(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # (B, latent) -> (K, B, *out_shape)
        flat = self.net(torch.erf(z / math.sqrt(2)))
        return flat.view(*flat.shape[:2], *self.out_shape)
