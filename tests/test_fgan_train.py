"""fgan end to end on tiny settings: the shared feature network, prepare, train (and resume
after a kill), evaluate."""

import contextlib
import dataclasses
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import REPO
from kexue import config, stages
from kexue.articles.fgan import train as train_module
from kexue.articles.fgan.config import DataConfig, ImageModel, MixtureModel, RunConfig
from kexue.articles.fgan.data import load_images, prepare
from kexue.articles.fgan.evaluate import evaluate
from kexue.articles.fgan.published import comparisons
from kexue.comparison import ArticleResults, RunResults
from kexue.data.embedded import save_npz, sklearn_digits
from kexue.errors import DataError
from kexue.io import load_torch, write_json
from kexue.training import RunContext

torch.set_num_threads(1)
U8 = np.zeros((3, 1, 4, 4), np.uint8)


def context(tmp_path, cfg, name="run", data_dir=None):
    return RunContext(article="fgan", run=name, seed=cfg.seed, cfg=cfg, data_cfg=DataConfig(),
                      data_dir=data_dir or tmp_path / "data", out_dir=tmp_path / name / "out",
                      ckpt_dir=tmp_path / name / "ckpt", device=torch.device("cpu"),
                      profile="smoke", source="embedded")


def tiny_mixture(recipe="su", divergences=("kl", "js_half"), steps=80, **kw):
    return RunConfig(experiment="mixture", recipe=recipe, divergences=divergences,
                     mixture=MixtureModel(critic_hidden=(16, 16), batch_size=64, steps=steps, **kw))


class Killed(Exception):
    pass


@pytest.mark.parametrize("recipe,divergences", [("su", ("kl", "js_half")),
                                                ("original", ("kl", "gan"))])
def test_mixture_resumes_bit_identically(tmp_path, monkeypatch, recipe, divergences):
    cfg = tiny_mixture(recipe, divergences)
    train_module.train(context(tmp_path, cfg, "clean"))
    clean = load_torch(tmp_path / "clean" / "out" / "model.pt")

    real_make_step = train_module.make_step

    def dying_make_step(*args, **kw):
        step = real_make_step(*args, **kw)

        def call(s):
            if s == 37:
                raise Killed
            return step(s)
        return call

    ctx = context(tmp_path, cfg, "killed")
    monkeypatch.setattr(train_module, "make_step", dying_make_step)
    with pytest.raises(Killed):
        train_module.train(ctx)
    assert not (ctx.out_dir / "model.pt").exists()
    monkeypatch.setattr(train_module, "make_step", real_make_step)
    train_module.train(ctx)
    resumed = load_torch(ctx.out_dir / "model.pt")
    assert clean.keys() == resumed.keys() and "mu_average" in clean
    for k, v in clean.items():
        assert torch.equal(v, resumed[k]), f"{k} differs after resuming"


def test_kl_fit_reaches_moment_matching(tmp_path):
    """A model that learns: the KL fit of the mixture lands near its mean and sd (0.1, 1.908)."""
    cfg = tiny_mixture("su", ("kl",), steps=1500, lr=3e-3)
    cfg = dataclasses.replace(cfg, mixture=dataclasses.replace(cfg.mixture, batch_size=256,
                                                               critic_hidden=(32, 32)))
    ctx = context(tmp_path, cfg)
    train_module.train(ctx)
    m = evaluate(ctx)
    assert m["dmu__kl"] < 0.05 and m["dsigma__kl"] < 0.1, m
    assert m["mu_true__kl"] == pytest.approx(0.1, abs=1e-5)
    assert (ctx.artifacts / "fits.png").exists()
    # the critic's bound is a lower bound on the true divergence, and not a trivial one
    assert 0.5 * m["divergence_last__kl"] < m["bound_last__kl"] < m["divergence_last__kl"] + 0.02
    rows = comparisons(ArticleResults("fgan", "smoke", "embedded",
                                      {"mixture": RunResults("mixture", {0: m})}))
    assert [r.metric for r in rows] == ["|Δμ| kl", "|Δσ| kl"]
    assert rows[0].comparable and rows[0].status == "within band"


@pytest.fixture(scope="module")
def digits_root(tmp_path_factory):
    """A scratch repository root: the generated digits, the DAG's shared feature network of
    the smoke profile (data/features/smoke-embedded/digits) and fgan's prepared data."""
    root = tmp_path_factory.mktemp("fgan_digits")
    raw, out = root / "data/raw/digits", root / "processed"
    raw.mkdir(parents=True)
    out.mkdir()
    sklearn_digits(raw)
    params = {**config.load_params(REPO / "params.yaml"), "profile": "smoke",
              "data_source": "embedded"}
    with contextlib.chdir(root):
        stages.features(params, "digits", threads=1)
    prepare(DataConfig(), {"digits": raw}, out, "embedded")
    return root


@pytest.fixture
def digits_data(digits_root, monkeypatch) -> Path:
    monkeypatch.chdir(digits_root)  # where the runs look for data/features/...
    return digits_root / "processed"


