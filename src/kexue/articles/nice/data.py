"""prepare(): an image dataset -> flattened uint8 images and their number of grey levels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from kexue.data.embedded import load_npz, save_npz
from kexue.data.images import load_image_dataset
from kexue.io import read_json, write_json

from .config import DataConfig


def prepare(cfg: DataConfig, raw: dict[str, Path], out: Path, source: str) -> None:
    """Write uint8 images (N, D) of the (single) dataset and ``data.json``."""
    (name, folder), = raw.items()
    images = load_image_dataset(name, folder, cfg.images)
    x = images.train.reshape(len(images.train), -1)
    order = np.random.RandomState(cfg.images.split_seed).permutation(len(x))
    n_val = round(len(x) * cfg.val_fraction)
    x_val, x_train = x[order[:n_val]], x[np.sort(order[n_val:])]
    if cfg.max_train:
        x_train = x_train[: cfg.max_train]
    x_test = images.test.reshape(len(images.test), -1)
    save_npz(out / "images.npz", train=x_train, val=x_val, test=x_test)
    write_json(out / "data.json", {
        "dataset": name, "data_label": images.label, "n_levels": images.n_levels,
        "n_train": len(x_train), "n_val": len(x_val), "n_test": len(x_test),
        "dims": int(x_train.shape[1]), "source": source,
        "test_split": images.test_split + f"; validation: {n_val} training images",
        "complete_data": images.complete and not cfg.max_train})


def load_prepared(data_dir: Path, part: str) -> tuple[torch.Tensor, dict]:
    """One part ("train", "val" or "test") of the prepared images, and data.json."""
    d = load_npz(data_dir / "images.npz", {part: ("u", 2)})
    return torch.from_numpy(d[part]), read_json(data_dir / "data.json")


def to_unit(k: torch.Tensor, n_levels: int, recipe: str, noise: torch.Tensor | None):
    """Map integer levels to [0, 1] as each recipe does.

    ``su``: k / (n_levels - 1) (Su's x/255), minus ``su_noise * noise`` in training.
    ``original``: (k + u) / n_levels, u ~ U[0, 1) (u = 0.5 would be the bin centre).
    """
    k = k.float()
    if recipe == "su":
        x = k / (n_levels - 1)
        return x if noise is None else x - noise
    return (k + noise) / n_levels
