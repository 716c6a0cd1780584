"""One writer at a time between the two front doors, ``snakemake`` and ``dvc repro``.

``dvc repro`` holds DVC's repository lock (``.dvc/tmp/lock``, an flock through zc.lockfile)
for its whole run and deletes a stage's outputs *before* it runs the stage's command. That
command is a Snakemake run, whose own lock therefore comes too late: by the time it meets a
running Snakemake's lock, DVC has already deleted that run's outputs. So a Snakemake run holds
DVC's lock as well (``hold``, from the Snakefile's ``onstart``): a ``dvc repro`` started beside
it stops at once with DVC's "Unable to acquire lock" before touching anything, and a Snakemake
started beside a running ``dvc repro`` refuses with one line naming it. DVC lets go of its
repository lock while a stage's command runs, and marks the stage's outputs in its rwlock
instead (``.dvc/tmp/rwlock``): a live writer there refuses a Snakemake run too. The kernel drops the
lock when the process ends, so a killed run leaves nothing stale. Snakemake inside a DVC stage
(``DVC_STAGE`` set) runs under its ``dvc repro``'s lock and takes nothing.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from kexue.errors import UserError

LOCK = Path(".dvc") / "tmp" / "lock"
RWLOCK = Path(".dvc") / "tmp" / "rwlock"  # DVC's table of the outputs its processes write
_held = []  # the zc.lockfile.LockFile this process holds (at most one)


class DvcRunning(UserError):
    """DVC holds its repository lock: another front door is writing in this folder."""


def hold(repo: Path = Path(".")) -> None:
    """Take DVC's repository lock for this process until ``release`` or exit; raise
    ``DvcRunning`` when DVC (or another Snakemake) holds it. Nothing to do outside a DVC
    repository, inside a DVC stage, or when this process holds it already."""
    if _held or "DVC_STAGE" in os.environ or not (repo / ".dvc").is_dir():
        return
    import zc.lockfile  # DVC's own lock backend

    path = repo / LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        _held.append(zc.lockfile.LockFile(str(path)))
    except zc.lockfile.LockError:
        raise DvcRunning(f"{path} is held by {_holder(path)}: DVC or another Snakemake is "
                         "writing in this folder; wait for it to finish, then run again") from None
    writers = _dvc_writers(repo)
    if writers:
        release()  # at once: the running dvc repro takes it back after its stage's command
        raise DvcRunning(f"{repo / RWLOCK} shows {', '.join(writers)} writing outputs: a dvc repro "
                         "is running in this folder; wait for it to finish, then run again")


def release() -> None:
    """Let DVC have its lock again (before this process runs ``dvc commit`` itself)."""
    while _held:
        _held.pop().close()


def _dvc_writers(repo: Path) -> list[str]:
    """``pid N (command)`` of every live process that DVC's rwlock shows writing outputs, read
    under DVC's own guard of that file (``rwlock.lock``)."""
    import zc.lockfile

    path = repo / RWLOCK
    for _ in range(60):  # DVC holds the guard for milliseconds; give up after about 3 s
        try:
            guard = zc.lockfile.LockFile(str(path) + ".lock")
            break
        except zc.lockfile.LockError:
            time.sleep(0.05)
    else:
        raise DvcRunning(f"{path}.lock stays held: DVC is busy in this folder; run again later")
    try:
        table = json.loads(path.read_text()).get("write", {})
    except (OSError, ValueError):
        table = {}
    finally:
        guard.close()
    return sorted({f"pid {w['pid']} ({w['cmd']})" for w in table.values() if _alive(w["pid"])})


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holder(path: Path) -> str:
    """``pid N (its command line)`` from the pid zc.lockfile writes into the lock file."""
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return "another process"
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return f"pid {pid}"
    return f"pid {pid} ({_short(command.strip())})"


def _short(command: str) -> str:
    """``.../bin/python3 .../bin/dvc repro x`` -> ``dvc repro x``."""
    words = command.split()
    for i, word in enumerate(words):
        if Path(word).name in ("dvc", "snakemake"):
            return " ".join([Path(word).name, *words[i + 1:]])
    return command
