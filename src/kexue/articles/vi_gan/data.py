"""Data of vi_gan: image datasets as uint8 NCHW train/test arrays with their labels (read by
``kexue.data.images``). The 2-D targets need no files: ``kexue.data.toy2d`` samples them.
``embedded``: scikit-learn's 8x8 digits (17 grey levels, stratified 1,437 / 360).
``official``: MNIST (E3's VAE) and CelebA (E1/E2's DCGAN).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from kexue.articles.vi_gan.config import DataConfig
from kexue.data.embedded import load_npz, save_npz
from kexue.data.images import load_image_dataset
from kexue.errors import DataError
from kexue.io import read_json, write_json


@dataclass
class Images:
    train: Tensor  # uint8 (N, C, H, W)
    train_labels: Tensor  # int64 (N,); empty when the dataset has no labels
    test: Tensor
    test_labels: Tensor
    n_levels: int
    label: str  # what the report says about the data

    def unit(self, images: Tensor) -> Tensor:
        """Flattened images in [0, 1]: the VAE's Bernoulli means (digits /16, MNIST /255)."""
        return images.reshape(len(images), -1).float() / (self.n_levels - 1)


def prepare(cfg: DataConfig, raw: dict[str, Path], out: Path, source: str) -> None:
    index = {}
    for name, folder in raw.items():
        images = load_image_dataset(name, folder, cfg.images)
        none = np.zeros(0, np.int64)
        save_npz(out / f"{name}.npz", train=images.train, test=images.test,
                 train_labels=_or(images.train_labels, none),
                 test_labels=_or(images.test_labels, none))
        index[name] = {"n_levels": images.n_levels, "label": images.label,
                       "test_split": images.test_split, "complete": images.complete,
                       "n_classes": int(images.train_labels.max()) + 1
                       if images.train_labels is not None else 0}
        print(f"[vi_gan] {name}: {images.label}; {len(images.train)} train / "
              f"{len(images.test)} test")
    write_json(out / "data.json", index)


def _or(labels: np.ndarray | None, empty: np.ndarray) -> np.ndarray:
    return empty if labels is None else labels.astype(np.int64)


def load_images(data_dir: Path, dataset: str) -> Images:
    index = read_json(data_dir / "data.json")
    if dataset not in index:
        raise DataError(f"{data_dir}/data.json: dataset {dataset!r} was not prepared "
                        f"(prepared: {sorted(index)}); check the run's dataset and data_source")
    d = load_npz(data_dir / f"{dataset}.npz", {"train": ("u", 4), "train_labels": ("i", 1),
                                               "test": ("u", 4), "test_labels": ("i", 1)})
    meta = index[dataset]
    return Images(*(torch.from_numpy(d[k]) for k in ("train", "train_labels", "test",
                                                     "test_labels")),
                  n_levels=meta["n_levels"], label=meta["label"])

