"""The CLI talks to people: a user error is one line naming the problem and the fix, exit 2."""

import pytest

from conftest import REPO, run

CLI = ["python", "-m", "kexue"]


def _user_error(args, match, cwd=REPO):
    done = run(CLI + args, cwd, check=False)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert match in lines[0], lines[0]
    return lines[0]


def test_unknown_article_run_and_dataset():
    _user_error(["train", "resnet", "su"], "invalid choice: 'resnet'")
    _user_error(["train", "nice", "foo"], "unknown run 'foo'")
    _user_error(["download", "imagenet"], "invalid choice: 'imagenet'")


def test_a_stage_before_its_inputs(tmp_path):
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    _user_error(["prepare", "nice"], "data/raw/digits does not exist: run `python -m kexue "
                "download digits`", tmp_path)
    _user_error(["evaluate", "nice", "su"], "run `python -m kexue prepare nice`", tmp_path)
    _user_error(["report", "nice"], "holds no evaluated run", tmp_path)


def test_a_user_folder_without_the_official_files(tmp_path):
    folder = tmp_path / "tianchi"
    folder.mkdir()
    params = (REPO / "params.yaml").read_text().replace(
        "data_dirs: {}", f"data_dirs: {{tianchi_spectra: {folder}}}")
    (tmp_path / "params.yaml").write_text(params)
    _user_error(["--source", "official", "download", "tianchi_spectra"],
                "lacks first_train_index_20180131.csv, first_train_data_20180131", tmp_path)
    assert not (tmp_path / "data" / "raw" / "tianchi_spectra").exists()


def test_a_bad_params_value_is_one_line(tmp_path):
    (tmp_path / "params.yaml").write_text(
        (REPO / "params.yaml").read_text().replace("profile: default", "profile: huge"))
    _user_error(["list"], "profile: 'huge' is not valid", tmp_path)


def test_list_shows_every_article_its_runs_and_datasets():
    out = run(CLI + ["list"], REPO).stdout
    for article in ("nice", "glow", "spectra_conv1d", "vi_gan", "lipschitz"):
        assert f"{article}: " in out
    assert "https://kexue.fm/archives/5776" in out
    assert "runs at smoke: su (seeds 0), original (seeds 0)" in out
    assert "datasets, official: mnist (remote)" in out


@pytest.mark.parametrize("stage", ["download", "prepare", "train", "evaluate", "report"])
def test_help_lists_the_choices(stage):
    out = run(CLI + [stage, "--help"], REPO).stdout
    assert "nice" in out or "digits" in out
