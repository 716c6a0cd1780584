"""Cluster requests of workflow jobs (kexue.resources)."""

import pytest

from kexue import resources
from kexue.errors import ConfigError
from kexue.registry import get_article
from kexue.resources import DEFAULTS, JobResources, job_resources


def params(profile="full", device="cpu"):
    return {"profile": profile, "device": device}


def test_profiles_without_a_declaration_get_the_defaults():
    assert job_resources(params("smoke"), "train", "nice") == {
        "mem_mb": DEFAULTS["smoke"].mem_mb, "runtime": DEFAULTS["smoke"].runtime, "gpu": 0}


def test_an_articles_declaration_wins_for_its_profile_only(monkeypatch):
    config = get_article("nice").part("config")
    monkeypatch.setattr(config, "RESOURCES", {"full": JobResources(mem_mb=123, runtime=45)},
                        raising=False)
    assert job_resources(params("full"), "train", "nice")["mem_mb"] == 123
    assert job_resources(params("full"), "train", "nice")["runtime"] == 45
    assert job_resources(params("default"), "train", "nice")["mem_mb"] == DEFAULTS["default"].mem_mb


def test_a_declaration_of_the_wrong_type_is_a_config_error(monkeypatch):
    config = get_article("nice").part("config")
    monkeypatch.setattr(config, "RESOURCES", {"full": {"mem_mb": 1}}, raising=False)
    with pytest.raises(ConfigError, match="RESOURCES"):
        job_resources(params("full"), "train", "nice")


@pytest.mark.parametrize("device, rule, gpu", [
    ("cuda", "train", 1), ("cuda:1", "evaluate", 1), ("cuda", "prepare", 0),
    ("cuda", "report", 0), ("cpu", "train", 0)])
def test_model_jobs_ask_for_a_gpu_when_the_device_says_so(device, rule, gpu):
    article = None if rule == "report" else "glow"
    assert job_resources(params(device=device), rule, article)["gpu"] == gpu


def test_auto_asks_for_a_gpu_when_this_machine_has_one(monkeypatch):
    monkeypatch.setattr(resources, "cuda_present", lambda: True)
    assert job_resources(params(device="auto"), "train", "nice")["gpu"] == 1
    monkeypatch.setattr(resources, "cuda_present", lambda: False)
    assert job_resources(params(device="auto"), "train", "nice")["gpu"] == 0


def test_non_positive_requests_are_rejected():
    with pytest.raises(ConfigError):
        JobResources(mem_mb=0, runtime=10)
