import os
import subprocess
import sys
from pathlib import Path

import pytest

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
