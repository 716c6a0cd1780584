"""Image augmentations on uint8 batches, drawn from a torch.Generator (resumable runs)."""

from __future__ import annotations

import torch


def _shift_axis(x: torch.Tensor, shift: torch.Tensor, axis: int) -> torch.Tensor:
    """Translate every image of x (B, C, H, W float) by its own real ``shift`` (B,) pixels along
    ``axis`` (2: rows, 3: columns): linear interpolation, the edge pixels repeated outside."""
    n = x.shape[axis]
    pos = torch.arange(n, dtype=x.dtype) - shift[:, None]  # (B, n): where each output reads
    lo = pos.floor()
    frac = pos - lo
    lo = lo.long()
    shape = [len(x), 1, 1, 1]
    shape[axis] = n

    def take(i):
        index = i.clamp(0, n - 1).view(shape).expand_as(x)
        return x.gather(axis, index)

    # a + f (b - a): exactly a where the neighbours agree, so the floor cannot drop a level
    return torch.lerp(take(lo), take(lo + 1), frac.view(shape).expand_as(x))


def random_shift(k: torch.Tensor, max_fraction: float, generator: torch.Generator) -> torch.Tensor:
    """Keras ``ImageDataGenerator(width_shift_range=f, height_shift_range=f)`` as openai/glow
    trains CIFAR-10 (``--dal 1``, f = 0.1): per image a uniform real shift in [-f, f] x the size
    along each axis, bilinear, edges repeated (fill_mode 'nearest'), then floored back to the
    integer levels (openai's ``x_to_uint8``). ``k``: (B, C, H, W) uint8."""
    b, _, h, w = k.shape
    u = torch.rand(2, b, generator=generator) * 2 - 1
    x = k.to(torch.float64)
    x = _shift_axis(x, u[0].double() * max_fraction * h, 2)
    x = _shift_axis(x, u[1].double() * max_fraction * w, 3)
    return x.floor().to(torch.uint8)
