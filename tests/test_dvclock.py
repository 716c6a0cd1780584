"""kexue.dvclock: a Snakemake run holds DVC's repository lock, so that ``dvc repro`` and
``snakemake`` never write in one folder at once (the end-to-end runs are in
test_faults_snakemake.py)."""

import json
import os
import subprocess
import sys

import pytest
import zc.lockfile

from kexue import dvclock
from kexue.dvclock import LOCK, DvcRunning, hold, release


@pytest.fixture
def repo(tmp_path, monkeypatch):
    (tmp_path / LOCK).parent.mkdir(parents=True)  # as `dvc init` leaves it
    monkeypatch.delenv("DVC_STAGE", raising=False)
    yield tmp_path
    release()


def _dvc_can_lock(repo) -> bool:
    """What DVC itself does to take its lock (another open file: flock conflicts even within
    one process)."""
    try:
        lock = zc.lockfile.LockFile(str(repo / LOCK))
    except zc.lockfile.LockError:
        return False
    lock.close()
    return True


def test_a_held_lock_stops_dvc_until_released(repo):
    hold(repo)
    assert not _dvc_can_lock(repo)
    hold(repo)  # holding twice is holding once
    release()
    assert _dvc_can_lock(repo)


def test_refuses_naming_the_process_that_holds_it(repo):
    holder = subprocess.Popen(
        [sys.executable, "-c", ("import sys, zc.lockfile; l = zc.lockfile.LockFile(sys.argv[1]);"
                                " print('held', flush=True); sys.stdin.read()"), str(repo / LOCK)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(DvcRunning, match=rf"lock is held by pid {holder.pid} \(.*python"):
            hold(repo)
    finally:
        holder.communicate("")
    hold(repo)  # the holder ended: the lock is free again
    assert not _dvc_can_lock(repo)


def test_takes_nothing_inside_a_dvc_stage_or_outside_a_dvc_repository(repo, monkeypatch,
                                                                      tmp_path_factory):
    monkeypatch.setenv("DVC_STAGE", "train--x")
    hold(repo)
    assert _dvc_can_lock(repo)
    monkeypatch.delenv("DVC_STAGE")
    plain = tmp_path_factory.mktemp("no-dvc")
    hold(plain)
    assert not (plain / ".dvc").exists()


def test_the_holder_is_named_by_its_program():
    assert dvclock._short("/v/bin/python3 /v/bin/dvc repro --force x") == "dvc repro --force x"
    assert dvclock._short("/v/bin/python3 /v/bin/snakemake --cores 1") == "snakemake --cores 1"
    assert dvclock._short("sleep 10") == "sleep 10"


def test_refuses_while_dvc_writes_a_stage_without_its_repository_lock(repo):
    """During a stage's command DVC lets go of its repository lock; its rwlock names the
    writer. A live writer refuses the run (and leaves the lock free); a dead one is stale."""
    rwlock = repo / ".dvc" / "tmp" / "rwlock"
    alive = {"pid": os.getpid(), "cmd": "dvc repro train--x"}
    rwlock.write_text(json.dumps({"write": {"results/x": alive}, "read": {}}))
    with pytest.raises(DvcRunning, match=rf"pid {os.getpid()} \(dvc repro train--x\) writing"):
        hold(repo)
    assert _dvc_can_lock(repo)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    rwlock.write_text(json.dumps({"write": {"results/x": {"pid": int(dead), "cmd": "dvc"}}}))
    hold(repo)
    assert not _dvc_can_lock(repo)
