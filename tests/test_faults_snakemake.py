"""The fault suite through the front doors: SIGKILL at a random point of every stage kind of a
real Snakemake run, and two front doors at once (Snakemake twice, DVC against Snakemake).

Every test works on a copy of the working tree on the smoke profile, cut to one article, one
run and one seed (NICE; vi_gan for the feature network, NICE on the mirror's MNIST for a
download). One reference copy is built once without interruption and shared by the module; one
victim copy has each stage's job killed in turn (the whole process group: Snakemake, its shell,
tee and the job, as a power cut would) and rerun the way a user would, and must then hold the
same results, weights bit for bit. Training is killed at a moment read from the file system
(after its checkpoint was written, at a random fraction of the time between two checkpoints),
never from a clock that a quiet or a loaded machine would make wrong.

What a user sees after the kill is part of what is checked: Snakemake's lock message (a killed
Snakemake cannot remove its lock), ``snakemake --unlock``, and a plain rerun that redoes the
killed job (the workflow profile's ``rerun-incomplete``), never taking its partial output for a
finished one. Two front doors at once are made deterministic by freezing (SIGSTOP) the running
job while the other door is tried.
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
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest
import torch
import yaml

from conftest import run, tool_env, without_wall_time
from kexue.io import load_torch
from kexue.training import read_history
from test_workflow import GIT, _copy_worktree

faults = pytest.mark.faults

VARIANT = "smoke-embedded"
RUN_DIR = f"results/{VARIANT}/nice/su/seed0"
CKPT = f"checkpoints/{VARIANT}/nice/su/seed0/last.pt"
NICE_STAGE = f"article--{VARIANT}--nice"  # the DVC stage of its jobs
EPOCHS = 16  # a checkpoint per epoch: both train kills land well before the end
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


def kill_during(repo: Path, stage: str, args: list[str], window: float | Callable[[], float],
                ready: Callable[[], bool] = lambda: True, env: dict | None = None) -> Kill:
    """Start ``snakemake <args>``, wait for the job of ``stage`` to run (and ``ready``), then
    SIGKILL the whole process group at a random moment within ``window`` seconds (a callable:
    asked once ``ready`` holds)."""
    proc = start(repo, *args, env=env)
    deadline = time.monotonic() + 900
    while (job := _job_pid(proc.pid, stage)) is None or not ready():
        assert proc.poll() is None, f"snakemake ended before its {stage} job ran:\n{_output(proc)}"
        assert time.monotonic() < deadline, f"no {stage} job within 15 min"
        time.sleep(0.005)
    delay = RNG.uniform(0, window() if callable(window) else window)
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


LOCKED = "Directory cannot be locked"


def recover(repo: Path, args: list[str], rule: str, kill: Kill,
            env: dict | None = None) -> str:
    """What a user does after the crash: rerun; on Snakemake's lock message (a killed Snakemake
    cannot remove its lock), ``--unlock`` and rerun. The plain rerun then continues: the
    workflow profile's ``rerun-incomplete`` redoes a job that never finished, so the user never
    meets the incomplete-files guard. Returns the final rerun's output."""
    out = _both(done := snakemake(repo, *args, check=False, env=env))
    locked = LOCKED in out
    if locked:
        assert "--unlock" in out, out
        snakemake(repo, "--unlock", env=env)
        out = _both(done := snakemake(repo, *args, check=False, env=env))
    assert "seem to be incomplete" not in out, out[-3000:]
    assert done.returncode == 0, f"{kill.note()}\n{out[-3000:]}"
    if kill.job_alive:
        assert locked, f"a killed Snakemake leaves its lock {kill.note()}"
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
    """(reference, victim): one NICE run (a checkpoint per epoch), the reference built by one
    uninterrupted Snakemake run; every test of the module shares both."""
    template = _template(tmp_path_factory.mktemp("template"), "nice", "su", epochs=EPOCHS,
                         seeds=[0])
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
    try:
        if stage.rule == "train":  # kill twice, each time after a checkpoint: two resumes
            outputs = _kill_train_twice(victim, stage)
        else:
            args = ["--", *stage.targets]
            window = 0.9 * _seconds(reference, stage.job)
            kill = kill_during(victim, stage.rule, args, window)
            outputs = recover(victim, args, stage.rule, kill)
    finally:  # the victim is shared: a failure here must not leave the next stage locked out
        snakemake(victim, "--unlock", check=False)
    stage.compare(reference, victim)
    assert "Traceback" not in outputs, outputs[-3000:]


