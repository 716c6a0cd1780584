"""The glow article's data stage on the mirror subsets that fetch_dataset falls back to.

fetch_dataset("cifar10"|"celeba", mirror=../shared/datasets) places the partial, derived files
of <mirror>/<name>-subset/ in the raw folders; glow's prepare, for the datasets of its official
source, must read them, hold out its documented test split and a validation split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import MIRROR
from kexue.articles.glow.config import DataConfig
from kexue.articles.glow.data import prepare
from kexue.data import images
from kexue.data.fetch import fetch_dataset
from kexue.registry import get_article

SUBSETS = {"cifar10": MIRROR / "cifar10-subset" / "data_batch_1_first4000.bin",
           "celeba": MIRROR / "celeba-subset" / "celeba_align_89x109_000001-010000.tar.gz"}

pytestmark = pytest.mark.skipif(
    not all(p.is_file() for p in SUBSETS.values()),
    reason=f"the offline dataset mirror with cifar10-subset/ and celeba-subset/ is not at {MIRROR}")

DECODED_EVERY = 100  # CelebA ids decoded for real; the rest are stubbed to keep this fast


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("subsets")
    raw = {name: root / "raw" / name for name in get_article("glow").datasets_for("official")}
    for name, dest in raw.items():
        fetch_dataset(name, dest, mirror=str(MIRROR), progress=False)
    (root / "processed").mkdir()

    # Decoding all 10,000 JPEGs takes ~7 s on 2 cores: decode every 100th id for real (checked
    # below) and give the others a blank image. The tar, the ids and the split are real.
    real = images.celeba_crop_resize

    def crop_resize(jpeg: bytes, size: int, name: str = "") -> np.ndarray:
        if int(name) % DECODED_EVERY == 0:
            return real(jpeg, size, name)
        return np.zeros((3, size, size), np.uint8)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(images, "celeba_crop_resize", crop_resize)
        prepare(DataConfig(), raw, root / "processed", "official")
    return root / "processed"


def _parts(prepared, name):
    with np.load(prepared / f"{name}.npz", allow_pickle=False) as d:
        return d["train"], d["val"], d["test"]


def test_official_source_reads_both_subsets(prepared):
    assert get_article("glow").datasets_for("official") == ("cifar10", "celeba")
    index = json.loads((prepared / "data.json").read_text())
    assert index["default"] == "cifar10" and sorted(index["datasets"]) == ["celeba", "cifar10"]
    for meta in index["datasets"].values():
        assert meta["complete_data"] is False and meta["shape"] == [3, 32, 32]
        assert meta["source"] == "official"


def test_cifar10_subset_split(prepared):
    meta = json.loads((prepared / "data.json").read_text())["datasets"]["cifar10"]
    # records 0-3499 train (5% of them validation), 3500-3999 test
    assert (meta["n_train"], meta["n_val"], meta["n_test"]) == (3325, 175, 500)
    assert "mirror subset" in meta["data_label"] and "3500-3999 held out" in meta["test_split"]
    train, val, test = _parts(prepared, "cifar10")
    assert train.shape == (3325, 3, 32, 32) and val.shape == (175, 3, 32, 32)
    record = np.frombuffer(SUBSETS["cifar10"].read_bytes(), np.uint8).reshape(-1, 3073)
    pixels = record[:, 1:].reshape(-1, 3, 32, 32)
    np.testing.assert_array_equal(test, pixels[3500:])
    # train and validation together are exactly records 0-3499, none of them twice
    seen = sorted(x.tobytes() for x in np.concatenate([train, val]))
    assert seen == sorted(x.tobytes() for x in pixels[:3500])


def test_celeba_subset_split(prepared):
    meta = json.loads((prepared / "data.json").read_text())["datasets"]["celeba"]
    assert (meta["n_train"], meta["n_val"], meta["n_test"]) == (8550, 450, 1000)
    assert "ids >= 009001 held out" in meta["test_split"]
    assert "mirror subset (89px, re-encoded)" in meta["data_label"]
    train, val, test = _parts(prepared, "celeba")
    assert train.shape == (8550, 3, 32, 32) and test.shape == (1000, 3, 32, 32)
    # Test ids 9001-10000 are in order: test[i - 9001] is id i, and the decoded ones are faces.
    decoded = [test[i - 9001] for i in range(9100, 10001, DECODED_EVERY)]
    assert all(img.std() > 10 for img in decoded)
    assert sum(img.any() for img in test) == len(decoded) == 10
    # ids 1-9000 (90 of them decoded) are split between train and validation
    assert sum(img.std() > 10 for img in np.concatenate([train, val])) == 90
