"""The contract every registered article keeps (docs/architecture.md): the package shape and
interface, its notebook, its params for every profile, a tiny train killed twice and resumed
that ends with bit-identical weights, evaluate writing metrics and artifacts, the report rendering."""

import ast
import dataclasses
import json
import math
import shutil

import nbformat
import pytest
import torch

from conftest import REPO
from kexue import config, stages, training
from kexue.article import PROTOCOLS
from kexue.dag import datasets_of
from kexue.io import load_torch
from kexue.registry import PARTS, get_article

PARAMS = config.load_params(REPO / "params.yaml")
ARTICLES = config.article_ids(PARAMS)


class Killed(Exception):
    """Stands in for SIGKILL in the middle of training."""


@pytest.mark.parametrize("article", ARTICLES)
def test_package_has_every_part_and_implements_its_protocol(article):
    art = get_article(article)
    package = REPO / "src" / "kexue" / "articles" / article
    for part in PARTS:
        assert (package / f"{part}.py").is_file(), f"{article} lacks {part}.py"
        if part in PROTOCOLS:
            assert isinstance(art.part(part), PROTOCOLS[part]), f"{article}.{part}"
    # The package's __init__ imports nothing: each stage imports only the part it runs.
    tree = ast.parse((package / "__init__.py").read_text())
    assert not [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert ast.get_docstring(tree)
    # The config part imports no torch (Snakemake reads it while parsing the DAG).
    source = (package / "config.py").read_text()
    assert "import torch" not in source and "from torch" not in source


@pytest.mark.parametrize("article", ARTICLES)
def test_notebook_takes_the_article_and_its_results_as_parameters(article):
    nb = nbformat.read(REPO / "workflow" / "notebooks" / f"{article}.ipynb", as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert "parameters" in first.metadata.get("tags", [])
    assert f'article = "{article}"' in first.source and "results_dir" in first.source


@pytest.mark.parametrize("article", ARTICLES)
def test_every_profile_has_runs_with_a_model_config(article):
    for profile in config.PROFILES:
        params = {**PARAMS, "profile": profile}
        runs = config.run_names(params, article)
        assert runs
        for run in runs:
            cfg = config.run_config(params, article, run)
            nested = [f.name for f in dataclasses.fields(cfg)
                      if dataclasses.is_dataclass(getattr(cfg, f.name))]
            assert nested and hasattr(cfg, "seed"), f"{article}/{run}: no model config"


def _fit_killed_twice(monkeypatch, ckpt_root):
    """Make the next two trainings raise Killed: the first two steps after its first checkpoint
    is written, the resumed one three steps after it resumed (past the first kill's point)."""
    real_fit = training.fit
    state = {"kills": 0, "steps_after": 0}

    def fit(*, train_step, **kwargs):
        def step(s):
            if state["kills"] < 2 and any(ckpt_root.rglob("last.pt")):
                state["steps_after"] += 1
                if state["steps_after"] == 2 + state["kills"]:
                    state.update(kills=state["kills"] + 1, steps_after=0)
                    raise Killed
            return train_step(s)

        return real_fit(train_step=step, **kwargs)

    monkeypatch.setattr(training, "fit", fit)
    return state


def _weights(path):
    return load_torch(path)


def _flatten(state, prefix=""):
    """{name: tensor} of a state dict, nested ones (a GAN's {"G": ..., "D": ...}) included."""
    flat = {}
    for key, value in state.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    return flat


def _history(path):
    rows = path.read_text().splitlines()
    header = rows[0].split(",")
    drop = header.index("wall_time") if "wall_time" in header else None
    return [",".join(v for i, v in enumerate(r.split(",")) if i != drop) for r in rows]


@pytest.mark.slow
@pytest.mark.parametrize("article", ARTICLES)
def test_train_kill_resume_evaluate_report(article, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    params = {**PARAMS, "profile": "smoke", "data_source": "embedded"}
    torch.set_num_threads(1)
    for dataset in datasets_of(params, article):
        stages.download(params, dataset)
    stages.prepare(params, article)
    run = config.run_names(params, article)[0]
    ctx = stages.context(params, article, run, None, 1)

    stages.train(params, article, run, None, 1)
    reference = _weights(ctx.out_dir / "model.pt")
    reference_history = _history(ctx.out_dir / "history.csv")
    shutil.rmtree(ctx.out_dir)

    state = _fit_killed_twice(monkeypatch, ctx.ckpt_dir)
    for kill in (1, 2):
        with pytest.raises(Killed):
            stages.train(params, article, run, None, 1)  # the second resumes, then dies
        assert state["kills"] == kill and not (ctx.out_dir / "model.pt").exists()
    stages.train(params, article, run, None, 1)  # resumes from the last checkpoint
    resumed = _weights(ctx.out_dir / "model.pt")
    reference, resumed = _flatten(reference), _flatten(resumed)
    assert reference.keys() == resumed.keys()
    for name in reference:
        assert torch.equal(reference[name], resumed[name]), f"{article}/{run}: {name} differs"
    assert _history(ctx.out_dir / "history.csv") == reference_history
    assert not list(ctx.ckpt_dir.rglob("*.pt")), "checkpoints are cleared after training"

    stages.evaluate(params, article, run, None, 1)
    metrics = json.loads((ctx.out_dir / "metrics.json").read_text())
    assert metrics["provenance"]["seed"] == ctx.seed and "data_label" in metrics
    numbers = [v for v in metrics.values() if isinstance(v, float)]
    assert any(math.isfinite(v) for v in numbers) and not any(math.isinf(v) for v in numbers)
    assert any(ctx.artifacts.iterdir()), "evaluate writes its figures into artifacts/"

    stages.report(params, article)
    html = (tmp_path / "results" / "smoke-embedded" / article / "report.html").read_text()
    assert "Traceback" not in html and "Warning" not in html
    assert f"<title>kexue · {get_article(article).title}</title>" in html
