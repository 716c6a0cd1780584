"""prepare(): E3's images (train / validation / test, uint8 NCHW). E1 and E2 need no data (E2's
mixture is sampled by code).

``embedded``: scikit-learn's 8x8 digits (17 grey levels); ``official``: MNIST. A validation
split is cut from the training images (stratified): it only chooses the Parzen width, so the
test split is never used for a choice. The FID/KID feature network is the DAG's shared
``features`` job of the dataset (trained on the whole training split, validation included).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from sklearn.model_selection import train_test_split

from kexue.data.embedded import load_npz, save_npz
from kexue.data.images import load_image_dataset
from kexue.errors import DataError
from kexue.io import read_json, write_json

from .config import DataConfig


def prepare(cfg: DataConfig, raw: dict[str, Path], out: Path, source: str) -> None:
    (name, folder), = raw.items()
    images = load_image_dataset(name, folder, cfg.images)
    n_val = cfg.digits_validation if name == "digits" else cfg.mnist_validation
    if n_val >= len(images.train):
        raise DataError(f"{folder}: {len(images.train)} training images cannot spare "
                        f"{n_val} for validation (params: data.*_validation)")
    train, val, y_train, y_val = train_test_split(
        images.train, images.train_labels, test_size=n_val, stratify=images.train_labels,
        random_state=cfg.split_seed)
    save_npz(out / "images.npz", train=train, validation=val, test=images.test,
             train_labels=y_train, validation_labels=y_val, test_labels=images.test_labels)
    meta = {"dataset": name, "data_label": images.label, "n_levels": images.n_levels,
            "shape": list(images.shape), "n_train": len(train), "n_validation": len(val),
            "n_test": len(images.test), "source": source,
            "test_split": images.test_split,
            "validation_split": f"stratified {n_val} training images (seed {cfg.split_seed})",
            "complete_data": images.complete}
    write_json(out / "data.json", meta)
    print(f"[fgan] {name}: {images.label}; {len(train)} train / {len(val)} validation / "
          f"{len(images.test)} test")


@dataclass
class Images:
    train: torch.Tensor  # float (N, C, H, W) in [0, 1]: the paper's x/255 (digits: x/16)
    validation: torch.Tensor
    test: torch.Tensor
    test_labels: torch.Tensor
    meta: dict


def load_images(data_dir: Path) -> Images:
    if not (data_dir / "images.npz").exists():
        raise DataError(f"{data_dir}/images.npz is missing: run `python -m kexue prepare fgan`")
    d = load_npz(data_dir / "images.npz", {"train": ("u", 4), "validation": ("u", 4),
                                           "test": ("u", 4), "test_labels": ("iu", 1)})
    meta = read_json(data_dir / "data.json")
    scale = 1.0 / (meta["n_levels"] - 1)
    unit = {k: torch.from_numpy(d[k]).float() * scale for k in ("train", "validation", "test")}
    return Images(unit["train"], unit["validation"], unit["test"],
                  torch.from_numpy(d["test_labels"]), meta)
