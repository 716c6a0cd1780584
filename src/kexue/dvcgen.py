"""Generate dvc.yaml from the job list of params.yaml (``kexue.dag``): one DVC stage per
article (its prepare, train, evaluate and report jobs), one per dataset, feature network and
index.

Each stage's command hands its jobs back to Snakemake (``--forcerun <first rule>
--allowed-rules <rules> -- <last job's outputs>``), so ``dvc repro <stage>`` and ``snakemake``
run the same code and Snakemake's metadata never goes stale (../shared/notes/workflow-stack.md,
option A). Stage names carry the variant (``article--default-embedded--nice``), so switching
profile or data source keeps the other variant's lock entries. Every stage depends on the source files it runs: the import
closure of its jobs' entry modules, so editing a shared layer makes exactly the stages that use
it stale. Snakemake regenerates the file whenever params.yaml changes the job list.

Why an article is one stage and not one per job: DVC parses params.yaml once per stage and
records every dependency of every stage in dvc.lock, so `dvc status` grew with the job count
(186 stages: 15 s on the 2-core machine); Snakemake keeps the per-job granularity.
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

import pooch
import yaml

from kexue import config
from kexue.dag import Job, jobs
from kexue.data.registry import get_dataset

SRC = Path(__file__).resolve().parents[1]  # .../src
REPO = SRC.parent
HEADER = ("# GENERATED from params.yaml by `python -m kexue dvc-yaml` (Snakemake refreshes it):\n"
          "# do not edit. Each stage delegates to Snakemake; run `dvc repro <stage>`.\n")
GIT_TRACKED_SUFFIXES = (".json", ".csv", ".html", ".ipynb")  # small outputs: not cached
DVC_CACHE = Path(".dvc") / "cache" / "files" / "md5"  # DVC 3's default cache, by content
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
    """The params.yaml keys a stage depends on: an article's stage only on its block for this
    profile, so that editing another profile's settings leaves it up to date; any other stage on
    none. (The profile and the data source are in every stage's name, and each key costs `dvc
    status` a parse of params.yaml.)"""
    return [f"articles.{job.article}.{params['profile']}"] if job.article else []


def stage(stage_jobs: list[Job], params: dict) -> dict:
    """One DVC stage running ``stage_jobs`` (in DAG order) through Snakemake."""
    outputs = [o for job in stage_jobs for o in job.outputs]
    inputs = {i for job in stage_jobs for i in job.inputs} - set(outputs)
    code = {f for job in stage_jobs for f in closure(_roots(job, params))}
    rules = list(dict.fromkeys(job.rule for job in stage_jobs))
    # forcing the first rule reruns everything downstream of it: the command stays one line
    targets = stage_jobs[-1].outputs if len(rules) > 1 else outputs
    outs, metrics = [], []
    for path in outputs:
        if path.endswith(METRICS_NAME):
            metrics.append({path: {"cache": False}})
        elif path.endswith(GIT_TRACKED_SUFFIXES):
            outs.append({path: {"cache": False}})
        else:
            outs.append(path)
    body = {
        "cmd": f"snakemake --cores all --forcerun {rules[0]} --allowed-rules {' '.join(rules)} -- "
               + " ".join(targets),
        "deps": sorted(inputs | code),
        "params": _params(stage_jobs[0], params),
        "outs": outs,
    }
    if not body["params"]:
        del body["params"]
    if metrics:
        body["metrics"] = metrics
    return body


def stage_name(job: Job, variant: str) -> str:
    """An article's jobs share the stage ``article--<variant>--<id>``; any other job is one."""
    return f"article--{variant}--{job.article}" if job.article else job.name


def render(params: dict) -> str:
    grouped: dict[str, list[Job]] = {}
    for job in jobs(params):
        grouped.setdefault(stage_name(job, config.variant(params)), []).append(job)
    stages = {name: stage(group, params) for name, group in grouped.items()}
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


def link_reproduced_outputs(variant: str, params_path: str | os.PathLike = "params.yaml") -> None:
    """Before DVC commits a run (``dvc commit`` or ``dvc repro``): a cached output file whose
    bytes DVC's cache already holds (a rerun that reproduced them) becomes a hardlink to that
    cache object, which takes the new file's mtime. Left alone, DVC's commit links the old
    object in its place with the old mtime, and Snakemake then sees a model older than the data
    it was trained on and plans the training again. (Directories need nothing: Snakemake dates
    them by their ``.snakemake_timestamp``, which DVC ignores.)"""
    params = config.load_params(params_path)
    if not DVC_CACHE.is_dir() or config.variant(params) != variant:
        return
    for job in jobs(params):
        for path in map(Path, job.outputs):
            if (path.suffix in GIT_TRACKED_SUFFIXES or not path.is_file()
                    or path.stat().st_nlink > 1):  # linked already: committed before
                continue
            digest = pooch.file_hash(str(path), alg="md5")
            cached = DVC_CACHE / digest[:2] / digest[2:]
            if cached.is_file():
                written = path.stat()
                os.utime(cached, ns=(written.st_atime_ns, written.st_mtime_ns))
                link = path.with_name(f".{path.name}.dvclink")
                os.link(cached, link)
                os.replace(link, path)


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
