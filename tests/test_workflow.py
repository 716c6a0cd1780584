"""The DAG end to end on the smoke profile, through both front doors (Snakemake and DVC)."""

import csv
import shutil
import subprocess

import pytest
import yaml

from conftest import REPO, run
from kexue import config


def _copy_repo(dest):
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                           cwd=REPO, capture_output=True, text=True, check=True).stdout
    for name in filter(None, files.split("\0")):
        if (REPO / name).is_file() and not name.startswith(("results/", "dvc.lock")):
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)


@pytest.fixture(scope="module")
def smoke_repo(tmp_path_factory):
    """A fresh clone of the working tree on the smoke profile, built once by `snakemake`."""
    repo = tmp_path_factory.mktemp("kexue")
    _copy_repo(repo)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["profile"] = "smoke"
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
    run(["git", "init", "-q"], repo)
    run(git + ["add", "-A"], repo)
    run(git + ["commit", "-qm", "smoke"], repo)
    run(["snakemake", "--cores", "2"], repo)
    return repo


def test_dvc_yaml_is_generated_from_the_dag():
    done = run(["python", "-m", "kexue", "dvc-yaml", "--check"], REPO, check=False)
    assert done.returncode == 0, done.stdout[-3000:]


def test_dvc_stages_track_only_their_articles_params():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    assert stages["train--nice--su"]["params"] == ["profile", "data_source", "articles.nice"]
    assert all("params.yaml" not in s.get("deps", []) for s in stages.values())


def test_snakemake_lint_is_clean_apart_from_conda():
    out = run(["snakemake", "--lint"], REPO, check=False).stdout
    findings = {line.strip() for line in out.splitlines() if line.strip().startswith("* ")}
    assert {f for f in findings if "conda" not in f and "container" not in f} == set()


@pytest.mark.slow
def test_smoke_dag_builds_every_report_and_the_summary(smoke_repo):
    params = config.load_params(smoke_repo / "params.yaml")
    articles = config.article_ids(params)
    with open(smoke_repo / "results" / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["article"] for r in rows} == set(articles)
    for r in rows:
        assert r["status"] in {"within band", "outside band", "not comparable",
                               "no published number"}, r
        assert r["data_label"], r
    html = (smoke_repo / "results" / "index.html").read_text()
    for article in articles:
        assert f'href="{article}/report.html"' in html
        report = (smoke_repo / "results" / article / "report.html").read_text()
        assert "Traceback" not in report and "<img" in report
        for run_name in config.run_names(params, article):
            metrics = yaml.safe_load((smoke_repo / "results" / article / run_name /
                                      "metrics.json").read_text())
            prov = metrics["provenance"]
            assert {"seed", "versions", "device", "git_commit", "wall_time_s"} <= set(prov)
            assert prov["profile"] == "smoke" and len(prov["git_commit"]) >= 40


@pytest.mark.slow
def test_dvc_status_is_clean_after_snakemake(smoke_repo):
    assert "up to date" in run(["dvc", "status"], smoke_repo).stdout


@pytest.mark.slow
def test_dvc_repro_of_one_stage_runs_only_that_stage(smoke_repo):
    out = run(["dvc", "repro", "--force", "--single-item", "--no-run-cache",
               "evaluate--nice--su"], smoke_repo).stdout
    assert out.count("Running stage") == 1 and "Running stage 'evaluate--nice--su'" in out
    assert "Nothing to be done" in run(["snakemake", "-n", "--cores", "1"], smoke_repo).stdout
    assert "up to date" in run(["dvc", "status"], smoke_repo).stdout


@pytest.mark.slow
def test_dvc_push_pull_round_trip(smoke_repo, tmp_path):
    run(["dvc", "remote", "add", "--local", "-d", "store", str(tmp_path / "store")], smoke_repo)
    run(["dvc", "push"], smoke_repo)
    model = smoke_repo / "results" / "nice" / "su" / "model.pt"
    before = model.read_bytes()
    shutil.rmtree(smoke_repo / ".dvc" / "cache")
    shutil.rmtree(smoke_repo / "data" / "processed")
    model.unlink()
    run(["dvc", "pull"], smoke_repo)
    assert model.read_bytes() == before
    assert (smoke_repo / "data" / "processed" / "nice").is_dir()
    assert "up to date" in run(["dvc", "status"], smoke_repo).stdout