def test_prepare_splits(digits_data):
    images = load_images(digits_data)
    assert (len(images.train), len(images.validation), len(images.test)) == (1137, 300, 360)
    assert images.train.shape[1:] == (1, 8, 8)
    assert 0 <= images.train.min() <= images.train.max() <= 1
    assert not (digits_data / "features").exists()  # the network is the shared job's
    # the validation split is cut from the training images, disjoint from them
    train = {tuple(x.flatten().tolist()) for x in images.train}
    assert sum(tuple(x.flatten().tolist()) in train for x in images.validation) < 10


@pytest.mark.parametrize("recipe,divergences", [("su", ("kl", "squared_hellinger")),
                                                ("original", ("jeffrey", "gan"))])
def test_images_train_and_evaluate(tmp_path, digits_data, recipe, divergences):
    cfg = RunConfig(experiment="images", recipe=recipe, divergences=divergences,
                    images=ImageModel(latent_dim=8, generator_hidden=32, critic_hidden=16,
                                      batch_size=64, steps=40, grid_every=20))
    cfg = dataclasses.replace(cfg, evaluation=dataclasses.replace(
        cfg.evaluation, parzen_samples=256, fid_samples=128))
    ctx = context(tmp_path, cfg, data_dir=digits_data)
    train_module.train(ctx)
    history = (ctx.out_dir / "history.csv").read_text().splitlines()
    assert len(history) == 3 and all(f"fid_{k}" in history[0] and f"bound_{k}" in history[0]
                                     for k in divergences)
    assert len(list(ctx.train_artifacts.glob("*.png"))) == 4
    m = evaluate(ctx)
    for k in divergences:
        assert math.isfinite(m[f"parzen_ll__{k}"]) and m[f"parzen_sem__{k}"] > 0
        assert m[f"fid__{k}"] > m["fid__validation_images"]
        assert m[f"finite_samples__{k}"] == 1.0
        assert (ctx.artifacts / f"samples_{k}.png").exists()
    assert m["fid_label"] == "feature FID (self-trained classifier)"
    # the control: 40 steps do not saturate the bounded critic; the unbounded one is not judged
    bounded, unbounded = (("squared_hellinger", "kl") if recipe == "su" else ("gan", "jeffrey"))
    assert m[f"d_saturated__{bounded}"] is False and m[f"d_saturated__{unbounded}"] is None
    assert m["d_saturated"] is False and m[f"final_d_loss__{bounded}"] > 0.05
    rows = comparisons(ArticleResults("fgan", "smoke", "embedded",
                                      {"images": RunResults("images", {0: m})}))
    assert all(r.status in ("not comparable", "no published number") for r in rows)
    assert (rows[-1].published is not None) == (recipe == "original")


def test_prepare_mnist_from_the_mirror(tmp_path, shared_datasets):
    """Official data: 50k train / 10k validation (for the Parzen width) / the official 10k test."""
    out = tmp_path / "processed"
    out.mkdir()
    prepare(DataConfig(), {"mnist": shared_datasets / "mnist"}, out, "official")
    images = load_images(out)
    assert (len(images.train), len(images.validation), len(images.test)) == (50_000, 10_000,
                                                                            10_000)
    assert images.meta["n_levels"] == 256 and images.meta["complete_data"]
    assert images.train.shape[1:] == (1, 28, 28)


def test_images_need_the_shared_feature_network(tmp_path, digits_data):
    """A run of a variant whose features job has not run stops with the command to run."""
    cfg = RunConfig(experiment="images", recipe="su", divergences=("kl",),
                    images=ImageModel(latent_dim=8, generator_hidden=16, critic_hidden=8,
                                      batch_size=64, steps=4, grid_every=2))
    ctx = dataclasses.replace(context(tmp_path, cfg, data_dir=digits_data), profile="default")
    with pytest.raises(DataError, match="python -m kexue features digits"):
        train_module.train(ctx)


@pytest.mark.faults("Broken/hostile input: npz")
@pytest.mark.parametrize("damage, problem", [
    (lambda path: save_npz(path, train=np.zeros((3, 16), np.float32), validation=U8, test=U8,
                           test_labels=np.zeros(3, np.int64)),
     r"train is float32 of shape \(3, 16\); expected 4 dimensions of dtype kind u"),
    (lambda path: save_npz(path, train=U8, validation=U8, test=U8) or path.write_bytes(
        path.read_bytes()[:-40]), "not a valid .npz file"),
], ids=["wrong dtype", "truncated"])
def test_a_broken_prepared_npz_is_named(tmp_path, damage, problem):
    """The prepared images.npz of the wrong dtype, or cut short: a DataError naming the file
    and the member, on one line."""
    write_json(tmp_path / "data.json", {"n_levels": 17})
    damage(tmp_path / "images.npz")
    with pytest.raises(DataError, match=rf"^{re.escape(str(tmp_path / 'images.npz'))}: "
                                        rf"{problem}") as err:
        load_images(tmp_path)
    assert "\n" not in str(err.value)
