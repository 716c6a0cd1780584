"""The DAG end to end on the smoke profile, through both front doors (Snakemake and DVC), as a
newcomer's clone sees it."""

import csv
import json
import re
import shutil
import subprocess
from collections import Counter

import pytest
import yaml

from conftest import REPO, run
from kexue import config, dag, dvcgen

PARAMS = config.load_params(REPO / "params.yaml")
GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]


def _copy_worktree(dest):
    """The working tree as git would commit it (tracked and untracked-but-not-ignored files)."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                           cwd=REPO, capture_output=True, text=True, check=True).stdout
    for name in filter(None, files.split("\0")):
        if (REPO / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)


def _set_params(repo, **values):
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params.update(values)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _planned(repo, *args) -> Counter:
    out = run(["snakemake", "-n", "--cores", "2", *args], repo).stdout
    table = out[out.index("Job stats:"):] if "Job stats:" in out else ""
    counts = Counter({m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.MULTILINE)})
    counts.pop("total", None)
    return counts


def _expected_counts(params) -> Counter:
    return Counter(j.rule for j in dag.jobs(params)) + Counter(all=1)


def test_dvc_yaml_is_generated_from_params():
    assert dvcgen.check_dvc_yaml(REPO / "params.yaml", REPO / "dvc.yaml") == 0


def test_dvc_yaml_is_rendered_again_only_when_its_inputs_change(tmp_path, monkeypatch):
    params, target = tmp_path / "params.yaml", tmp_path / "dvc.yaml"
    shutil.copy(REPO / "params.yaml", params)
    dvcgen.sync_dvc_yaml(params, target)
    assert dvcgen.check_dvc_yaml(params, target) == 0

    def must_not_render(_):
        raise AssertionError("rendered although nothing changed")

    monkeypatch.setattr(dvcgen, "_wanted", must_not_render)
    dvcgen.sync_dvc_yaml(params, target)  # the digest matches: nothing rendered
    monkeypatch.undo()
    _set_params(tmp_path, profile="smoke")
    dvcgen.sync_dvc_yaml(params, target)
    assert "article--smoke-embedded--" in target.read_text()


def test_fresh_clone_plans_every_stage_of_every_article(tmp_path):
    """What `make run` does in a new clone: every job, training included, and nothing that
    git holds makes Snakemake skip one."""
    run(["git", "clone", "-q", str(REPO), str(tmp_path / "clone")], tmp_path)
    clone = tmp_path / "clone"
    assert (clone / "data" / "README.md").is_file()
    assert not (clone / "results").exists()
    params = config.load_params(clone / "params.yaml")
    assert _planned(clone) == _expected_counts(params)


def test_snakemake_plans_exactly_the_jobs_of_the_dag_module(tmp_path):
    _copy_worktree(tmp_path)
    out = run(["snakemake", "-n", "--forceall", "--cores", "1"], tmp_path).stdout
    planned = set(re.findall(r"^    output: (.*)$", out, re.MULTILINE))
    expected = {", ".join(j.outputs) for j in dag.jobs(PARAMS)}
    assert planned == expected


def test_cluster_requests_come_from_the_articles_config(tmp_path):
    """mem_mb and runtime of a job are the article's RESOURCES for the profile (kexue.resources),
    the profile's defaults elsewhere; no rule hard-codes them."""
    _copy_worktree(tmp_path)
    cfg = tmp_path / "src" / "kexue" / "articles" / "nice" / "config.py"
    cfg.write_text(cfg.read_text() + "\nfrom kexue.resources import JobResources\n"
                   "RESOURCES = {'smoke': JobResources(mem_mb=1234, runtime=56)}\n")
    out = run(["snakemake", "-n", "--cores", "1", "--config", "profile=smoke"], tmp_path).stdout
    jobs = re.findall(r"^rule (\w+):\n(?:    .*\n)*?    wildcards: (.*)\n    resources: (.*)$",
                      out, re.MULTILINE)
    requested = {(rule, "article=nice" in wc): (re.search(r"mem_mb=(\d+)", res)[1],
                                                re.search(r"runtime=(\d+)", res)[1])
                 for rule, wc, res in jobs if rule in ("prepare", "train", "evaluate", "report")}
    for rule in ("prepare", "train", "evaluate", "report"):
        assert requested[(rule, True)] == ("1234", "56"), rule
        assert requested[(rule, False)] == ("2000", "15"), rule


def test_every_stage_depends_on_the_shared_code_it_runs():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    variant = config.variant(PARAMS)
    users = {name for name, s in stages.items() if "src/kexue/nn/flows.py" in s["deps"]}
    flow_articles = {"nice", "glow"} & set(config.article_ids(PARAMS))
    assert users == {f"article--{variant}--{a}" for a in flow_articles}
    training = {n for n, s in stages.items() if "src/kexue/training.py" in s["deps"]}
    articles = {f"article--{variant}--{a}" for a in config.article_ids(PARAMS)}
    assert articles <= training
    assert not {n for n in training if n.startswith(("generate--", "download--", "summary--"))}


