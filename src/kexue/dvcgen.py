"""Generate dvc.yaml from the job list of params.yaml (``kexue.dag``): one DVC stage per job.

Each stage's command hands the job back to Snakemake (``--allowed-rules <rule> --force``), so
``dvc repro <stage>`` and ``snakemake`` run the same code and Snakemake's metadata never goes
stale (../shared/notes/workflow-stack.md, option A). Stage names carry the variant
(``train--default-embedded--nice--su--seed0``), so switching profile or data source keeps the
other variant's lock entries. Every stage depends on the source files it runs: the import
closure of its stage's entry modules, so editing a shared layer makes exactly the stages that
use it stale. Snakemake regenerates the file whenever params.yaml changes the job list.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import os
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import yaml

from kexue import config
from kexue.dag import Job, jobs
from kexue.data.registry import get_dataset

SRC = Path(__file__).resolve().parents[1]  # .../src
REPO = SRC.parent
HEADER = ("# GENERATED from params.yaml by `python -m kexue dvc-yaml` (Snakemake refreshes it):\n"
          "# do not edit. Each stage delegates to Snakemake; run `dvc repro <stage>`.\n")
GIT_TRACKED_SUFFIXES = (".json", ".csv", ".html", ".ipynb")  # small outputs: not cached
METRICS_NAME = "metrics.json"
# Every stage runs these files (the CLI), without following their stage-specific imports.
FRONT = ("kexue/__init__.py", "kexue/__main__.py", "kexue/cli.py", "kexue/stages.py")
BASE = ("kexue.config", "kexue.paths", "kexue.registry", "kexue.dag", "kexue.errors",
        "kexue.io", "kexue.data.registry")


def _module_file(name: str) -> Path | None:
    base = SRC / name.replace(".", "/")
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _package_inits(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


@cache
def _imports(name: str) -> frozenset[str]:
    """The kexue modules that module ``name`` imports anywhere in its body."""
    path = _module_file(name)
    if path is None:
        return frozenset()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}  # a submodule, or just a name
    return frozenset(m for m in found if m.split(".")[0] == "kexue" and _module_file(m))


def closure(roots: tuple[str, ...]) -> list[str]:
    """Source files (relative to the repository) of ``roots`` and everything they import."""
    seen: set[str] = set()
    todo = [r for r in roots if _module_file(r)]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += [m for m in (*_imports(name), *_package_inits(name))
                 if m not in seen and _module_file(m)]
    files = {str(_module_file(m).relative_to(REPO)) for m in seen}
    return sorted(files | {f"src/{f}" for f in FRONT})


def _roots(job: Job, params: dict) -> tuple[str, ...]:
    a = f"kexue.articles.{job.article}"
    if job.rule in ("download", "generate"):
        generator = get_dataset(job.wildcards["dataset"]).generator
        return BASE + ("kexue.data.fetch",) + ((generator.split(":")[0],) if generator else ())
    if job.rule == "features":
        return BASE + ("kexue.stages", "kexue.data.images", "kexue.metrics.features")
    if job.rule == "prepare":
        return BASE + (f"{a}.config", f"{a}.data")
    if job.rule in ("train", "evaluate"):
        return BASE + (f"{a}.config", f"{a}.{job.rule}", "kexue.training", "kexue.provenance")
    if job.rule == "report":
        return BASE + ("kexue.report", f"{a}.published")
    return BASE + ("kexue.report",) + tuple(f"kexue.articles.{x}.published"
                                            for x in config.article_ids(params))


def _params(job: Job, params: dict) -> list[str]:
    """The params.yaml keys a job depends on: an article's job only on its block for this
    profile, so that editing another profile's settings leaves these stages up to date (and
    dvc.lock does not record every profile's values for every stage)."""
    if job.article:
        return ["profile", "data_source", f"articles.{job.article}.{params['profile']}"]
    return ["data_source"] if job.rule in ("download", "generate") else ["profile", "data_source"]


def stage(job: Job, params: dict) -> dict:
    outs, metrics = [], []
    for path in job.outputs:
        if path.endswith(METRICS_NAME):
            metrics.append({path: {"cache": False}})
        elif path.endswith(GIT_TRACKED_SUFFIXES):
            outs.append({path: {"cache": False}})
        else:
            outs.append(path)
    body = {
        "cmd": f"snakemake --cores all --force --allowed-rules {job.rule} -- "
               + " ".join(job.outputs),
        "deps": sorted(set(job.inputs) | set(closure(_roots(job, params)))),
        "params": _params(job, params),
        "outs": outs,
    }
    if metrics:
        body["metrics"] = metrics
    return body


def render(params: dict) -> str:
    stages = {job.name: stage(job, params) for job in jobs(params)}
    return HEADER + yaml.safe_dump({"stages": stages}, sort_keys=False, width=100)


def _wanted(params_path: str | os.PathLike) -> str:
    return render(config.load_params(params_path))


def write_dvc_yaml(params_path: str | os.PathLike = "params.yaml",
                   path: Path = Path("dvc.yaml")) -> None:
    from kexue.io import write_bytes

    write_bytes(path, _wanted(params_path).encode())


def _inputs_digest(params_path: str | os.PathLike, path: Path) -> str:
    """sha256 over everything dvc.yaml is rendered from (params.yaml, the package's sources)
    and over dvc.yaml itself: unchanged, the rendering (2 s of every Snakemake start) is
    skipped."""
    digest = hashlib.sha256()
    for f in [Path(params_path), path, *sorted((SRC / "kexue").rglob("*.py"))]:
        digest.update(str(f).encode() + b"\0" + (f.read_bytes() if f.exists() else b""))
    return digest.hexdigest()


def sync_dvc_yaml(params_path: str | os.PathLike = "params.yaml",
                  path: Path = Path("dvc.yaml")) -> None:
    """Rewrite dvc.yaml only when params.yaml (or the code layout) changed what it says; the
    digest of what it was last checked against lives in .snakemake/ (never tracked)."""
    from kexue.io import write_bytes

    stamp = path.parent / ".snakemake" / "kexue-dvc-yaml.sha256"
    if stamp.exists() and stamp.read_text() == _inputs_digest(params_path, path):
        return
    if not path.exists() or path.read_text() != _wanted(params_path):
        write_dvc_yaml(params_path, path)
    stamp.parent.mkdir(exist_ok=True)
    write_bytes(stamp, _inputs_digest(params_path, path).encode())


def check_dvc_yaml(params_path: str | os.PathLike = "params.yaml",
                   path: Path = Path("dvc.yaml")) -> int:
    """0 when dvc.yaml matches params.yaml; otherwise print the diff and return 1."""
    want = _wanted(params_path)
    have = path.read_text() if path.exists() else ""
    if want == have:
        return 0
    sys.stdout.writelines(difflib.unified_diff(have.splitlines(True), want.splitlines(True),
                                               str(path), "generated"))
    print("\ndvc.yaml is stale: run `python -m kexue dvc-yaml`")
    return 1


def commit_outputs(variant: str, params_path: str | os.PathLike = "params.yaml") -> None:
    """``dvc commit --force`` after a Snakemake run of params.yaml's own variant (the one
    dvc.yaml describes), so that ``dvc status`` is clean; skipped inside a DVC stage."""
    if "DVC_STAGE" in os.environ or not Path(".dvc").is_dir() or not shutil.which("dvc"):
        return
    if config.variant(config.load_params(params_path)) != variant:
        return
    done = subprocess.run(["dvc", "commit", "--force", "--quiet"], capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        print(f"dvc commit failed:\n{done.stderr}")
