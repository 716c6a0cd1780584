"""params.yaml validation: every class of bad value stops before any job, naming key and value."""

import copy
import os

import pytest
import yaml

from conftest import REPO, run
from kexue import config

PARAMS = config.load_params(REPO / "params.yaml")


def _invalid(mutate, match):
    params = copy.deepcopy(PARAMS)
    mutate(params)
    with pytest.raises(config.ConfigError, match=match):
        config.validate_params(params)


def _su(params, profile="default"):
    return params["articles"]["nice"][profile]["runs"]["su"]


def test_repository_params_resolve_for_every_profile_source_run_and_seed():
    for profile in config.PROFILES:
        for source in config.DATA_SOURCES:
            params = {**PARAMS, "profile": profile, "data_source": source}
            for article in config.article_ids(params):
                config.data_config(params, article)
                for run_name in config.run_names(params, article):
                    for seed in config.seeds(params, article, run_name):
                        assert config.run_config(params, article, run_name, seed).seed == seed


def test_wrong_type_names_key_value_and_expectation():
    _invalid(lambda p: _su(p)["model"].update(hidden="big"),
             r"articles\.nice\.default\.runs\.su\.model\.hidden: 'big' is not valid "
             r"\(expected an integer > 0\)")


def test_out_of_range():
    _invalid(lambda p: _su(p)["model"].update(hidden=-5),
             r"runs\.su\.model\.hidden: -5 is out of range \(expected > 0\)")
    _invalid(lambda p: p["articles"]["nice"]["default"].update(data={"val_fraction": 1.5}),
             r"data\.val_fraction: 1\.5 is out of range \(expected <= 1\)")


def test_float_where_an_integer_is_expected():
    _invalid(lambda p: _su(p).update(epochs=2.5), r"runs\.su\.epochs: 2\.5 is not valid")


def test_bool_is_not_a_number():
    _invalid(lambda p: _su(p).update(lr=True), r"runs\.su\.lr: True is not valid")


def test_choice_outside_its_literal():
    _invalid(lambda p: _su(p).update(recipe="foo"),
             r"runs\.su\.recipe: 'foo' is not valid \(expected one of 'su', 'original'\)")


def test_unknown_keys_at_every_level():
    _invalid(lambda p: p.update(colour=1), "unknown top-level key 'colour'")
    _invalid(lambda p: _su(p).update(lr_typo=1), r"runs\.su: unknown key 'lr_typo'")
    _invalid(lambda p: _su(p)["model"].update(widht=3), r"su\.model: unknown key 'widht'")
    _invalid(lambda p: p["articles"]["nice"]["smoke"].update(extra={}), "unknown key 'extra'")


def test_unknown_profile_article_source_and_dataset():
    _invalid(lambda p: p.update(profile="huge"), r"profile: 'huge' is not valid")
    _invalid(lambda p: p.update(data_source="web"), r"data_source: 'web' is not valid")
    _invalid(lambda p: p["articles"].update(resnet={}), "unknown article 'resnet'")
    _invalid(lambda p: p["articles"]["glow"]["smoke"]["data"].update(datasets=["imagenet"]),
             "unknown dataset 'imagenet'")


def test_official_overrides_are_validated_too():
    _invalid(lambda p: p["articles"]["nice"]["default"]["official"]["runs"]["su"].update(
        epochs=-1), r"runs\.su \(with official data\)|runs\.su\.epochs: -1 is out of range")


def test_device_must_exist():
    _invalid(lambda p: p.update(device="tpu"), "device: 'tpu' is not valid")
    if not config.cuda_present():
        _invalid(lambda p: p.update(device="cuda"), "no usable CUDA GPU")


def test_seeds():
    _invalid(lambda p: _su(p).update(seeds=[0, 0]), r"seeds: \[0, 0\] is not valid")
    _invalid(lambda p: _su(p).update(seed=3), "use seeds")
    params = copy.deepcopy(PARAMS)
    _su(params).update(seeds=[3, 4])
    assert config.seeds(params, "nice", "su") == [3, 4]
    assert config.run_config(params, "nice", "su", 4).seed == 4
    with pytest.raises(config.ConfigError, match="seed 5 is not one of its seeds"):
        config.run_config(params, "nice", "su", 5)


def test_profiles_must_list_the_same_runs():
    _invalid(lambda p: p["articles"]["nice"]["smoke"]["runs"].pop("original"),
             "every profile must list the same runs")


def test_official_overrides_apply_only_to_official_data():
    params = copy.deepcopy(PARAMS)
    embedded = config.run_config(params, "nice", "su")
    params["data_source"] = "official"
    official = config.run_config(params, "nice", "su")
    assert (embedded.model.hidden, official.model.hidden) == (256, 512)
    assert official.model.depth == embedded.model.depth == 5  # nested keys merge


def test_yaml_anchors_share_settings_between_runs():
    runs = PARAMS["articles"]["glow"]["default"]["runs"]
    a, b = runs["ablation-reverse-additive"], runs["ablation-shuffle-affine"]
    assert a["epochs"] == b["epochs"] == 8 and a["model"]["permutation"] == "reverse"


def test_snakemake_rejects_a_bad_value_before_any_job():
    done = run(["snakemake", "-n", "--cores", "1", "--config", "profile=huge"], REPO, check=False)
    assert done.returncode != 0 and "huge" in done.stdout + done.stderr


def test_command_line_values_the_jobs_would_not_see_are_named():
    file_params = copy.deepcopy(PARAMS)
    config_ = {**copy.deepcopy(PARAMS), "profile": "smoke", "mirror": "/m", "device": "cpu"}
    config_["articles"]["nice"]["smoke"]["runs"]["su"]["epochs"] = 9
    assert config.unsupported_overrides(config_, file_params) == ["articles", "device"]
    assert config.unsupported_overrides(file_params, file_params) == []


def test_snakemake_refuses_a_config_value_the_jobs_would_ignore():
    done = run(["snakemake", "-n", "--cores", "1", "--config", "device=cpu"], REPO, check=False)
    out = done.stdout + done.stderr
    assert done.returncode != 0 and "--config device: the jobs read these from params.yaml" in out


def test_a_command_line_mirror_reaches_the_jobs_through_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(PARAMS))
    monkeypatch.setenv("KEXUE_DATA_MIRROR", "")  # unset for the code, restored afterwards
    config.apply_command_line({**copy.deepcopy(PARAMS), "mirror": "/some/mirror"}, path)
    assert os.environ["KEXUE_DATA_MIRROR"] == "/some/mirror"
    monkeypatch.setenv("KEXUE_DATA_MIRROR", "/set/by/user")  # the environment wins
    config.apply_command_line({**copy.deepcopy(PARAMS), "mirror": "/other"}, path)
    assert os.environ["KEXUE_DATA_MIRROR"] == "/set/by/user"
    with pytest.raises(config.ConfigError, match="--config device: the jobs read these"):
        config.apply_command_line({**copy.deepcopy(PARAMS), "device": "cpu"}, path)
