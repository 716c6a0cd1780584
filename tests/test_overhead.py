"""What keeps `snakemake -n` and `dvc status` quick when there is nothing to do (README "Speed")."""

import importlib.metadata
import os
import shutil
import subprocess
import time

import pytest

from conftest import REPO
from kexue import config


def test_cuda_is_looked_up_once_per_process(monkeypatch):
    """Snakemake asks for every job's gpu resource; each look-up of torch's version scans
    sys.path, so the answer is cached."""
    calls = []
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version",
                        lambda name: calls.append(name) or real(name))
    config.cuda_present.cache_clear()
    try:
        answers = {config.cuda_present() for _ in range(5)}
    finally:
        config.cuda_present.cache_clear()
    assert len(answers) == 1 and calls == ["torch"]


def test_dvc_parses_yaml_with_libyaml():
    """DVC reads params.yaml once per stage, and dvc.yaml and dvc.lock, through ruamel.yaml's
    safe loader: without ruamel.yaml.clib (a dependency in pyproject.toml) that loader is pure
    Python and `dvc status` takes several times longer."""
    from ruamel.yaml import YAML
    from ruamel.yaml.main import CParser

    assert CParser is not None, "ruamel.yaml.clib is missing: pip install -e . again"
    loader = YAML(typ="safe")
    assert loader.Parser is CParser
    assert loader.load((REPO / "params.yaml").read_text()) == config.load_params(
        REPO / "params.yaml")


@pytest.mark.slurm
def test_a_stopped_local_slurm_answers_scontrol_at_once():
    """The Snakemake SLURM plugin runs `scontrol show config` whenever snakemake starts; after
    `slurm-local.sh stop` it must fail at once, not wait for a controller that is gone."""
    if os.geteuid() != 0 or not shutil.which("scontrol"):
        pytest.skip("needs root and SLURM's client (scripts/slurm-local.sh start installs it)")
    up = subprocess.run(["sinfo", "-h"], capture_output=True, check=False, timeout=60)
    if up.returncode == 0:
        pytest.skip("a SLURM is running here: not stopping it")
    subprocess.run(["bash", str(REPO / "scripts" / "slurm-local.sh"), "stop"], check=True,
                   capture_output=True, timeout=120)
    start = time.monotonic()
    done = subprocess.run(["scontrol", "show", "config"], capture_output=True, check=False,
                          timeout=60)
    assert done.returncode != 0 and time.monotonic() - start < 2
