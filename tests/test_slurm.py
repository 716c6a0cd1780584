"""The workflow on a real SLURM (scripts/slurm-local.sh) through profiles/slurm.

Needs root and apt-get (CI runs as root): the fixture installs and starts a single-node SLURM
on 127.0.0.1 with one stand-in GPU; elsewhere these tests are skipped. The scheduler's own
records (`scontrol show job`, the jobcomp log) show that the jobs went through it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import torch
import yaml

from conftest import REPO, run, tool_env
from kexue import config, paths

pytestmark = pytest.mark.slurm

SCRIPT = REPO / "scripts" / "slurm-local.sh"
PROFILE = ["--profile", str(REPO / "profiles" / "slurm"), "--workflow-profile", "none"]
JOBCOMP = Path("/var/log/slurm/jobcomp.log")
# The plugin names the rule in each job's log folder: .snakemake/slurm_logs/rule_<rule>/...
SUBMITTED = re.compile(r"has been submitted with SLURM jobid (\d+) \(log: \S*/rule_([a-z_]+?)/")


def _slurm_up() -> bool:
    done = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True,
                          check=False) if shutil.which("sinfo") else None
    return done is not None and done.returncode == 0 and done.stdout.strip() != ""


@pytest.fixture(scope="module")
def slurm():
    """A running single-node SLURM; started (and stopped afterwards) here unless one was up."""
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        pytest.skip("snakemake-executor-plugin-slurm is not installed (pip install .[cluster])")
    was_up = _slurm_up()
    if not was_up and (os.geteuid() != 0 or not shutil.which("apt-get")):
        pytest.skip("starting SLURM needs root and apt-get")
    env = dict(os.environ, SLURM_LOCAL_GPUS="1")
    done = subprocess.run(["bash", str(SCRIPT), "start"], env=env, capture_output=True,
                          text=True, check=False, timeout=900)
    if done.returncode == 3:  # the script's "packages not available" (offline, no apt-get)
        pytest.skip(f"SLURM's Debian packages could not be installed: {done.stderr.strip()}")
    assert done.returncode == 0, f"slurm-local.sh start failed:\n{done.stdout}\n{done.stderr}"
    yield
    if not was_up:
        subprocess.run(["bash", str(SCRIPT), "stop"], check=False, timeout=120)


def _job(jobid: str) -> dict[str, str]:
    """The scheduler's record of one job (`scontrol show job`), as key -> value."""
    out = subprocess.run(["scontrol", "show", "job", "-o", jobid], capture_output=True,
                         text=True, check=True).stdout
    return dict(re.findall(r"(\w+)=(\S*)", out))


def _jobcomp(jobid: str) -> list[str]:
    """The job's lines in the jobcomp log: one per end (a requeued job ends twice)."""
    return [line for line in JOBCOMP.read_text().splitlines()
            if line.startswith(f"JobId={jobid} ")]


def _copy_repo(dest: Path, edit=None) -> Path:
    """The working tree on the smoke profile (``edit`` may change its params further)."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                           cwd=REPO, capture_output=True, text=True, check=True).stdout
    for name in filter(None, files.split("\0")):
        if (REPO / name).is_file() and not name.startswith(("results/", "dvc.lock")):
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)
    params = yaml.safe_load((dest / "params.yaml").read_text())
    params["profile"] = "smoke"
    if edit:
        edit(params)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    shutil.rmtree(dest / ".dvc", ignore_errors=True)  # outputs are compared, not committed
    return dest


def _where(repo: Path, article: str, run_name: str) -> dict:
    """The path wildcards of the first seed of one run, as the repo's params define them."""
    params = config.load_params(repo / "params.yaml")
    return {"variant": config.variant(params), "article": article, "run": run_name,
            "seed": config.seeds(params, article, run_name)[0]}


def _state_dict(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def _assert_same_weights(a: Path, b: Path) -> None:
    sa, sb = _state_dict(a), _state_dict(b)
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), f"{a} and {b} differ in {k}"


def _metrics(path: Path) -> dict:
    m = yaml.safe_load(path.read_text())
    m.pop("provenance")  # wall times, commit, host: differ by design
    return m


