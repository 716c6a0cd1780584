"""Embedded datasets: documented shapes and dtypes, byte-for-byte reproducible files."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from kexue.data import embedded, registry
from kexue.data.fetch import dataset_files, generate_dataset, materialise
from kexue.data.registry import Dataset


def generate_twice(tmp_path, fn, fname):
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        fn(tmp_path / run)
    first, second = (tmp_path / run / fname for run in ("a", "b"))
    assert first.read_bytes() == second.read_bytes(), f"{fn.__name__} is not deterministic"
    return np.load(first, allow_pickle=False)


def test_sklearn_digits(tmp_path):
    d = generate_twice(tmp_path, embedded.sklearn_digits, "digits.npz")
    assert d["images"].shape == (1797, 8, 8) and d["images"].dtype == np.uint8
    assert d["images"].min() == 0 and d["images"].max() == 16
    assert d["labels"].shape == (1797,) and sorted(set(d["labels"].tolist())) == list(range(10))


def test_sklearn_image_patches(tmp_path):
    d = generate_twice(tmp_path, embedded.sklearn_image_patches, "sample_images.npz")
    assert d["images"].shape == (2, 427, 640, 3) and d["images"].dtype == np.uint8
    assert d["names"].tolist() == ["china.jpg", "flower.jpg"]


def test_mnist1d(tmp_path):
    embedded.mnist1d(tmp_path)
    d = np.load(tmp_path / "mnist1d.npz", allow_pickle=False)
    for split, n in [("train", 4000), ("test", 1000)]:
        x, y = d[f"x_{split}"], d[f"y_{split}"]
        assert x.shape == (n, 40) and x.dtype == np.float32
        assert y.shape == (n,) and y.dtype == np.int64
        assert sorted(set(y.tolist())) == list(range(10))


def test_mnist1d_deterministic_and_global_rng_untouched(tmp_path, monkeypatch):
    import mnist1d.data

    # The same code path on 500 samples: two full runs would take seconds.
    default_args = mnist1d.data.get_dataset_args

    def small_args(as_dict=False):
        args = default_args(as_dict=False)
        args.num_samples = 500
        return args

    monkeypatch.setattr(mnist1d.data, "get_dataset_args", small_args)
    random.seed(7)
    np.random.seed(7)
    expected = random.random(), np.random.rand()
    random.seed(7)
    np.random.seed(7)
    d = generate_twice(tmp_path, embedded.mnist1d, "mnist1d.npz")
    assert (random.random(), np.random.rand()) == expected
    assert d["x_train"].shape == (400, 40)


def test_generate_dataset_writes_provenance_and_replaces_dest(tmp_path):
    dest = tmp_path / "raw" / "digits"
    dest.mkdir(parents=True)
    (dest / "stale.npz").write_bytes(b"old")
    materialise("digits", dest)
    assert sorted(p.name for p in dest.iterdir()) == ["PROVENANCE.json", "digits.npz"]
    assert dataset_files(dest) == dest
    prov = json.loads((dest / "PROVENANCE.json").read_text())
    assert prov["source"] == "embedded"
    assert prov["generator"] == "kexue.data.embedded:sklearn_digits"
    assert prov["description"] == registry.get_dataset("digits").description
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == ["digits"]  # no temp folder


def test_failing_generator_leaves_dest_alone(tmp_path, monkeypatch):
    def boom(dest):
        (dest / "half.npz").write_bytes(b"partial")
        raise RuntimeError("generator failed")

    monkeypatch.setattr(embedded, "boom", boom, raising=False)
    monkeypatch.setitem(registry.DATASETS, "boom", Dataset(
        name="boom", kind="embedded", description="test", generator="kexue.data.embedded:boom"))
    dest = tmp_path / "boom"
    dest.mkdir()
    (dest / "old.npz").write_bytes(b"old")
    with pytest.raises(RuntimeError, match="generator failed"):
        generate_dataset("boom", dest)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["boom"]
    assert sorted(p.name for p in dest.iterdir()) == ["old.npz"]
