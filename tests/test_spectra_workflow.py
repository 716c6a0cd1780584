"""spectra_conv1d plugs into the foundation: registry, params block, notebook, the smoke DAG."""

import nbformat
import pytest
import yaml

from conftest import REPO, run
from kexue import config
from kexue.registry import get_article

BLOCK = REPO / "workflow" / "params.d" / "spectra_conv1d.yaml"


def _params(profile="smoke"):
    """params.yaml with this article's block (merged from params.d when not there yet)."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    if "spectra_conv1d" not in (params.get("articles") or {}):
        block = yaml.safe_load("articles:\n" + BLOCK.read_text())["articles"]
        params["articles"] = {**(params.get("articles") or {}), **block}
    return {**params, "profile": profile}


def test_registry_entry_and_datasets():
    art = get_article("spectra_conv1d")
    assert art.datasets_for("embedded") == ("synthetic_spectra", "mnist1d")
    assert art.datasets_for("official") == ("tianchi_spectra", "mnist1d")
    for name in ("DataConfig", "RunConfig", "prepare", "train", "evaluate", "comparisons"):
        assert hasattr(art.module, name)


@pytest.mark.parametrize("profile", config.PROFILES)
@pytest.mark.parametrize("source", config.DATA_SOURCES)
def test_params_block_is_valid_for_every_profile(profile, source):
    params = {**_params(profile), "data_source": source}
    config.validate_params(params)
    assert config.run_names(params, "spectra_conv1d") == ["conv1d", "mnist1d"]
    assert config.run_config(params, "spectra_conv1d", "mnist1d").task == "mnist1d"
    cfg = config.run_config(params, "spectra_conv1d", "conv1d")
    assert cfg.task == "spectra" and set(cfg.batch_mix) == {"star", "unknown", "galaxy", "qso"}
    data = config.data_config(params, "spectra_conv1d")
    assert data.split_seed == 2018 and data.val_fraction == 0.2


def test_full_profile_is_the_articles_recipe():
    cfg = config.run_config({**_params("full"), "data_source": "official"}, "spectra_conv1d",
                            "conv1d")
    assert cfg.batch_mix == {"star": 128, "unknown": 16, "galaxy": 8, "qso": 8}
    assert (cfg.steps_per_epoch, cfg.epochs1, cfg.epochs2, cfg.lr1, cfg.lr2, cfg.adam_eps) == (
        500, 50, 50, 1e-3, 1e-4, 1e-7)


def test_notebook_parameters_cell():
    nb = nbformat.read(REPO / "workflow" / "notebooks" / "spectra_conv1d.ipynb", as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert "parameters" in first.metadata.get("tags", [])
    assert 'article = "spectra_conv1d"' in first.source
    assert 'results_dir = "results/spectra_conv1d"' in first.source
    assert nb.metadata.kernelspec.name == "python3"


def test_article_is_in_the_smoke_dag(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(_params("smoke"), sort_keys=False))
    out = run(["snakemake", "-n", "--forceall", "--nolock", "--cores", "2", "--configfile",
               str(params),
               "--", "results/spectra_conv1d/report.html"], REPO).stdout
    for target in ("data/raw/synthetic_spectra", "data/raw/mnist1d",
                   "results/spectra_conv1d/conv1d/metrics.json",
                   "results/spectra_conv1d/mnist1d/metrics.json",
                   "results/spectra_conv1d/report.html"):
        assert target in out, target
