"""Datasets are a config choice: nice and glow run on any registered image dataset of a
suitable shape by setting one key, and the grey levels come from the dataset."""

import shutil

import pytest

from conftest import REPO
from kexue import config, stages
from kexue.articles.glow.data import load_prepared as glow_prepared
from kexue.articles.nice.data import load_prepared as nice_prepared

PARAMS = config.load_params(REPO / "params.yaml")


def _params(article, datasets, source="embedded"):
    params = {**PARAMS, "profile": "smoke", "data_source": source}
    block = dict(params["articles"][article]["smoke"])
    block["data"] = {**(block.get("data") or {}), "datasets": list(datasets)}
    params["articles"] = {**params["articles"], article: {**params["articles"][article],
                                                         "smoke": block}}
    config.validate_params(params)
    return params


def _prepare(params, article, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for d in config.data_config(params, article).datasets:
        stages.download(params, d)
    stages.prepare(params, article)
    return tmp_path / "data" / "processed" / config.variant(params) / article


@pytest.mark.parametrize("dataset, levels, dims", [("digits", 17, 64), ("image_patches", 256, 768)])
def test_glow_prepares_any_embedded_image_dataset(dataset, levels, dims, tmp_path, monkeypatch):
    out = _prepare(_params("glow", [dataset]), "glow", tmp_path, monkeypatch)
    k, meta = glow_prepared(out, "", "test")
    assert meta["n_levels"] == levels and k[0].numel() == dims and int(k.max()) < levels


def test_nice_on_digits_has_17_levels(tmp_path, monkeypatch):
    out = _prepare(_params("nice", ["digits"]), "nice", tmp_path, monkeypatch)
    k, meta = nice_prepared(out, "test")
    assert (meta["n_levels"], meta["dims"]) == (17, 64) and int(k.max()) == 16


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_nice_on_an_idx_dataset_from_the_mirror(dataset, shared_datasets, tmp_path, monkeypatch):
    """Fashion-MNIST is one registry entry: the MNIST-format reader serves it unchanged."""
    params = {**_params("nice", [dataset], "official"), "mirror": str(shared_datasets)}
    out = _prepare(params, "nice", tmp_path, monkeypatch)
    k, meta = nice_prepared(out, "test")
    assert (meta["n_levels"], meta["dims"], len(k)) == (256, 784, 10_000)
    assert meta["complete_data"] is False  # smoke keeps 512 training images
    shutil.rmtree(tmp_path / "data")
