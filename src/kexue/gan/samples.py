"""Samples at a fixed latent: the same z at every checkpoint shows how a generator evolves.

Images are generated with G in eval mode (batch-norm running averages), as Su's sample grids
were, and the generator's mode is restored afterwards.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from kexue.plots import save_image_grid


def fixed_latent(generator: torch.Generator, n: int, latent_dim: int) -> Tensor:
    return torch.randn(n, latent_dim, generator=generator)


@torch.no_grad()
def generate(model: nn.Module, z: Tensor, batch_size: int = 1000) -> Tensor:
    """G(z) in eval mode, in batches, on z's device; G's train/eval mode is restored."""
    was_training = model.training
    model.eval()
    try:
        return torch.cat([model(chunk) for chunk in z.split(batch_size)])
    finally:
        model.train(was_training)


def to_uint8(images: Tensor) -> np.ndarray:
    """Float images in [−1, 1] (NCHW) → uint8 0 … 255 (NCHW), clipped."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu().numpy()


def save_samples_grid(path: str | Path, model: nn.Module, z: Tensor, nrow: int,
                      upscale: int = 1) -> None:
    """The grid of G(z) at the fixed ``z`` (one image per z, ``nrow`` per row) as a PNG."""
    save_image_grid(path, to_uint8(generate(model, z)), nrow, upscale=upscale)
