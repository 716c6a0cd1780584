"""Same content, same bytes (issue 17, item 7): a smoke run retrained and re-evaluated from
scratch with the same seed writes byte-identical files wherever a downstream stage reads them
(prepared data, model.pt, history.csv, train.json, training/, metrics.json, artifacts/), so DVC
and Snakemake see an unchanged retrain as unchanged. Timings live in the logs and Snakemake's
benchmark files, never in those outputs."""

import hashlib
import shutil
from pathlib import Path

import pytest
import torch

from conftest import REPO
from kexue import config, paths, stages
from kexue.dag import datasets_of, run_outputs

PARAMS = {**config.load_params(REPO / "params.yaml"), "profile": "smoke",
          "data_source": "embedded"}


def _sha256_of_tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _run_from_scratch(folder: Path, article: str, run: str, monkeypatch) -> dict[str, str]:
    """download -> prepare -> train -> evaluate in an empty folder; the sha256 of every file
    evaluate and report read."""
    folder.mkdir()
    monkeypatch.chdir(folder)
    shutil.copy(REPO / "params.yaml", folder / "params.yaml")
    for dataset in datasets_of(PARAMS, article):
        stages.download(PARAMS, dataset)
    stages.prepare(PARAMS, article)
    seed = config.seeds(PARAMS, article, run)[0]
    stages.train(PARAMS, article, run, seed, 1)
    stages.evaluate(PARAMS, article, run, seed, 1)
    variant = config.variant(PARAMS)
    read_downstream = [paths.path(paths.PROCESSED, variant=variant, article=article),
                       *map(Path, run_outputs(variant, article, run, seed).values())]
    hashes = {}
    for path in read_downstream:
        assert path.exists(), f"{path} was not written"
        tree = _sha256_of_tree(path) if path.is_dir() else {
            "": hashlib.sha256(path.read_bytes()).hexdigest()}
        hashes.update({f"{path}/{name}".rstrip("/"): digest for name, digest in tree.items()})
    return hashes


@pytest.mark.slow
@pytest.mark.parametrize("article, run", [("nice", "su"), ("spectra_conv1d", "conv1d")])
def test_retraining_with_the_same_seed_gives_the_same_bytes(article, run, tmp_path,
                                                              monkeypatch):
    torch.set_num_threads(1)
    first = _run_from_scratch(tmp_path / "first", article, run, monkeypatch)
    second = _run_from_scratch(tmp_path / "second", article, run, monkeypatch)
    assert any(name.endswith("model.pt") for name in first)
    assert any(name.endswith("history.csv") for name in first)
    assert first.keys() == second.keys()
    differ = sorted(name for name in first if first[name] != second[name])
    assert not differ, f"{article}/{run}: a retrain with the same seed changed {differ}"