def test_snakemake_lint_is_clean_apart_from_conda():
    done = run(["snakemake", "--lint"], REPO, check=False)
    out = done.stdout + done.stderr  # Snakemake 9 writes its lints to stderr
    assert "Lints for" in out or done.returncode == 0
    findings = {line.strip() for line in out.splitlines() if line.strip().startswith("* ")}
    assert {f for f in findings if "conda" not in f and "container" not in f} == set()


@pytest.fixture(scope="module")
def smoke_repo(tmp_path_factory):
    """A fresh copy of the working tree on the smoke profile, committed, built by snakemake."""
    repo = tmp_path_factory.mktemp("kexue")
    _copy_worktree(repo)
    _set_params(repo, profile="smoke")
    run(["python", "-m", "kexue", "dvc-yaml"], repo)
    run(["git", "init", "-q"], repo)
    run(GIT + ["add", "-A"], repo)
    run(GIT + ["commit", "-qm", "smoke"], repo)
    run(["snakemake", "--cores", "2"], repo)
    return repo


@pytest.mark.slow
def test_smoke_dag_builds_every_report_and_the_index(smoke_repo):
    results = smoke_repo / "results" / "smoke-embedded"
    params = config.load_params(smoke_repo / "params.yaml")
    articles = config.article_ids(params)
    with open(results / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["article"] for r in rows} == set(articles)
    for r in rows:
        assert r["status"] in {"within band", "outside band", "not comparable",
                               "no published number"}, r
        assert r["data_label"], r
    index = (results / "index.html").read_text()
    for article in articles:
        assert f'href="{article}/report.html"' in index
        for run_name in config.run_names(params, article):
            for seed in config.seeds(params, article, run_name):
                metrics = json.loads((results / article / run_name / f"seed{seed}" /
                                      "metrics.json").read_text())
                prov = metrics["provenance"]
                assert prov["profile"] == "smoke" and prov["seed"] == seed
                assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?", prov["git_commit"])


@pytest.mark.slow
def test_the_run_changes_no_tracked_file(smoke_repo):
    assert run(["git", "status", "--porcelain", "--untracked-files=no"], smoke_repo).stdout == ""
    untracked = run(["git", "status", "--porcelain"], smoke_repo).stdout.split()
    assert untracked in ([], ["??", "dvc.lock"])  # DVC's record of this clone's runs


@pytest.mark.slow
def test_logs_hold_clean_progress_lines(smoke_repo):
    log = next((smoke_repo / "logs" / "smoke-embedded").glob("train--nice--su--seed0.log"))
    text = log.read_text()
    assert "\r" not in text
    assert re.search(r"\d+/\d+ \[.*<.*loss=", text), "step/total, ETA and loss"


@pytest.mark.slow
def test_dvc_status_is_clean_after_snakemake(smoke_repo):
    assert "up to date" in run(["dvc", "status"], smoke_repo).stdout


@pytest.mark.slow
def test_dvc_repro_of_one_stage_runs_only_that_stage(smoke_repo):
    done = run(["dvc", "repro", "--force", "--single-item", "--no-run-cache",
                "article--smoke-embedded--nice"], smoke_repo)
    out = done.stdout + done.stderr
    assert out.count("Running stage") == 1
    assert "rule train:" in out and "rule report:" in out  # the article's jobs, through Snakemake
    assert "rule generate:" not in out and "rule summary:" not in out
    # Both front doors now see the same thing left: the index, made from the new report.
    assert _planned(smoke_repo) == Counter(summary=1, all=1)
    status = run(["dvc", "status"], smoke_repo).stdout
    assert re.findall(r"^(\S+):$", status, re.MULTILINE) == ["summary--smoke-embedded"], status
    done = run(["dvc", "repro", "--no-run-cache"], smoke_repo)
    assert (done.stdout + done.stderr).count("Running stage") == 1
    assert "Nothing to be done" in run(["snakemake", "-n", "--cores", "1"], smoke_repo).stdout
    assert "up to date" in run(["dvc", "status"], smoke_repo).stdout


@pytest.mark.slow
def test_switching_variants_keeps_dvc_status_truthful(smoke_repo):
    smoke_files = sorted((smoke_repo / "results" / "smoke-embedded").rglob("*"))
    stamps = [p.stat().st_mtime_ns for p in smoke_files]
    _set_params(smoke_repo, data_source="official")
    assert _planned(smoke_repo)["train"] > 0  # snakemake refreshes dvc.yaml for the new variant
    status = run(["dvc", "status"], smoke_repo).stdout
    assert "smoke-official" in status and "smoke-embedded" not in status
    _set_params(smoke_repo, data_source="embedded")
    assert "Nothing to be done" in run(["snakemake", "-n", "--cores", "1"], smoke_repo).stdout
    assert "up to date" in run(["dvc", "status"], smoke_repo).stdout
    assert [p.stat().st_mtime_ns for p in smoke_files] == stamps
    run(GIT + ["checkout", "--", "params.yaml", "dvc.yaml"], smoke_repo)


