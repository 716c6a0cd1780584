"""vi_gan end to end on the smoke profile, in a scratch folder: features → prepare → train →
kill and resume → evaluate → comparison rows; and the DAG's shared feature-network job."""

import math
import shutil

import pytest
import torch

from conftest import REPO
from kexue import config, dag, stages
from kexue.comparison import ArticleResults, RunResults
from kexue.data.fetch import generate_dataset
from kexue.errors import ConfigError
from kexue.io import load_torch, read_json
from kexue.registry import get_article

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A scratch repository root with the smoke params and the generated digits."""
    root = tmp_path_factory.mktemp("vi_gan")
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    generate_dataset("digits", root / "data/raw/digits")
    return root


@pytest.fixture
def params(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    p = config.load_params("params.yaml")
    p.update(profile="smoke", data_source="embedded")
    return p


@pytest.fixture(scope="module")
def prepared(workdir):
    import os

    here = os.getcwd()
    os.chdir(workdir)
    try:
        p = config.load_params("params.yaml")
        p.update(profile="smoke", data_source="embedded")
        stages.features(p, "digits", threads=1)
        stages.prepare(p, "vi_gan")
    finally:
        os.chdir(here)
    return workdir


def run_dir(run, seed=0):
    return f"results/smoke-embedded/vi_gan/{run}/seed{seed}"


class Killed(Exception):
    pass


@pytest.mark.parametrize("run", ["ring-e1-su", "e2-su", "vae"])
def test_kill_and_resume_gives_bit_identical_weights(prepared, params, monkeypatch, run):
    stages.train(params, "vi_gan", run, 0, threads=1)
    straight = load_torch(f"{run_dir(run)}/model.pt")
    shutil.rmtree(run_dir(run))

    from kexue import training

    original = training.fit

    def fit_killed_midway(**kw):  # dies after the first history row's checkpoint
        step = kw["train_step"]
        stop = kw["steps_per_epoch"] + 1

        def dying(i):
            if i == stop:
                raise Killed
            return step(i)
        return original(**{**kw, "train_step": dying})

    monkeypatch.setattr(training, "fit", fit_killed_midway)
    with pytest.raises(Killed):
        stages.train(params, "vi_gan", run, 0, threads=1)
    monkeypatch.setattr(training, "fit", original)
    stages.train(params, "vi_gan", run, 0, threads=1)
    resumed = load_torch(f"{run_dir(run)}/model.pt")
    flat = (lambda s: {k: v for part in s.values() for k, v in part.items()}
            if "generator" in s else s)
    a, b = flat(straight), flat(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_gan_runs_are_evaluated_and_compared(prepared, params):
    for run in ("ring-e1-plain", "e1-su", "em"):
        stages.train(params, "vi_gan", run, 0, threads=1)
        stages.evaluate(params, "vi_gan", run, 0, threads=1)
    ring = read_json(f"{run_dir('ring-e1-plain')}/metrics.json")
    image = read_json(f"{run_dir('e1-su')}/metrics.json")
    em = read_json(f"{run_dir('em')}/metrics.json")
    assert 0 <= ring["modes_covered"] <= 8 and 0 <= ring["high_quality"] <= 1
    assert ring["data_label"].startswith("synthetic")
    assert image["feature_fid"] > 0 and "self-trained classifier" in image["metric_note"]
    assert image["data_label"].startswith("embedded")
    assert em["matches_sklearn"] and em["monotone"]
    history = (prepared / run_dir("e1-su") / "history.csv").read_text().split("\n")[0]
    assert "feature_fid" in history and "diversity_ratio" in history
    grids = sorted((prepared / run_dir("e1-su") / "training").glob("samples_*.png"))
    assert len(grids) == 2  # one per evaluation, at the fixed z

    results = ArticleResults("vi_gan", "smoke", "embedded", {
        run: RunResults(run, {0: read_json(f"{run_dir(run)}/metrics.json")})
        for run in ("ring-e1-plain", "e1-su", "em")})
    rows = {c.run: c for c in get_article("vi_gan").part("published").comparisons(results)}
    assert rows["ring-e1-plain"].status == "no published number"  # an analogue only
    assert rows["em"].status == "within band"
    assert math.isfinite(rows["e1-su"].mean)


def test_the_feature_network_is_one_shared_job_feeding_the_gan_runs(params):
    jobs = dag.jobs({**params, "profile": "default"})
    features = [j for j in jobs if j.rule == "features"]
    assert [j.name for j in features] == ["features--default-embedded--digits"]
    net = features[0].outputs[0]
    assert features[0].inputs == ("data/raw/digits",)
    trains = [j for j in jobs if j.rule in ("train", "evaluate")]
    assert all((net in j.inputs) == (j.article in ("vi_gan", "fgan", "lipschitz"))
               for j in trains)


def test_bad_values_name_the_key(params):
    params["articles"]["vi_gan"]["smoke"]["runs"]["ring-e1-su"]["schedule"] = "two_each"
    with pytest.raises(ConfigError, match="ring-e1-su"):
        config.validate_params(params)
    params["articles"]["vi_gan"]["smoke"]["runs"]["ring-e1-su"].update(
        schedule="one_batch_each", architecture="dcgan")
    with pytest.raises(ConfigError, match="architecture: mlp"):
        config.run_config(params, "vi_gan", "ring-e1-su")
