"""prepare(): image datasets -> uint8 arrays (N, C, H, W) per dataset, and dequantisation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from kexue.data.embedded import load_npz, save_npz
from kexue.data.images import load_image_dataset
from kexue.errors import ConfigError
from kexue.io import read_json, write_json

from .config import DataConfig


def prepare(cfg: DataConfig, raw: dict[str, Path], out: Path, source: str) -> None:
    """Write ``<dataset>.npz`` (uint8 train/test, (N, C, H, W)) per dataset and ``data.json``;
    the first dataset is every run's default."""
    index = {}
    for name, folder in raw.items():
        images = load_image_dataset(name, folder, cfg.images)
        order = np.random.RandomState(cfg.images.split_seed).permutation(len(images.train))
        n_val = round(len(order) * cfg.val_fraction)
        val, train = images.train[order[:n_val]], images.train[np.sort(order[n_val:])]
        test = images.test
        meta = {"data_label": images.label, "test_split": images.test_split,
                "complete_data": images.complete}
        if cfg.max_train:
            train = train[: cfg.max_train]
        if cfg.max_test:
            test = test[: cfg.max_test]
        if cfg.max_train or cfg.max_test:
            meta["complete_data"] = False
            meta["data_label"] += f" [cut to {len(train):,} train / {len(test):,} test]"
        save_npz(out / f"{name}.npz", train=train, val=val, test=test)
        index[name] = {**meta, "dataset": name, "n_levels": images.n_levels,
                       "shape": list(train.shape[1:]), "n_train": len(train), "n_val": len(val),
                       "n_test": len(test), "source": source}
        print(f"[glow] {name}: {index[name]['data_label']}")
    write_json(out / "data.json", {"default": next(iter(raw)), "datasets": index})


def load_prepared(data_dir: Path, dataset: str, part: str) -> tuple[torch.Tensor, dict]:
    """One part ("train", "val" or "test") of a prepared dataset ("" = the default one)."""
    index = read_json(data_dir / "data.json")
    name = dataset or index["default"]
    if name not in index["datasets"]:
        raise ConfigError(f"glow run dataset {name!r} was not prepared (prepared: "
                          f"{', '.join(index['datasets'])}); add it to the data datasets")
    d = load_npz(data_dir / f"{name}.npz", {part: ("u", 4)})
    return torch.from_numpy(d[part]), index["datasets"][name]