@pytest.mark.slow
def test_another_profile_reuses_the_raw_datasets(smoke_repo):
    """The raw datasets are shared: planning the default profile after a smoke run must not
    redo them (their command names no profile)."""
    done = run(["snakemake", "-n", "--cores", "2", "--config", "profile=default"], smoke_repo)
    out = done.stdout + done.stderr
    assert "Job stats:" in out  # the default profile has everything left to do...
    triggered = re.search(r"Rules with provenance triggered jobs: (.*)", out)
    # ...but the datasets the smoke run generated are not redone (others are missing, and planned)
    assert triggered is None or "generate" not in triggered[1].split(", "), triggered[0]


@pytest.mark.slow
def test_editing_another_profile_leaves_dvc_stages_up_to_date(smoke_repo):
    params = yaml.safe_load((smoke_repo / "params.yaml").read_text())
    params["articles"]["nice"]["default"]["runs"]["su"]["epochs"] = 7
    (smoke_repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        assert "up to date" in run(["dvc", "status"], smoke_repo).stdout
        params["articles"]["nice"]["smoke"]["runs"]["su"]["epochs"] = 3
        (smoke_repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        changed = run(["dvc", "status"], smoke_repo).stdout
        assert "articles.nice.smoke" in changed and "article--smoke-embedded--nice" in changed
    finally:
        run(GIT + ["checkout", "--", "params.yaml"], smoke_repo)


@pytest.mark.slow
def test_dvc_push_pull_round_trip(smoke_repo, tmp_path):
    run(["dvc", "remote", "add", "--local", "-d", "store", str(tmp_path / "store")], smoke_repo)
    run(["dvc", "push"], smoke_repo)
    model = smoke_repo / "results" / "smoke-embedded" / "nice" / "su" / "seed0" / "model.pt"
    before = model.read_bytes()
    shutil.rmtree(smoke_repo / ".dvc" / "cache")
    shutil.rmtree(smoke_repo / "data" / "processed")
    model.unlink()
    run(["dvc", "pull"], smoke_repo)
    assert model.read_bytes() == before
    assert (smoke_repo / "data" / "processed" / "smoke-embedded" / "nice").is_dir()
    assert "up to date" in run(["dvc", "status"], smoke_repo).stdout


def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _browse(page, out_png):
    """Load ``page`` in headless Chromium: its DOM after load, and a screenshot."""
    flags = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
             "--allow-file-access-from-files", "--window-size=1280,1600"]
    dom = subprocess.run(flags + ["--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    subprocess.run(flags + [f"--screenshot={out_png}", page.as_uri()], capture_output=True,
                   timeout=120, check=True)
    return dom


@pytest.mark.slow
@pytest.mark.skipif(not _chromium(), reason="Debian's chromium is not installed")
def test_index_and_a_report_in_a_browser(smoke_repo, tmp_path):
    import base64
    import io

    import numpy as np
    from PIL import Image

    results = smoke_repo / "results" / "smoke-embedded"
    for page in (results / "index.html", results / "nice" / "report.html"):
        dom = _browse(page, tmp_path / "shot.png")
        shot = np.asarray(Image.open(tmp_path / "shot.png").convert("L"))
        assert shot.std() > 5, f"{page}: the screenshot is blank"
        assert "<title>" in dom and "Traceback" not in dom
        for src in re.findall(r'<img[^>]+src="([^"]+)"', dom):
            if src.startswith("data:image/png;base64,"):
                Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).verify()
            else:
                Image.open(page.parent / src).verify()
        for href in re.findall(r'<a[^>]+href="([^"#]+)"', dom):
            if not href.startswith(("http://", "https://")):
                assert (page.parent / href).exists(), f"{page}: broken link {href}"
    assert len(re.findall(r"<img", _browse(results / "nice" / "report.html",
                                           tmp_path / "r.png"))) >= 2


@pytest.mark.slow
def test_editing_a_shared_layer_makes_exactly_its_users_stale(smoke_repo):
    flows = smoke_repo / "src" / "kexue" / "nn" / "flows.py"
    original = flows.read_text()
    flows.write_text(original + "\n# an edit\n")
    try:
        status = run(["dvc", "status"], smoke_repo).stdout
    finally:
        flows.write_text(original)
    stale = set(re.findall(r"^(\S+--\S+):$", status, re.MULTILINE))
    stages = yaml.safe_load((smoke_repo / "dvc.yaml").read_text())["stages"]
    users = {n for n, s in stages.items() if "src/kexue/nn/flows.py" in s["deps"]}
    assert stale == users and users
    assert {n.split("--")[2] for n in users} == {"nice", "glow"}
    assert "up to date" in run(["dvc", "status"], smoke_repo).stdout
