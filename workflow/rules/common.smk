import os

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from kexue import config as kexue_config
from kexue import dag, paths
from kexue.dvcgen import sync_dvc_yaml
from kexue.errors import ConfigError
from kexue.resources import job_resources

# Before the schema fills in defaults: --config values the jobs would not see are refused.
try:
    kexue_config.apply_command_line(config)
except ConfigError as e:
    raise WorkflowError(str(e))

# Structure first (Snakemake's own validation), then every value against the articles'
# config dataclasses: types, ranges and choices, before any job starts.
validate(config, "../schemas/params.schema.yaml")
try:
    kexue_config.validate_params(config, where="config")
    JOBS = dag.jobs(config)
except ConfigError as e:
    raise WorkflowError(str(e))

VARIANT = kexue_config.variant(config)
ARTICLES = kexue_config.article_ids(config)
DATASETS = sorted(
    {j.wildcards["dataset"] for j in JOBS if j.rule in ("download", "generate")}
)
EMBEDDED = [d for d in DATASETS if dag.dataset_rule(d) == "generate"]
DOWNLOADED = [d for d in DATASETS if dag.dataset_rule(d) == "download"]
# Every job runs the same CLI call that the generated DVC stage would run.
KEXUE = (
    f"python -m kexue --profile {config['profile']} --source {config['data_source']}"
)
# Raw datasets are shared by every profile: their jobs' command must not name one, or a run of
# another profile would see a changed command and redo them (and everything downstream).
KEXUE_DATA = f"python -m kexue --source {config['data_source']}"
# dvc.yaml follows params.yaml (not --config overrides): regenerated here when it is stale,
# except inside a DVC stage, which must not rewrite the file DVC is reading.
if "DVC_STAGE" not in os.environ:
    sync_dvc_yaml()


def one_of(names):
    """A wildcard regex matching exactly these names (and nothing when there are none)."""
    return "|".join(names) if names else "(?!x)x"


def job_of(name, wildcards):
    """The job of rule ``name`` with these wildcards, from kexue.dag's list."""
    want = {k: str(v) for k, v in wildcards.items()}
    for job in JOBS:
        if (job.rule, {k: str(v) for k, v in job.wildcards.items()}) == (name, want):
            return job
    raise WorkflowError(f"no {name} job for {dict(wildcards)}")


def inputs_of(name):
    return lambda wildcards: list(job_of(name, wildcards).inputs)


def run_threads(wildcards):
    """Threads of a train/evaluate job: the run's own ``threads`` setting when it has one
    (tiny models run faster on one), else every core; smoke jobs use one each."""
    cfg = kexue_config.run_config(
        config, wildcards.article, wildcards.run, int(wildcards.seed)
    )
    if config["profile"] == "smoke":
        return 1
    return getattr(cfg, "threads", 0) or workflow.cores


def requests(rule_name, key):
    """Resource ``key`` (mem_mb, runtime in minutes, gpu) of a ``rule_name`` job, from
    kexue.resources: the article's RESOURCES for the profile, else the profile's defaults. A job
    holds the GPU when params' device asks for one (profiles/default caps gpu at 1); SLURM turns
    them into --mem, -t and --gpus."""
    return lambda wildcards: job_resources(config, rule_name, wildcards.get("article"))[key]


def hold_dvc_lock():
    """Hold DVC's repository lock for the whole run: a `dvc repro` started beside it stops
    before it deletes any output, and this run refuses to start beside one (kexue.dvclock)."""
    from kexue.dvclock import DvcRunning, hold

    try:
        hold()
    except DvcRunning as e:
        raise WorkflowError(str(e))


def commit_to_dvc():
    """Record the finished outputs in DVC, so that `dvc status` is clean afterwards. Only for
    the variant of params.yaml (the one dvc.yaml describes); inside a DVC stage DVC commits
    itself (a nested commit would deadlock on its locks), after the outputs it already holds
    are linked with their new timestamps."""
    from kexue.dvcgen import commit_outputs, link_reproduced_outputs
    from kexue.dvclock import release

    link_reproduced_outputs(VARIANT)
    release()  # `dvc commit` needs the lock this run held
    commit_outputs(VARIANT)
