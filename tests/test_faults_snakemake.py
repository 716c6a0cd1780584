"""The fault suite through the front doors: SIGKILL at a random point of every stage kind of a
real Snakemake run, and two front doors at once (Snakemake twice, DVC against Snakemake).

Every test works on a copy of the working tree on the smoke profile, cut to one article and
one run so that a whole pass takes about a minute (NICE; vi_gan for the feature network,
NICE on the mirror's MNIST for a download). A reference copy is built once without
interruption; a victim copy has each stage's job killed (the whole process group: Snakemake,
its shell, tee and the job, as a power cut would) and rerun the way a user would, and must then
hold the same results, weights bit for bit.

What a user sees after the kill is part of what is checked: Snakemake's lock message (a killed
Snakemake cannot remove its lock), ``snakemake --unlock``, and a rerun that redoes the killed
job, never taking its partial output for a finished one.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import yaml

from conftest import run, tool_env, without_wall_time
from kexue.io import load_torch
from kexue.training import read_history
from test_workflow import GIT, _copy_worktree

faults = pytest.mark.faults
# Opt-in until they are reliable: on a quiet machine four of them fail on their own timing
# assumptions (a kill before the first checkpoint exists; a rerun that meets Snakemake's
# incomplete-file guard before the job it waits for) — see issue 16.
pytestmark = pytest.mark.skipif(not os.environ.get("KEXUE_DAG_FAULTS"),
                                reason="opt-in (KEXUE_DAG_FAULTS=1): kills through Snakemake, "
                                       "minutes each, not yet reliable")

VARIANT = "smoke-embedded"
RUN_DIR = f"results/{VARIANT}/nice/su/seed0"
CKPT = f"checkpoints/{VARIANT}/nice/su/seed0/last.pt"
# one random source for the whole module, its seed in every failure message
SEED = int(os.environ.get("KEXUE_FAULT_SEED", int.from_bytes(os.urandom(4), "little")))
RNG = random.Random(SEED)
SEED_NOTE = f"(rerun with KEXUE_FAULT_SEED={SEED} to replay the kill points)"


def _only(params: dict, article: str, run_name: str, **run_values) -> dict:
    """params.yaml cut to one article and one of its runs (one seed), smoke profile."""
    block = params["articles"][article]
    params.update(profile="smoke", articles={article: block})

    def trim(node):
        if isinstance(node, dict):
            if isinstance(node.get("runs"), dict):
                node["runs"] = {k: {**v, **run_values} for k, v in node["runs"].items()
                                if k == run_name}
            for value in node.values():
                trim(value)

    trim(block)
    block["smoke"]["seeds"] = [0]
    return params


def _template(folder: Path, article: str, run_name: str, **run_values) -> Path:
    _copy_worktree(folder)
    params = yaml.safe_load((folder / "params.yaml").read_text())
    (folder / "params.yaml").write_text(
        yaml.safe_dump(_only(params, article, run_name, **run_values), sort_keys=False))
    run(["python", "-m", "kexue", "dvc-yaml"], folder)
    run(["git", "init", "-q"], folder)
    run(GIT + ["add", "-A"], folder)
    run(GIT + ["commit", "-qm", "template"], folder)
    return folder


def _clone(template: Path, dest: Path) -> Path:
    shutil.copytree(template, dest, symlinks=True)  # the same commit: the same provenance
    return dest


def snakemake(repo: Path, *args: str, check: bool = True, env: dict | None = None):
    return _run_env(["snakemake", "--cores", "1", *args], repo, check, env)


def _run_env(cmd, repo, check, env):
    if env is None:
        return run(cmd, repo, check=check)
    done = subprocess.run(cmd, cwd=repo, env={**tool_env(repo), **env}, capture_output=True,
                          text=True, check=False)
    if check and done.returncode:
        raise AssertionError(f"{cmd} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


# ------------------------------------------------------------------------- killing a run


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every process."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            table[int(entry.name)] = (int(stat.rsplit(")", 1)[1].split()[1]), cmd)
    return table


def _descendants(root: int, table: dict[int, tuple[int, str]]) -> set[int]:
    found, grew = {root}, True
    while grew:
        new = {pid for pid, (parent, _) in table.items() if parent in found} - found
        found |= new
        grew = bool(new)
    return found


def _job_pid(root: int, stage: str) -> int | None:
    """The ``python -m kexue ... <stage> ...`` process under ``root`` (not its shell)."""
    table = _processes()
    for pid in _descendants(root, table):
        words = table[pid][1].split()
        if words[:3] == ["python", "-m", "kexue"] and stage in words:
            return pid
    return None


@dataclass
class Kill:
    delay: float  # seconds after the job was seen (and ``ready`` held)
    job_alive: bool  # the job was still running when the signal went out
    output: str  # what Snakemake printed up to the kill

    def note(self) -> str:
        return f"(killed {self.delay:.2f} s in; {SEED_NOTE})"


def start(repo: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    """Snakemake in a session of its own: its jobs are in its process group."""
    log = repo / f".snakemake-{time.monotonic_ns()}.out"
    with open(log, "w") as out:
        proc = subprocess.Popen(["snakemake", "--cores", "1", *args], cwd=repo,
                                env={**tool_env(repo), **(env or {})}, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    proc.log = log
    return proc


def _output(proc: subprocess.Popen) -> str:
    return proc.log.read_text() if hasattr(proc, "log") else ""


def kill_during(repo: Path, stage: str, args: list[str], window: float,
                ready: Callable[[], bool] = lambda: True, env: dict | None = None) -> Kill:
    """Start ``snakemake <args>``, wait for the job of ``stage`` to run (and ``ready``), then
    SIGKILL the whole process group at a random moment within ``window`` seconds."""
    proc = start(repo, *args, env=env)
    deadline = time.monotonic() + 600
    while (job := _job_pid(proc.pid, stage)) is None or not ready():
        assert proc.poll() is None, f"snakemake ended before its {stage} job ran:\n{_output(proc)}"
        assert time.monotonic() < deadline, f"no {stage} job within 10 min"
        time.sleep(0.02)
    delay = RNG.uniform(0, window)
    time.sleep(delay)
    alive = Path(f"/proc/{job}").exists() and proc.poll() is None
    group = _descendants(proc.pid, _processes())
    os.killpg(proc.pid, signal.SIGKILL)
    for pid in group:  # anything that left the group (none expected)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
    return Kill(delay, alive, _output(proc))


def recover(repo: Path, args: list[str], rule: str, kill: Kill,
            env: dict | None = None) -> str:
    """What a user does after the crash: rerun; on Snakemake's lock message, ``--unlock``; on
    its incomplete-files message (a partial output exists and Snakemake knows it), add
    ``--rerun-incomplete``. A job killed mid-run runs again: its partial output is never taken
    for a finished one. Returns the final rerun's output."""
    flags, seen = [], set()
    while True:
        done = snakemake(repo, *flags, *args, check=False, env=env)
        out = _both(done)
        if "Directory cannot be locked" in out and "lock" not in seen:
            assert "--unlock" in out, out
            seen.add("lock")
            snakemake(repo, "--unlock", env=env)
        elif "seem to be incomplete" in out and "incomplete" not in seen:
            assert "--rerun-incomplete" in out, out
            seen.add("incomplete")
            flags = ["--rerun-incomplete"]
        else:
            break
    assert done.returncode == 0, f"{kill.note()}\n{out[-3000:]}"
    if kill.job_alive:
        assert "lock" in seen, f"a killed Snakemake leaves its lock {kill.note()}"
        assert re.search(rf"^(local)?rule {rule}:", out, re.MULTILINE), (
            f"the killed {rule} job did not run again: its partial output was taken for a "
            f"finished one {kill.note()}\n{out[-3000:]}")
    return out


