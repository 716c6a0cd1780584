"""params.yaml validation: an unknown profile, article or key stops with a message naming it."""

import copy

import pytest

from conftest import REPO, run
from kexue import config

PARAMS = config.load_params(REPO / "params.yaml")


def _invalid(mutate, match):
    params = copy.deepcopy(PARAMS)
    mutate(params)
    with pytest.raises(config.ConfigError, match=match):
        config.validate_params(params)


def test_repository_params_are_valid_and_every_run_resolves():
    for article in config.article_ids(PARAMS):
        config.data_config(PARAMS, article)
        for run_name in config.run_names(PARAMS, article):
            assert config.run_config(PARAMS, article, run_name).seed is not None


def test_unknown_profile():
    _invalid(lambda p: p.update(profile="huge"), "unknown profile 'huge'")


def test_unknown_article():
    _invalid(lambda p: p["articles"].update(resnet={}), "unknown article 'resnet'")


def test_unknown_run_key_names_its_path():
    _invalid(lambda p: p["articles"]["nice"]["smoke"]["runs"]["su"].update(lr_typo=1),
             r"articles\.nice\.smoke\.runs\.su: unknown key 'lr_typo'")


def test_profiles_must_list_the_same_runs():
    _invalid(lambda p: p["articles"]["nice"]["smoke"]["runs"].pop("original"),
             "every profile must list the same runs")


def test_official_overrides_apply_only_to_official_data():
    params = copy.deepcopy(PARAMS)
    params["profile"] = "default"
    embedded = config.run_config(params, "nice", "su")
    params["data_source"] = "official"
    official = config.run_config(params, "nice", "su")
    assert (embedded.hidden, official.hidden) == (256, 512)


def test_snakemake_rejects_an_unknown_profile_by_name():
    done = run(["snakemake", "-n", "--cores", "1", "--config", "profile=huge"], REPO, check=False)
    assert done.returncode != 0
    assert "huge" in done.stdout + done.stderr
