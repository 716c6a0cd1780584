"""Figures shared by the articles: sample grids and confusion matrices."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np


def image_grid(images: np.ndarray, nrow: int | None = None, pad: int = 1,
               pad_value: int = 128) -> np.ndarray:
    """uint8 images (N, C, H, W) -> one uint8 picture (rows*H, cols*W, C), ``nrow`` per row,
    separated by ``pad`` grey pixels."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(f"image_grid wants uint8 (N, C, H, W), got {images.dtype} {images.shape}")
    n, c, h, w = images.shape
    nrow = nrow or max(1, math.isqrt(n))
    rows = math.ceil(n / nrow)
    grid = np.full((rows * (h + pad) + pad, nrow * (w + pad) + pad, c), pad_value, np.uint8)
    for i, img in enumerate(images):
        r, q = divmod(i, nrow)
        y, x = pad + r * (h + pad), pad + q * (w + pad)
        grid[y: y + h, x: x + w] = img.transpose(1, 2, 0)
    return grid


def save_image_grid(path: str | Path, images: np.ndarray, nrow: int | None = None,
                    upscale: int = 1) -> None:
    """Write ``image_grid(images, nrow)`` as a PNG, ``upscale`` times larger (nearest)."""
    from PIL import Image

    from kexue.io import atomic_path

    grid = image_grid(images, nrow)
    pil = Image.fromarray(grid[..., 0] if grid.shape[2] == 1 else grid)
    if upscale > 1:
        pil = pil.resize((pil.width * upscale, pil.height * upscale), Image.NEAREST)
    with atomic_path(path) as tmp:
        pil.save(tmp, format="PNG")


def to_uint8(x, n_levels: int, offset: float = 0.0) -> np.ndarray:
    """Model outputs in the data scale (k + u) / n_levels + offset -> uint8 pixels for display
    (the integer level, clipped, spread over 0..255)."""
    import torch

    k = torch.floor((torch.as_tensor(x).float().cpu() - offset) * n_levels)
    k = k.clamp(0, n_levels - 1)
    return (k / (n_levels - 1) * 255).round().to(torch.uint8).numpy()


def save_figure(fig, path: str | Path, dpi: int = 100) -> None:
    """Save a matplotlib figure atomically (its folder is created) and close it."""
    import matplotlib.pyplot as plt

    from kexue.io import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=Path(path).suffix.lstrip("."))
    plt.close(fig)


def confusion_figure(cm: np.ndarray, names, title: str):
    """A confusion matrix (rows true, columns predicted) with a count on every cell, white on
    dark cells so that each one stays legible."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    share = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.4 + 0.6 * len(names), 1.1 + 0.55 * len(names)))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=8,
                color="white" if share[i, j] > 0.5 else "black")
    ax.set(xticks=range(len(names)), yticks=range(len(names)), xticklabels=names,
           yticklabels=names, xlabel="predicted", ylabel="true")
    ax.set_title(title, fontsize=9)
    return fig
