"""The shared feature-network stage: one `features` job per image dataset and variant, an input
of every GAN article that scores samples with it, trained on the images those articles score
(their data.images), and refused by a run whose images differ."""

import contextlib
import copy

import numpy as np
import pytest
import torch

from conftest import REPO
from kexue import config, dag, stages
from kexue.data.embedded import sklearn_digits
from kexue.data.images import READER_OPTIONS, READERS, ImageOptions, load_image_dataset
from kexue.errors import ConfigError, DataError
from kexue.io import read_json
from kexue.metrics.features import feature_dir, load_feature_net, load_shared_feature_net
from kexue.training import RunContext

torch.set_num_threads(1)

PARAMS = config.load_params(REPO / "params.yaml")
GAN_ARTICLES = {"vi_gan", "fgan", "lipschitz"}


def variant_params(profile: str, source: str) -> dict:
    return {**copy.deepcopy(PARAMS), "profile": profile, "data_source": source}


def feature_users(jobs) -> dict[str, set[str]]:
    """features output -> the articles whose train and evaluate jobs all read it."""
    runs = [j for j in jobs if j.rule in ("train", "evaluate")]
    return {j.outputs[0]: {r.article for r in runs if j.outputs[0] in r.inputs}
            for j in jobs if j.rule == "features"}


@pytest.mark.parametrize("profile", ["smoke", "default", "full"])
def test_every_gan_article_reads_the_one_digits_job(profile):
    jobs = dag.jobs(variant_params(profile, "embedded"))
    net = f"data/features/{profile}-embedded/digits"
    assert feature_users(jobs) == {net: GAN_ARTICLES}
    for article in GAN_ARTICLES:  # every run of the article, not only some
        runs = [j for j in jobs if j.rule in ("train", "evaluate") and j.article == article]
        assert runs and all(net in j.inputs for j in runs)


def test_full_official_plans_celeba_for_vi_gan_and_lipschitz():
    jobs = dag.jobs(variant_params("full", "official"))
    assert feature_users(jobs) == {"data/features/full-official/celeba": {"vi_gan", "lipschitz"},
                                   "data/features/full-official/mnist": {"vi_gan", "fgan"}}
    celeba = next(j for j in jobs if j.name == "features--full-official--celeba")
    assert celeba.inputs == ("data/raw/celeba",)
    # lipschitz Part B on CelebA with Su's 64x64 networks, the digits dropped
    p = variant_params("full", "official")
    gan = config.run_config(p, "lipschitz", "B-wgan-sn-su").gan
    assert gan.datasets == ("ring", "celeba") and gan.iterations["celeba"] == 100_000
    assert gan.critic_widths == (64, 128, 256, 512) and gan.latent_dim == 100
    assert config.data_config(p, "lipschitz").part_b == ("celeba",)


def test_the_job_reads_the_dataset_as_its_articles_do():
    p = variant_params("full", "official")
    assert stages.feature_net_images(p, "celeba").image_size == 64  # vi_gan's and lipschitz's
    # options the digits reader does not read never conflict (fgan keeps image_size 32)
    digits = stages.feature_net_images(variant_params("default", "embedded"), "digits")
    assert digits == ImageOptions()


def test_articles_disagreeing_on_a_shared_dataset_stop_its_features_job():
    p = variant_params("full", "official")
    p["articles"]["lipschitz"]["full"]["data"]["images"] = {"image_size": 32}
    with pytest.raises(ConfigError, match=r"articles\.lipschitz\.full\.data\.images.*"
                                          r"image_size': 32"):
        stages.features(p, "celeba", threads=1)  # before it looks for the data


def test_every_reader_says_which_options_it_reads(tmp_path):
    assert READER_OPTIONS.keys() == READERS.keys()
    sklearn_digits(tmp_path)
    base = load_image_dataset("digits", tmp_path, ImageOptions())
    same = load_image_dataset("digits", tmp_path, ImageOptions(image_size=64))
    other = load_image_dataset("digits", tmp_path, ImageOptions(digits_test_size=300))
    assert np.array_equal(base.test, same.test) and base.test_split == same.test_split
    assert len(other.test) == 300 and other.test_split != base.test_split


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """A scratch repository root with the digits and their smoke feature network."""
    root = tmp_path_factory.mktemp("features")
    sklearn_digits(root / "data/raw/digits")
    with contextlib.chdir(root):
        stages.features(variant_params("smoke", "embedded"), "digits", threads=1)
    return root


def context(profile="smoke") -> RunContext:
    return RunContext(article="fgan", run="r", seed=0, cfg=None, data_cfg=None, data_dir=None,
                      out_dir=None, ckpt_dir=None, device=torch.device("cpu"), profile=profile,
                      source="embedded")


def test_the_job_records_what_it_trained_on(root, monkeypatch):
    monkeypatch.chdir(root)
    info = read_json(feature_dir(context(), "digits") / "info.json")
    images = load_image_dataset("digits", root / "data/raw/digits")
    assert (info["data_label"], info["test_split"]) == (images.label, images.test_split)
    assert info["image_options"] == {"digits_test_size": 360, "split_seed": 2018}
    assert info["kind"] == "classifier" and info["steps"] == 30  # the smoke budget


def test_a_run_gets_the_network_of_the_images_it_scores(root, monkeypatch):
    monkeypatch.chdir(root)
    images = load_image_dataset("digits", root / "data/raw/digits")
    net, info = load_shared_feature_net(context(), "digits", images.label, images.test_split)
    reference, saved = load_feature_net(root / "data/features/smoke-embedded/digits/model.pt")
    assert info == saved
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(),
                                                 reference.state_dict().values()))
    other = load_image_dataset("digits", root / "data/raw/digits",
                               ImageOptions(digits_test_size=300))
    with pytest.raises(DataError, match="trained on .*stratified 360.*this run scores"):
        load_shared_feature_net(context(), "digits", other.label, other.test_split)
    with pytest.raises(DataError, match="python -m kexue features digits"):
        load_shared_feature_net(context("default"), "digits", images.label, images.test_split)
