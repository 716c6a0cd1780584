import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATASETS = REPO.parent / "shared" / "datasets"


def tool_env(repo: Path) -> dict:
    """Environment whose `python`, `snakemake` and `dvc` are this venv's, importing repo/src."""
    env = dict(os.environ, DVC_NO_ANALYTICS="1", PYTHONPATH=str(repo / "src"))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env.pop("DVC_STAGE", None)
    return env


def run(cmd: list[str], cwd: Path, check: bool = True, **kw) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, cwd=cwd, env=tool_env(cwd), capture_output=True, text=True,
                          check=False, **kw)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({done.returncode}):\n"
                             f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return done


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    if not SHARED_DATASETS.is_dir():
        pytest.skip(f"the offline mirror {SHARED_DATASETS} is not present")
    return SHARED_DATASETS


MIRROR = SHARED_DATASETS  # the offline mirror, as a folder a ``mirror=`` argument accepts


class Killed(Exception):
    """Raised from a train step to simulate a job killed mid-run."""


def without_wall_time(rows: list[dict]) -> list[dict]:
    """History rows minus ``wall_time``, the one column a resumed run may not reproduce."""
    return [{k: v for k, v in r.items() if k != "wall_time"} for r in rows]


class UniformOnCube(torch.nn.Module):
    """Density 1 on [lo, lo + 1)^D, 0 outside: a dequantised point outside the cube gives
    -inf, so a uniform model scores exactly log2(n_levels) bits/dim only if every test point
    lands inside the cube."""

    def __init__(self, lo: float = 0.0):
        super().__init__()
        self.lo = lo

    def log_prob(self, x):
        inside = ((x >= self.lo) & (x < self.lo + 1)).flatten(1).all(1)
        return torch.where(inside, 0.0, -math.inf)


# --- the fault suite's count (``pytest -m faults``): per fault class, what passed, failed, was
# skipped or failed as expected (xfail: a known failure, never counted as passed or skipped) ---

_FAULT_COUNTS: dict[str, dict[str, int]] = {}
_OUTCOMES = ("passed", "failed", "skipped", "xfailed")


def pytest_runtest_logreport(report):
    cls = dict(report.user_properties).get("fault_class")
    if cls and (report.when == "call" or report.outcome != "passed"):
        counts = _FAULT_COUNTS.setdefault(cls, dict.fromkeys(_OUTCOMES, 0))
        expected = report.outcome == "skipped" and hasattr(report, "wasxfail")
        counts["xfailed" if expected else report.outcome] += 1


def pytest_runtest_setup(item):
    marker = item.get_closest_marker("faults")
    if marker is not None and marker.args:
        item.user_properties.append(("fault_class", marker.args[0]))


def pytest_terminal_summary(terminalreporter):
    if not _FAULT_COUNTS:
        return
    write = terminalreporter.write_line
    terminalreporter.section("fault suite")
    write(f"{'fault class':<42} {'tried':>5} " + " ".join(f"{k:>7}" for k in _OUTCOMES))
    total = {k: sum(c[k] for c in _FAULT_COUNTS.values()) for k in _OUTCOMES}
    for cls, c in [*_FAULT_COUNTS.items(), ("all", total)]:
        write(f"{cls:<42} {sum(c.values()):>5} " + " ".join(f"{c[k]:>7}" for k in _OUTCOMES))