def _both(done: subprocess.CompletedProcess) -> str:
    return done.stdout + done.stderr


# ------------------------------------------------------------------------- comparisons


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != ".snakemake_timestamp"}


def same_files(a: Path, b: Path) -> None:
    fa, fb = _files(a), _files(b)
    assert fa.keys() == fb.keys(), (sorted(fa), sorted(fb))
    differ = [name for name in fa if fa[name] != fb[name]]
    assert differ == [], f"{differ} differ {SEED_NOTE}"


def same_weights(a: Path, b: Path) -> None:
    def flat(state, prefix=""):
        out = {}
        for k, v in state.items():
            out |= flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v}
        return out

    wa, wb = flat(load_torch(a)), flat(load_torch(b))
    assert wa.keys() == wb.keys()
    differ = [k for k in wa if not (torch.is_tensor(wa[k]) and torch.equal(wa[k], wb[k])
                                    or not torch.is_tensor(wa[k]) and wa[k] == wb[k])]
    assert differ == [], f"weights differ: {differ} {SEED_NOTE}"


def _html(path: Path) -> str:
    """A report without the per-render random cell ids papermill injects."""
    return re.sub(r'id="cell-id=[0-9a-f]+"', "", path.read_text())


# ------------------------------------------------------------------------- the copies


