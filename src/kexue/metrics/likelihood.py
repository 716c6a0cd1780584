"""Likelihoods of image models: dequantisation, the test NLL, bits per dimension.

Data are integer levels k in {0, ..., n_levels - 1}. A continuous model of
x = (k + u) / n_levels (+ offset), u ~ U[0, 1), gives an upper bound on the discrete NLL:
bits/dim = NLL / (D ln 2) + log2(n_levels).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from kexue.rng import named_generator

EVAL_BATCH = 500  # images per forward pass of test_nll


def bits_per_dim(nll_nats: torch.Tensor | float, dims: int, n_levels: int) -> torch.Tensor | float:
    """Discrete NLL bound in bits/dim for data x = (k + u) / n_levels, k in {0..n_levels-1}.

    The density is over [0, 1]^D; each bin has width 1/n_levels, so the discrete probability
    is density * n_levels^-D: bpd = NLL / (D ln 2) + log2(n_levels).
    """
    return nll_nats / (dims * math.log(2)) + math.log2(n_levels)


def dequantise(k: torch.Tensor, noise: torch.Tensor, n_levels: int,
               offset: float = 0.0) -> torch.Tensor:
    """x = (k + u) / n_levels + offset (Glow centres the cube with offset -0.5)."""
    return (k.float() + noise) / n_levels + offset


@torch.no_grad()
def test_nll(log_prob: Callable[[torch.Tensor], torch.Tensor], k_test: torch.Tensor,
             to_x: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor], seed: int,
             device, noise: bool = True, batch: int = EVAL_BATCH) -> float:
    """Mean NLL (nats per image) over ``k_test``: ``to_x(k, u)`` maps levels (and one fixed
    U[0, 1) draw per image from the run's "evaluation" stream, or None) to model inputs."""
    g = named_generator(seed, "evaluation")
    total = 0.0
    for i in range(0, len(k_test), batch):
        k = k_test[i: i + batch]
        u = torch.rand(k.shape, generator=g) if noise else None
        total += -log_prob(to_x(k, u).to(device)).double().sum().item()
    return total / len(k_test)
