"""The glow article's data stage on the mirror subsets that fetch_dataset falls back to.

fetch_dataset("cifar10"|"celeba", mirror=../shared/datasets) places the partial, derived files
of <mirror>/<name>-subset/ in the raw folders; glow.prepare, with the DataConfig it uses for the
official source, must read them and hold out its documented test split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kexue.articles import glow
from kexue.articles.glow import DataConfig
from kexue.data.fetch import fetch_dataset

MIRROR = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
SUBSETS = {"cifar10": MIRROR / "cifar10-subset" / "data_batch_1_first4000.bin",
           "celeba": MIRROR / "celeba-subset" / "celeba_align_89x109_000001-010000.tar.gz"}

pytestmark = pytest.mark.skipif(
    not all(p.is_file() for p in SUBSETS.values()),
    reason=f"the offline dataset mirror with cifar10-subset/ and celeba-subset/ is not at {MIRROR}")

DECODED_EVERY = 100  # CelebA ids decoded for real; the rest are stubbed to keep this fast


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("subsets")
    raw = {name: root / "raw" / name for name in SUBSETS}
    for name, dest in raw.items():
        fetch_dataset(name, dest, mirror=str(MIRROR), progress=False)

    # Decoding all 10,000 JPEGs takes ~7 s on 2 cores: decode every 100th id for real (checked
    # below) and give the others a constant image. The tar, the ids and the split are real.
    real = glow.celeba_crop_resize

    def crop_resize(jpeg: bytes, size: int, name: str = "") -> np.ndarray:
        if int(name) % DECODED_EVERY == 0:
            return real(jpeg, size, name)
        return np.zeros((3, size, size), np.uint8)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(glow, "celeba_crop_resize", crop_resize)
        glow.prepare(DataConfig(), raw, root / "processed", "official")
    return root / "processed"


def test_official_config_reads_both_subsets(prepared):
    assert list(DataConfig().official) == ["cifar10", "celeba"]
    index = json.loads((prepared / "data.json").read_text())
    assert index["default"] == "cifar10" and sorted(index["datasets"]) == ["celeba", "cifar10"]
    for meta in index["datasets"].values():
        assert meta["full_dataset"] is False and meta["shape"] == [3, 32, 32]


def test_cifar10_subset_split(prepared):
    meta = json.loads((prepared / "data.json").read_text())["datasets"]["cifar10"]
    assert (meta["n_train"], meta["n_test"]) == (3500, 500)
    assert "mirror subset" in meta["data_label"] and "3500-3999 held out" in meta["test_split"]
    with np.load(prepared / "cifar10.npz") as d:
        train, test = d["train"], d["test"]
    assert train.shape == (3500, 3, 32, 32) and test.shape == (500, 3, 32, 32)
    # Record 0 is CIFAR-10 training image 0 (keras x_train[0]); test starts at record 3500.
    record = np.frombuffer(SUBSETS["cifar10"].read_bytes(), np.uint8).reshape(-1, 3073)
    assert train[0, :, 0, 0].tolist() == [59, 62, 63]
    np.testing.assert_array_equal(test[0].ravel(), record[3500, 1:])


def test_celeba_subset_split(prepared):
    meta = json.loads((prepared / "data.json").read_text())["datasets"]["celeba"]
    assert (meta["n_train"], meta["n_test"]) == (9000, 1000)  # ids 1-9000 / 9001-10000
    assert "ids >= 009001 held out" in meta["test_split"]
    assert "mirror subset (89px, re-encoded)" in meta["data_label"]
    with np.load(prepared / "celeba.npz") as d:
        train, test = d["train"], d["test"]
    assert train.shape == (9000, 3, 32, 32) and test.shape == (1000, 3, 32, 32)
    # Ids are in order, so id i sits at train[i - 1] / test[i - 9001]: the decoded ones are faces.
    decoded = [train[i - 1] for i in range(100, 9001, DECODED_EVERY)]
    decoded += [test[i - 9001] for i in range(9100, 10001, DECODED_EVERY)]
    assert len(decoded) == 100 and all(img.std() > 10 for img in decoded)