@pytest.fixture(scope="module")
def nice_copies(tmp_path_factory):
    """(reference, victim): one NICE run (12 epochs: a checkpoint per epoch, so that a kill
    lands between checkpoints), the reference built by one uninterrupted Snakemake run."""
    template = _template(tmp_path_factory.mktemp("template"), "nice", "su", epochs=12)
    reference = _clone(template, tmp_path_factory.mktemp("reference") / "repo")
    run(["snakemake", "--cores", "2"], reference)
    return reference, _clone(template, tmp_path_factory.mktemp("victim") / "repo")


def _seconds(repo: Path, job: str) -> float:
    """The reference's own duration of a job (its Snakemake benchmark; 5 s for the summary,
    which has none)."""
    found = list(repo.glob(f"logs/**/benchmarks/{job}.tsv"))
    return float(found[0].read_text().splitlines()[1].split("\t")[0]) if found else 5.0


@dataclass(frozen=True)
class Stage:
    rule: str
    job: str  # the benchmark name
    targets: tuple[str, ...]
    compare: Callable[[Path, Path], None]


def _same_raw(ref, vic):
    same_files(ref / "data/raw/digits", vic / "data/raw/digits")


def _same_prepared(ref, vic):
    same_files(ref / f"data/processed/{VARIANT}/nice", vic / f"data/processed/{VARIANT}/nice")


def _same_training(ref, vic):
    same_weights(ref / RUN_DIR / "model.pt", vic / RUN_DIR / "model.pt")
    assert (without_wall_time(read_history(vic / RUN_DIR / "history.csv"))
            == without_wall_time(read_history(ref / RUN_DIR / "history.csv")))
    same_files(ref / RUN_DIR / "training", vic / RUN_DIR / "training")
    assert not list((vic / CKPT).parent.glob("*.pt")), "checkpoints are cleared at the end"


def _same_metrics(ref, vic):
    assert (json.loads((vic / RUN_DIR / "metrics.json").read_text())
            == json.loads((ref / RUN_DIR / "metrics.json").read_text()))
    same_files(ref / RUN_DIR / "artifacts", vic / RUN_DIR / "artifacts")


def _same_report(ref, vic):
    report = f"results/{VARIANT}/nice/report.html"
    assert _html(vic / report) == _html(ref / report)
    assert "Traceback" not in _html(vic / report)


def _same_summary(ref, vic):
    summary = f"results/{VARIANT}/summary.csv"
    assert (vic / summary).read_bytes() == (ref / summary).read_bytes()
    assert (vic / f"results/{VARIANT}/index.html").read_text().rstrip().endswith("</html>")


NICE_STAGES = [
    Stage("generate", "generate--digits", ("data/raw/digits",), _same_raw),
    Stage("prepare", "prepare--nice", (f"data/processed/{VARIANT}/nice",), _same_prepared),
    Stage("train", "train--nice--su--seed0", (f"{RUN_DIR}/model.pt",), _same_training),
    Stage("evaluate", "evaluate--nice--su--seed0", (f"{RUN_DIR}/metrics.json",), _same_metrics),
    Stage("report", "report--nice", (f"results/{VARIANT}/nice/report.html",), _same_report),
    Stage("summary", "summary", (f"results/{VARIANT}/index.html",), _same_summary),
]


