"""Layers point down (CLI -> stages -> articles -> kit), and Snakemake parses the DAG without
torch."""

import ast
import subprocess
from pathlib import Path

from conftest import REPO, tool_env

SRC = REPO / "src" / "kexue"


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def test_the_kit_imports_no_article_and_no_stage():
    upper = ("kexue.articles", "kexue.stages", "kexue.cli", "kexue.config", "kexue.registry",
             "kexue.dag", "kexue.report")
    for layer in ("data", "nn", "metrics", "text"):
        for path in (SRC / layer).rglob("*.py") if (SRC / layer).is_dir() else []:
            bad = [m for m in _imports(path) if m.startswith(upper)]
            assert not bad, f"{path.relative_to(REPO)} imports {bad}"
    for name in ("training.py", "rng.py", "plots.py", "io.py", "comparison.py"):
        bad = [m for m in _imports(SRC / name) if m.startswith(upper)]
        assert not bad, f"{name} imports {bad}"


def test_articles_import_no_other_article_and_no_stage():
    for package in (SRC / "articles").iterdir():
        for path in package.glob("*.py"):
            for m in _imports(path):
                assert not m.startswith(("kexue.stages", "kexue.cli", "kexue.dag")), path
                if m.startswith("kexue.articles."):
                    assert m.split(".")[2] == package.name, f"{path} imports {m}"


def test_snakemake_parses_the_dag_without_torch(tmp_path):
    fake = tmp_path / "fake" / "torch"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('torch imported while parsing')\n")
    repo = tmp_path / "repo"  # a clean copy: the checkout's own run state plays no part
    subprocess.run(["git", "clone", "-q", str(REPO), str(repo)], check=True)
    for name in ("src", "workflow", "Snakefile", "params.yaml"):
        subprocess.run(["cp", "-r", str(REPO / name), str(repo)], check=True)
    env = {**tool_env(repo), "PYTHONPATH": f"{fake.parent}:{repo / 'src'}"}
    done = subprocess.run(["snakemake", "-n", "--cores", "1"], cwd=repo, env=env,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
