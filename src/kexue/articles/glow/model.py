"""The multi-scale flow of RealNVP/Glow: the model only (no I/O)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from kexue.nn.flows import (
    ActNorm,
    AdditiveCoupling,
    AffineCoupling,
    ConditionalSplit,
    FlowSequential,
    InvConvLU,
    Reverse,
    Shuffle,
    Squeeze,
    coupling_net,
    gaussian_log_prob,
)

from .config import GlowModel


def _permutation(cfg: GlowModel, channels: int, seed: int) -> nn.Module:
    if cfg.permutation == "reverse":
        return Reverse()
    if cfg.permutation == "shuffle":
        return Shuffle(channels, seed)
    if cfg.permutation == "invconv":
        return InvConvLU(channels, seed)
    raise ValueError(f"unknown permutation {cfg.permutation!r} (reverse | shuffle | invconv)")


def _net(cfg: GlowModel, c_in: int, c_out: int) -> nn.Module:
    return coupling_net(c_in, c_out, cfg.width, cfg.net_init, cfg.net_actnorm, cfg.zero_conv_gain,
                        cfg.logscale_factor)


def _coupling(cfg: GlowModel, channels: int) -> nn.Module:
    half = channels // 2
    if cfg.coupling == "additive":
        return AdditiveCoupling(_net(cfg, half, half))
    if cfg.coupling == "affine":
        return AffineCoupling(_net(cfg, half, 2 * half))
    raise ValueError(f"unknown coupling {cfg.coupling!r} (additive | affine)")


class Glow(nn.Module):
    """L levels of [squeeze, K x (actnorm, permutation, coupling), split]; the last level ends
    with a zero-init actnorm instead of a split: a learned per-channel mean/scale of the top
    prior (openai's ``learntop``). All z's are standard normal."""

    def __init__(self, shape: tuple[int, int, int], cfg: GlowModel, seed: int):
        super().__init__()
        c, h, w = shape
        if h % 2**cfg.levels or w % 2**cfg.levels:
            raise ValueError(f"{h}x{w} images cannot be squeezed {cfg.levels} times")
        self.levels = nn.ModuleList()
        self.z_shapes: list[tuple[int, int, int]] = []
        seed = seed * 1000
        for level in range(cfg.levels):
            c, h, w = 4 * c, h // 2, w // 2
            layers: list[nn.Module] = [Squeeze()]
            for _ in range(cfg.depth):
                seed += 1  # every permutation gets its own fixed draw
                layers += [ActNorm(c, cfg.actnorm, cfg.logscale_factor), _permutation(cfg, c, seed),
                           _coupling(cfg, c)]
            last = level == cfg.levels - 1
            layers.append(ActNorm(c, "zero", cfg.logscale_factor) if last else
                          ConditionalSplit(c, cfg.zero_conv_gain, cfg.logscale_factor))
            self.levels.append(FlowSequential(*layers))
            if not last:
                c //= 2
                self.z_shapes.append((c, h, w))
        self.z_shapes.append((c, h, w))
        self.dims = int(np.prod(shape))

    def forward(self, x):
        """x -> (list of z per level, logdet)."""
        zs, logdet = [], x.new_zeros(x.shape[0])
        for i, level in enumerate(self.levels):
            x, ld = level(x)
            logdet = logdet + ld
            if i < len(self.levels) - 1:
                x, z = x.chunk(2, dim=1)
                zs.append(z)
        zs.append(x)
        return zs, logdet

    def reverse(self, zs):
        x = zs[-1]
        for i in reversed(range(len(self.levels))):
            if i < len(self.levels) - 1:
                x = torch.cat([x, zs[i]], dim=1)
            x = self.levels[i].reverse(x)
        return x

    def log_prob(self, x):
        """log density of x in nats per image (a sum over all dims)."""
        zs, logdet = self(x)
        return sum(gaussian_log_prob(z) for z in zs) + logdet

    @torch.no_grad()
    def sample(self, n: int, temperature: float, generator: torch.Generator):
        """z ~ N(0, T^2 I) at every level, through the inverse (the conditional priors and the
        learned top rescale it, so every level's prior is tempered as in openai/glow)."""
        device = next(self.parameters()).device
        zs = [torch.randn(n, *s, generator=generator).to(device) * temperature
              for s in self.z_shapes]
        return self.reverse(zs)


def build_model(cfg, shape) -> Glow:
    """The model of a RunConfig, initialised from its seed."""
    torch.manual_seed(cfg.seed)
    return Glow(tuple(shape), cfg.model, cfg.seed)


