"""What a workflow job asks a cluster for: memory, a wall-time limit and GPUs.

The Snakemake rules read these per job (``resources:``) and the SLURM executor plugin turns
them into ``--mem``, ``-t`` and ``--gpus`` (threads, ``--cpus-per-task``, come from the run's
own ``threads`` setting). An article states its needs in its ``config.py``::

    RESOURCES = {"full": JobResources(mem_mb=8000, runtime=120)}   # per profile

and gets ``DEFAULTS`` for the profiles it leaves out. Requests are not results: they are not
part of any RunConfig, so changing one never invalidates a trained model or a DVC stage. A job
asks for a GPU when params' ``device`` says so (``cuda``, ``cuda:<n>``), or, with ``auto``,
when the submitting machine has one; only jobs that run a model (``train``, ``evaluate``) do.
This module imports no torch: Snakemake reads it while it parses the DAG.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kexue.config import cuda_present
from kexue.errors import ConfigError
from kexue.registry import get_article


@dataclass(frozen=True)
class JobResources:
    mem_mb: int  # peak resident memory of the job, with headroom
    runtime: int  # wall-time limit in minutes (SLURM kills the job after it)

    def __post_init__(self):
        if self.mem_mb <= 0 or self.runtime <= 0:
            raise ConfigError(f"JobResources: mem_mb and runtime must be > 0, got {self}")


# Generous enough for the three articles on main; an article with bigger needs says so.
DEFAULTS = {
    "smoke": JobResources(mem_mb=2000, runtime=15),
    "default": JobResources(mem_mb=4000, runtime=120),
    "full": JobResources(mem_mb=16000, runtime=48 * 60),
}
MODEL_RULES = ("train", "evaluate")  # the jobs that put a model on the device


def wants_gpu(params: dict[str, Any]) -> bool:
    device = str(params.get("device", "auto"))
    if device == "auto":
        return cuda_present()
    return device.startswith("cuda")


def job_resources(params: dict[str, Any], rule: str, article_id: str | None = None) -> dict:
    """The ``resources`` of one job: mem_mb, runtime (minutes) and gpu (0 or 1)."""
    profile = params["profile"]
    declared = {}
    if article_id is not None:
        declared = getattr(get_article(article_id).part("config"), "RESOURCES", {})
    res = declared.get(profile, DEFAULTS[profile])
    if not isinstance(res, JobResources):
        raise ConfigError(f"kexue.articles.{article_id}.config.RESOURCES[{profile!r}]: expected "
                          f"a JobResources, got {res!r}")
    gpu = int(rule in MODEL_RULES and wants_gpu(params))
    return {"mem_mb": res.mem_mb, "runtime": res.runtime, "gpu": gpu}