# ------------------------------------------------------------------------- kill anywhere


@faults("Kill anywhere (SIGKILL through Snakemake)")
@pytest.mark.parametrize("stage", NICE_STAGES, ids=[s.rule for s in NICE_STAGES])
def test_sigkill_at_a_random_point_then_rerun_gives_the_same_results(nice_copies, stage):
    reference, victim = nice_copies
    window = 0.9 * _seconds(reference, stage.job)
    if stage.rule == "train":  # kill twice, each time after a checkpoint: two resumes
        outputs = _kill_train_twice(victim, stage, window)
    else:
        args = ["--", *stage.targets]
        outputs = recover(victim, args, stage.rule, kill_during(victim, stage.rule, args, window))
    stage.compare(reference, victim)
    assert "Traceback" not in outputs, outputs[-3000:]


def _kill_train_twice(victim: Path, stage: Stage, window: float) -> str:
    targets = ["--", *stage.targets]
    checkpoint = victim / CKPT
    first = kill_during(victim, "train", targets, min(window, 1.0), ready=checkpoint.exists)
    assert first.job_alive, f"train finished before the first kill {first.note()}"
    written = checkpoint.stat().st_mtime_ns

    def newer_checkpoint() -> bool:  # the resumed run has written a checkpoint of its own
        try:
            return checkpoint.stat().st_mtime_ns != written
        except FileNotFoundError:
            return False

    snakemake(victim, "--unlock")
    plan = _both(snakemake(victim, "-n", *targets, check=False))
    flags = ["--rerun-incomplete"] if "seem to be incomplete" in plan else []
    second = kill_during(victim, "train", [*flags, *targets], 0.5, ready=newer_checkpoint)
    assert second.job_alive, f"train finished before the second kill {second.note()}"
    assert "resuming from step" in second.output, second.output[-3000:]
    out = recover(victim, targets, "train", second)
    assert re.search(r"resuming from step [1-9]", out), out[-3000:]
    return out


@faults("Kill anywhere (SIGKILL through Snakemake)")
def test_sigkill_of_the_feature_network_then_rerun(tmp_path_factory):
    """The ``features`` stage kind (vi_gan's feature network of the digits)."""
    template = _template(tmp_path_factory.mktemp("features"), "vi_gan", "e1-plain")
    target = [f"data/features/{VARIANT}/digits"]
    reference = _clone(template, tmp_path_factory.mktemp("features-ref") / "repo")
    snakemake(reference, "--", *target)
    victim = _clone(template, tmp_path_factory.mktemp("features-victim") / "repo")
    args = ["--", *target]
    kill = kill_during(victim, "features", args, 0.9 * _seconds(reference, "features--digits"))
    recover(victim, args, "features", kill)
    folder = f"data/features/{VARIANT}/digits"
    same_weights(reference / folder / "model.pt", victim / folder / "model.pt")
    info = [json.loads((r / folder / "info.json").read_text()) for r in (reference, victim)]
    assert [{k: v for k, v in i.items() if "time" not in k} for i in info] == [
        {k: v for k, v in info[0].items() if "time" not in k}] * 2


@faults("Kill anywhere (SIGKILL through Snakemake)")
@pytest.mark.xfail(reason="the comparison was fixed after the last run (which failed only on "
                          "the mirror's extra SHA256SUMS.uncompressed); not re-run yet",
                   strict=False)
def test_sigkill_of_a_download_then_rerun(nice_copies, shared_datasets):
    """The ``download`` stage kind: MNIST for NICE on the official source, from the mirror."""
    _, victim = nice_copies
    env = {"KEXUE_DATA_MIRROR": str(shared_datasets)}
    args = ["--config", "data_source=official", "--", "data/raw/mnist"]
    kill = kill_during(victim, "download", args, 3.0, env=env)  # a copy of 11 MB
    recover(victim, args, "download", kill, env=env)
    got = sorted(p for p in (victim / "data/raw/mnist").iterdir() if p.name.endswith(".gz"))
    assert len(got) == 4
    for path in got:
        assert path.read_bytes() == (shared_datasets / "mnist" / path.name).read_bytes()