def test_one_articles_smoke_dag_goes_through_slurm_and_matches_a_local_run(slurm, tmp_path):
    article = "nice"
    local = _copy_repo(tmp_path / "local")
    cluster = _copy_repo(tmp_path / "cluster")
    target = paths.REPORT.format(**_where(local, article, "su"))
    run(["snakemake", "--cores", "2", target], local)
    done = run(["snakemake", *PROFILE, target], cluster)

    log = done.stdout + done.stderr
    submitted = dict(SUBMITTED.findall(log))  # SLURM job id -> rule
    remote_rules = re.findall(r"^rule (\w+):", log, flags=re.MULTILINE)  # not "localrule"
    assert {"generate", "prepare", "train", "evaluate", "report"} <= set(remote_rules)
    assert sorted(submitted.values()) == sorted(remote_rules), "every job went to sbatch"
    for jobid, rule in submitted.items():
        record = _jobcomp(jobid)
        assert record and "JobState=COMPLETED" in record[-1], (jobid, rule, record)
        if rule == "train":  # smoke jobs ask for one thread each
            assert " ProcCnt=1 " in record[-1], record

    for run_name in ("su", "original"):
        wc = _where(local, article, run_name)
        _assert_same_weights(local / paths.MODEL.format(**wc), cluster / paths.MODEL.format(**wc))
        assert _metrics(local / paths.METRICS.format(**wc)) == _metrics(
            cluster / paths.METRICS.format(**wc))
    assert (cluster / target).stat().st_size > 0


def test_the_gpu_resource_becomes_a_gres_request(slurm, tmp_path):
    if "gpu" not in subprocess.run(["sinfo", "-h", "-o", "%G"], capture_output=True, text=True,
                                   check=True).stdout:
        pytest.skip("the running SLURM declares no GPU")
    (tmp_path / "Snakefile").write_text(
        "rule gpu_job:\n"
        "    output: 'done.txt'\n"
        "    threads: 1\n"
        "    resources: gpu=1, mem_mb=100, runtime=3\n"
        "    shell: 'echo $SLURM_JOB_ID > {output}'\n")
    run(["snakemake", *PROFILE], tmp_path)
    job = _job((tmp_path / "done.txt").read_text().strip())
    assert job["TresPerJob"] == "gres:gpu:1"
    assert job["MinMemoryNode"] == "100M" and job["TimeLimit"] == "00:03:00"


def _slow_smoke_run(params: dict) -> None:
    """nice/su long enough (about 15-40 s on 2 busy cores) to be requeued half-way."""
    params["articles"]["nice"]["smoke"]["data"] = {}
    params["articles"]["nice"]["smoke"]["runs"]["su"] = {"model": {"hidden": 256, "depth": 4},
                                                         "epochs": 12}


def _running_train_job(timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["squeue", "-h", "-t", "RUNNING", "-o", "%i %k"],
                             capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            jobid, comment = line.split(maxsplit=1)
            if comment.startswith("rule_train"):
                return jobid
        time.sleep(1)
    raise AssertionError("no running train job appeared in squeue")


def _wait_for(path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear within {timeout} s"
        time.sleep(0.5)


def test_a_requeued_train_job_resumes_from_its_checkpoint(slurm, tmp_path):
    repo = _copy_repo(tmp_path / "repo", edit=_slow_smoke_run)
    wc = _where(repo, "nice", "su")
    target = paths.TRAIN_INFO.format(**wc)
    snake = subprocess.Popen(["snakemake", *PROFILE, target], cwd=repo, env=tool_env(repo),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        jobid = _running_train_job(timeout=300)
        _wait_for(repo / paths.CHECKPOINTS.format(**wc) / "last.pt", timeout=300)
        subprocess.run(["scontrol", "requeue", jobid], check=True)
        # SLURM holds a requeued job back for 120 s; an administrator may release it at once.
        _wait_state(jobid, "PENDING", timeout=60)
        subprocess.run(["scontrol", "update", f"JobId={jobid}", "StartTime=now"], check=True)
        out, _ = snake.communicate(timeout=600)
    finally:
        if snake.poll() is None:
            snake.kill()
    assert snake.returncode == 0, out[-4000:]
    assert _job(jobid)["Restarts"] == "1"
    assert len(_jobcomp(jobid)) >= 2  # the scheduler recorded both ends of the job
    job = f"train--nice--su--seed{wc['seed']}"
    train_log = (repo / paths.LOG.format(variant=wc["variant"], job=job)).read_text()
    resumed = re.search(r"resuming from step (\d+)", train_log)
    assert resumed and int(resumed.group(1)) > 0, train_log[-2000:]

    # The resumed run ends where an uninterrupted one does.
    model = repo / paths.MODEL.format(**wc)
    shutil.move(model, repo / "model.slurm.pt")
    run(["python", "-m", "kexue", "train", "nice", "su", "--seed", str(wc["seed"]),
         "--threads", "1"], repo)
    _assert_same_weights(model, repo / "model.slurm.pt")


def _wait_state(jobid: str, state: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while _job(jobid)["JobState"] != state:
        assert time.monotonic() < deadline, f"job {jobid} never reached {state}"
        time.sleep(0.5)
