import os
import shutil
import subprocess

import torch

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from kexue import config as kexue_config
from kexue import paths
from kexue.data.registry import get_dataset
from kexue.registry import get_article

# Structure first (Snakemake's own validation), then every key against the articles' dataclasses.
validate(config, "../schemas/params.schema.yaml")
try:
    kexue_config.validate_params(config, where="config")
except kexue_config.ConfigError as e:
    raise WorkflowError(str(e))

PROFILE = config["profile"]
SOURCE = config["data_source"]
ARTICLES = kexue_config.article_ids(config)
DATASETS = sorted({d for a in ARTICLES for d in get_article(a).datasets_for(SOURCE)})
EMBEDDED = [d for d in DATASETS if get_dataset(d).kind == "embedded"]
DOWNLOADED = [d for d in DATASETS if get_dataset(d).kind != "embedded"]
# Every job runs the same CLI call that the generated DVC stage would run.
KEXUE = f"python -m kexue --profile {PROFILE} --source {SOURCE}"
# A train job holds the GPU when there is one (profiles/default caps gpu at 1); on a CPU-only
# machine there is nothing to share, so CPU jobs are limited by threads alone.
GPU = int(torch.cuda.is_available())
# Smoke jobs are tiny and mostly start-up: one thread each lets them run side by side.
JOB_THREADS = 1 if PROFILE == "smoke" else workflow.cores


def one_of(names):
    """A wildcard regex matching exactly these names (and nothing when there are none)."""
    return "|".join(names) if names else "(?!x)x"


wildcard_constraints:
    article=one_of(ARTICLES),
    run="[A-Za-z0-9_.-]+",


def runs_of(article):
    return kexue_config.run_names(config, article)


def raw_inputs(wildcards):
    datasets = get_article(wildcards.article).datasets_for(SOURCE)
    return [paths.RAW.format(dataset=d) for d in datasets]


def data_params(wildcards):
    return kexue_config.data_values(config, wildcards.article)


def run_params(wildcards):
    return kexue_config.run_values(config, wildcards.article, wildcards.run)


def article_outputs(pattern):
    return lambda wildcards: [
        pattern.format(article=wildcards.article, run=r)
        for r in runs_of(wildcards.article)
    ]


def commit_to_dvc():
    """Record the finished outputs in DVC, so that `dvc status` is clean afterwards.

    Skipped inside a DVC stage (DVC_STAGE is set): DVC commits that stage itself, and a nested
    commit would deadlock on its locks.
    """
    if (
        "DVC_STAGE" in os.environ
        or not os.path.isdir(".dvc")
        or not shutil.which("dvc")
    ):
        return
    done = subprocess.run(
        ["dvc", "commit", "--force", "--quiet"], capture_output=True, text=True
    )
    if done.returncode != 0:
        print(
            f"dvc commit failed (is dvc.yaml current? run `python -m kexue dvc-yaml`):\n"
            f"{done.stderr}"
        )