# ------------------------------------------------------------------------- two front doors


def _wait_for_job(proc: subprocess.Popen, stage: str) -> None:
    deadline = time.monotonic() + 600
    while _job_pid(proc.pid, stage) is None:
        assert proc.poll() is None, _output(proc)
        assert time.monotonic() < deadline
        time.sleep(0.02)


def _dvc_cache_is_sound(repo: Path) -> None:
    """Every file of the DVC cache holds the content its name (md5) promises."""
    cache = repo / ".dvc" / "cache" / "files" / "md5"
    entries = [p for p in cache.rglob("*") if p.is_file() and not p.name.endswith(".dir")]
    assert entries
    bad = [str(p) for p in entries
           if hashlib.md5(p.read_bytes()).hexdigest() != p.parent.name + p.name]
    assert bad == []


@faults("Two front doors at once")
@pytest.mark.xfail(reason="the last run's second snakemake had nothing to do (outputs up to "
                          "date) and took no lock; now forced to rerun train, not re-run yet",
                   strict=False)
def test_a_second_snakemake_gets_the_lock_message(nice_copies):
    reference, victim = nice_copies
    first = start(victim, "--forcerun", "train", "--", f"{RUN_DIR}/metrics.json")
    _wait_for_job(first, "train")
    second = snakemake(victim, "--forcerun", "train", "--", f"{RUN_DIR}/metrics.json",
                       check=False)
    assert second.returncode != 0
    assert "Directory cannot be locked" in second.stdout + second.stderr
    assert first.wait() == 0, _output(first)
    _same_training(reference, victim)
    _same_metrics(reference, victim)


@faults("Two front doors at once")
@pytest.mark.xfail(reason="observed in the last run: dvc repro's own snakemake ran the train "
                          "stage beside the running snakemake and succeeded (rc 0): not stopped",
                   strict=False)
def test_dvc_repro_while_snakemake_runs_fails_clearly(nice_copies):
    reference, victim = nice_copies
    stage = "train--smoke-embedded--nice--su--seed0"
    first = start(victim, "--forcerun", "train", "--", f"{RUN_DIR}/metrics.json")
    _wait_for_job(first, "train")
    dvc = run(["dvc", "repro", "--force", "--single-item", stage], victim, check=False)
    assert first.wait() == 0, _output(first)
    said = _both(dvc)
    assert dvc.returncode != 0
    # the stage's own snakemake meets the running one's incomplete-output marks or its lock
    assert "seem to be incomplete" in said or "Directory cannot be locked" in said, said
    assert f"failed to reproduce '{stage}'" in said, said
    _same_training(reference, victim)
    _same_metrics(reference, victim)
    _dvc_cache_is_sound(victim)


@faults("Two front doors at once")
@pytest.mark.xfail(reason="the last run's second snakemake had nothing to do (outputs up to "
                          "date) and took no lock; now forced to rerun train, not re-run yet",
                   strict=False)
def test_snakemake_while_dvc_repro_runs_gets_the_lock_message(nice_copies):
    reference, victim = nice_copies
    stage = "train--smoke-embedded--nice--su--seed0"
    dvc = subprocess.Popen(["dvc", "repro", "--force", "--single-item", stage], cwd=victim,
                           env=tool_env(victim), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, start_new_session=True)
    _wait_for_job(dvc, "train")
    second = snakemake(victim, "--forcerun", "train", "--", f"{RUN_DIR}/metrics.json",
                       check=False)
    out, _ = dvc.communicate()
    assert dvc.returncode == 0, out
    assert second.returncode != 0
    assert "Directory cannot be locked" in second.stdout + second.stderr
    _same_training(reference, victim)
    _dvc_cache_is_sound(victim)
    assert "up to date" in run(["dvc", "status", stage], victim).stdout
