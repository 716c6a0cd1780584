"""Sample diagnostics on image batches."""

from __future__ import annotations

import torch


def alternation(x: torch.Tensor, dim: int) -> float:
    """Amplitude of the pattern that flips sign from one column (``dim=-1``) or row (``dim=-2``)
    to the next, the highest frequency an image can hold: |mean_ij (-1)^j x_ij| per image and
    channel, averaged. Vertical stripes a, b, a, b, ... give |a - b| / 2; smooth images ~0.
    x: (B, C, H, W)."""
    if dim not in (-1, -2):
        raise ValueError(f"alternation is along columns (-1) or rows (-2), not {dim}")
    n = x.shape[dim]
    sign = 1.0 - 2.0 * (torch.arange(n, device=x.device) % 2).to(x.dtype)
    sign = sign if dim == -1 else sign[:, None]
    return (x * sign).mean((-2, -1)).abs().mean().item()
