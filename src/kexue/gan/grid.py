"""Image grids, until ``kexue.plots.image_grid``/``save_image_grid`` are in the kit (then this
module goes and ``kexue.gan.samples`` imports them from ``kexue.plots``; same signatures)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from kexue.io import atomic_path


def image_grid(images: np.ndarray, nrow: int, pad: int = 1) -> np.ndarray:
    """uint8 NCHW (C = 1 or 3) → one HWC uint8 image, ``nrow`` images per row, white gaps."""
    n, c, h, w = images.shape
    rows = -(-n // nrow)
    grid = np.full((rows * (h + pad) + pad, nrow * (w + pad) + pad, c), 255, np.uint8)
    for k, image in enumerate(images):
        r, col = divmod(k, nrow)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        grid[top:top + h, left:left + w] = image.transpose(1, 2, 0)
    return grid


def save_image_grid(path: str | Path, images: np.ndarray, nrow: int, upscale: int = 1) -> None:
    grid = image_grid(images, nrow)
    if upscale > 1:
        grid = grid.repeat(upscale, axis=0).repeat(upscale, axis=1)
    picture = Image.fromarray(grid[..., 0] if grid.shape[2] == 1 else grid)
    with atomic_path(path) as tmp:
        picture.save(tmp, format="PNG")