class Checkpoints:
    """The writes of one checkpoint file, as seen by polling it: each atomic write (a rename)
    gives it a new inode and mtime."""

    def __init__(self, path: Path):
        self.path, self.times = path, []
        self.seen = self._identity()

    def _identity(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns

    def written(self, n: int) -> bool:
        """At least ``n`` new writes since this watch began."""
        now = self._identity()
        if now is not None and now != self.seen:
            self.seen = now
            self.times.append(time.monotonic())
        return len(self.times) >= n

    def interval(self) -> float:
        return self.times[-1] - self.times[-2]


def _kill_train_twice(victim: Path, stage: Stage) -> str:
    """Kill train after its second checkpoint, at a random fraction of the time between two
    checkpoints (so one exists, and the job is still running); rerun it and kill it the same
    way after its resumed run wrote two checkpoints of its own; then recover."""
    targets = ["--", *stage.targets]
    kills = []
    for _ in range(2):
        watch = Checkpoints(victim / CKPT)
        kill = kill_during(victim, "train", targets, watch.interval,
                           ready=partial(watch.written, 2))
        assert kill.job_alive, f"train finished before it was killed {kill.note()}"
        # a kill inside a save can fall between its two renames: then previous.pt is the one
        saved = [(victim / CKPT).with_name(n) for n in ("last.pt", "previous.pt")]
        assert any(p.exists() for p in saved), f"no checkpoint to resume from {kill.note()}"
        kills.append(kill)
        if len(kills) == 1:
            snakemake(victim, "--unlock")
    assert re.search(r"resuming from step [1-9]", kills[1].output), kills[1].output[-3000:]
    out = recover(victim, targets, "train", kills[1])
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


def _wait_for_job(proc: subprocess.Popen, stage: str) -> int:
    """The pid of ``proc``'s ``stage`` job, once it runs."""
    deadline = time.monotonic() + 900
    while (job := _job_pid(proc.pid, stage)) is None:
        assert proc.poll() is None, _output(proc)
        assert time.monotonic() < deadline, f"no {stage} job within 15 min"
        time.sleep(0.005)
    return job


@contextmanager
def frozen(pid: int):
    """The process stopped (SIGSTOP) for the block: the other front door is tried while the job
    is surely mid-run, on a quiet machine as on a loaded one."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def _dvc_cache_is_sound(repo: Path) -> None:
    """Every file of the DVC cache holds the content its name (md5) promises."""
    cache = repo / ".dvc" / "cache" / "files" / "md5"
    entries = [p for p in cache.rglob("*") if p.is_file() and not p.name.endswith(".dir")]
    assert entries
    bad = [str(p) for p in entries
           if hashlib.md5(p.read_bytes()).hexdigest() != p.parent.name + p.name]
    assert bad == []


@dataclass
class Beside:
    first: int  # the running Snakemake's exit status
    second: subprocess.CompletedProcess  # a second snakemake, tried during its train job
    dvc: subprocess.CompletedProcess  # ``dvc repro`` of the stage holding that job, tried then too


@pytest.fixture(scope="module")
def beside_snakemake(nice_copies) -> Beside:
    """One Snakemake retrains; while its train job is frozen mid-run, a second ``snakemake`` and
    a ``dvc repro`` of the stage holding the same job are tried."""
    _, victim = nice_copies
    first = start(victim, "--forcerun", "train", "--", f"{RUN_DIR}/model.pt")
    with frozen(_wait_for_job(first, "train")):
        second = snakemake(victim, "--forcerun", "train", "--", f"{RUN_DIR}/model.pt",
                           check=False)
        dvc = run(["dvc", "repro", "--force", "--single-item", NICE_STAGE], victim, check=False)
    return Beside(first.wait(), second, dvc)


@faults("Two front doors at once")
def test_a_second_snakemake_gets_the_lock_message(nice_copies, beside_snakemake):
    reference, victim = nice_copies
    said = _both(beside_snakemake.second)
    assert beside_snakemake.second.returncode != 0
    assert LOCKED in said, said[-3000:]
    assert "rule train:" not in said, "the second snakemake ran the job"
    assert beside_snakemake.first == 0
    _same_training(reference, victim)


@faults("Two front doors at once")
def test_dvc_repro_while_snakemake_runs_stops_before_touching_anything(nice_copies,
                                                                       beside_snakemake):
    """DVC deletes a stage's outputs before it runs the stage's command: it must be stopped by
    its own lock, which the running Snakemake holds, before that."""
    reference, victim = nice_copies
    said = _both(beside_snakemake.dvc)
    assert beside_snakemake.dvc.returncode != 0
    assert "Unable to acquire lock" in said, said[-3000:]
    assert "Running stage" not in said, said[-3000:]
    assert beside_snakemake.first == 0
    _same_training(reference, victim)
    _dvc_cache_is_sound(victim)


@faults("Two front doors at once")
def test_snakemake_while_dvc_repro_runs_refuses(nice_copies):
    """``dvc repro`` lets go of its repository lock while its stage's command (a Snakemake run,
    DVC_STAGE set) runs, after it deleted the stage's outputs, and lists the outputs in its
    rwlock instead. A ``snakemake`` started while DVC's Snakemake is still being built (frozen
    then, with its ``dvc repro``) finds that live writer in ``onstart`` and refuses naming the
    ``dvc repro``; started later it meets Snakemake's lock. Either way it runs nothing and DVC
    ends with the results of an uninterrupted run and a sound cache."""
    reference, victim = nice_copies
    dvc = subprocess.Popen(["dvc", "repro", "--force", "--single-item", NICE_STAGE], cwd=victim,
                           env=tool_env(victim), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, start_new_session=True)
    _wait_for_child(dvc, "snakemake")
    os.killpg(dvc.pid, signal.SIGSTOP)
    try:
        snakemake_locked = any((victim / ".snakemake" / "locks").glob("*"))
        second = snakemake(victim, "--forcerun", "train", "--", f"{RUN_DIR}/model.pt",
                           check=False)
    finally:
        os.killpg(dvc.pid, signal.SIGCONT)
    out, _ = dvc.communicate()
    said = _both(second)
    assert second.returncode != 0
    assert "rule train:" not in said, "the second snakemake ran the job"
    if snakemake_locked:
        assert LOCKED in said, said[-3000:]
    else:
        assert re.search(rf"pid {dvc.pid} \(\S*dvc repro .*\) writing outputs", said), said[-3000:]
    assert dvc.returncode == 0, out
    _same_training(reference, victim)
    _dvc_cache_is_sound(victim)
    assert "up to date" in run(["dvc", "status", NICE_STAGE], victim).stdout


def _wait_for_child(proc: subprocess.Popen, name: str) -> int:
    """The pid of the first ``name`` process under ``proc`` (its command's program)."""
    deadline = time.monotonic() + 900
    while True:
        table = _processes()
        for pid in _descendants(proc.pid, table) - {proc.pid}:
            words = table[pid][1].split()
            if any(Path(w).name == name for w in words[:2]):
                return pid
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline, f"no {name} under {proc.args} within 15 min"
        time.sleep(0.005)
