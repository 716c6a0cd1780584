"""prepare(): Part A classification sets (standardised, with a validation split) and Part B image
sets in [−1, 1]. The FID/KID feature network of a Part B dataset is the DAG's shared
``features`` job (``kexue.metrics.features.load_shared_feature_net``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from kexue.data.embedded import load_npz, save_npz
from kexue.data.images import load_image_dataset
from kexue.errors import ConfigError, DataError
from kexue.io import read_json, write_json
from kexue.metrics.features import to_signed

from .config import DataConfig


def _folder(raw: dict[str, Path], name: str) -> Path:
    if name not in raw:
        raise ConfigError(f"params.yaml data: dataset {name!r} is not among this data source's "
                          f"datasets ({', '.join(sorted(raw))})")
    return raw[name]


def _classification_set(name: str, folder: Path, cfg: DataConfig):
    """(x_train, y_train, x_test, y_test, meta): x float32 (N, C, ...) in natural units."""
    if name == "mnist1d":
        d = load_npz(folder / "mnist1d.npz", {"x_train": ("f", 2), "y_train": ("iu", 1),
                                              "x_test": ("f", 2), "y_test": ("iu", 1)})
        return (d["x_train"][:, None], d["y_train"], d["x_test"][:, None], d["y_test"],
                {"label": "embedded: MNIST-1D (mnist1d package, synthetic 1-D digits)",
                 "test_split": "the package's 1,000 test sequences", "complete": False})
    images = load_image_dataset(name, folder, cfg.images)
    if images.train_labels is None or images.test_labels is None:
        raise DataError(f"{name}: no class labels, so it cannot be a Part A dataset")
    scale = 1.0 / (images.n_levels - 1)
    return (images.train.astype(np.float32) * scale, images.train_labels,
            images.test.astype(np.float32) * scale, images.test_labels,
            {"label": images.label, "test_split": images.test_split,
             "complete": images.complete})


def _split(n: int, cfg: DataConfig) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.RandomState(cfg.split_seed).permutation(n)
    n_val = max(1, round(n * cfg.val_fraction))
    train = np.sort(order[n_val:])
    return (train[: cfg.max_train] if cfg.max_train else train), np.sort(order[:n_val])


def prepare_classifier(name: str, folder: Path, cfg: DataConfig, out: Path) -> dict:
    x, y, x_test, y_test, meta = _classification_set(name, folder, cfg)
    train, val = _split(len(x), cfg)
    axes = (0, *range(2, x.ndim))  # per-channel statistics of the training split
    mean = x[train].mean(axis=axes, keepdims=True)
    std = x[train].std(axis=axes, keepdims=True)

    def standard(a):
        return ((a - mean) / std).astype(np.float32)

    save_npz(out / f"a_{name}.npz", x_train=standard(x[train]), y_train=y[train].astype(np.int64),
             x_val=standard(x[val]), y_val=y[val].astype(np.int64),
             x_test=standard(x_test), y_test=y_test.astype(np.int64))
    return {**meta, "shape": list(x.shape[1:]), "n_classes": int(y.max()) + 1,
            "n_train": len(train), "n_val": len(val), "n_test": len(x_test),
            "complete": meta["complete"] and not cfg.max_train}


def prepare_gan_images(name: str, folder: Path, cfg: DataConfig, out: Path) -> dict:
    """Images in [−1, 1] (train and test) and what they are."""
    images = load_image_dataset(name, folder, cfg.images)
    train = to_signed(torch.from_numpy(images.train), images.n_levels)
    test = to_signed(torch.from_numpy(images.test), images.n_levels)
    save_npz(out / f"b_{name}.npz", train=train.numpy(), test=test.numpy())
    return {"label": images.label, "test_split": images.test_split,
            "complete": images.complete, "shape": list(images.shape), "n_train": len(train),
            "n_test": len(test)}


def prepare(cfg: DataConfig, raw: dict[str, Path], out: Path, source: str) -> None:
    torch.set_num_threads(1)
    meta = {"source": source,
            "part_a": {n: prepare_classifier(n, _folder(raw, n), cfg, out) for n in cfg.part_a},
            "part_b": {n: prepare_gan_images(n, _folder(raw, n), cfg, out) for n in cfg.part_b}}
    write_json(out / "data.json", meta)


SPLITS = ("train", "val", "test")  # of a Part A set: x_<split>, y_<split>


def load_meta(data_dir: Path) -> dict:
    return read_json(data_dir / "data.json")


def load_classifier_set(data_dir: Path, name: str) -> tuple[dict[str, torch.Tensor], dict]:
    """{x_train, y_train, x_val, y_val, x_test, y_test} tensors and their metadata."""
    meta = load_meta(data_dir)
    if name not in meta["part_a"]:
        raise ConfigError(f"classifier.datasets: {name!r} was not prepared; data.part_a is "
                          f"{list(meta['part_a'])}")
    inputs = ("f", 1 + len(meta["part_a"][name]["shape"]))  # (N, C, ...) float32
    expect = {f"{xy}_{split}": inputs if xy == "x" else ("iu", 1)
              for split in SPLITS for xy in "xy"}
    d = load_npz(data_dir / f"a_{name}.npz", expect)
    return {k: torch.from_numpy(v) for k, v in d.items()}, meta["part_a"][name]


def load_gan_images(data_dir: Path, name: str) -> tuple[dict[str, torch.Tensor], dict]:
    """{train, test} images in [−1, 1] and their metadata."""
    meta = load_meta(data_dir)
    if name not in meta["part_b"]:
        raise ConfigError(f"gan.iterations: image dataset {name!r} was not prepared; "
                          f"data.part_b is {list(meta['part_b'])}")
    d = load_npz(data_dir / f"b_{name}.npz", {"train": ("f", 4), "test": ("f", 4)})
    return {k: torch.from_numpy(v) for k, v in d.items()}, meta["part_b"][name]
