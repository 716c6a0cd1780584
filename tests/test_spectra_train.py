"""spectra_conv1d end to end on a tiny config: prepare -> train (two stages) -> evaluate; a
killed and resumed run gives the same weights; the published-vs-reproduced rows."""

import csv

import numpy as np
import pytest
import torch

import kexue.articles.spectra_conv1d.trainer as train_mod
from kexue.articles.spectra_conv1d import (
    DataConfig,
    RunConfig,
    comparisons,
    evaluate,
    prepare,
    synthetic,
    train,
)
from kexue.io import load_torch
from kexue.training import RunContext

TINY = {"batch_mix": {"star": 4, "unknown": 2, "galaxy": 1, "qso": 1}, "steps_per_epoch": 4,
            "epochs1": 2, "epochs2": 1, "checkpoint_every": 1, "eval_batch": 100}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("spectra")
    synthetic.generate_dataset(root / "raw", n_train_val=400, n_test=100)
    rng = np.random.default_rng(0)  # a stand-in for MNIST-1D: only the code path is tested
    (root / "mnist1d").mkdir()
    np.savez(root / "mnist1d" / "mnist1d.npz", x_train=rng.normal(size=(300, 40)).astype("f4"),
             y_train=rng.integers(0, 10, 300), x_test=rng.normal(size=(50, 40)).astype("f4"),
             y_test=rng.integers(0, 10, 50))
    prepare(DataConfig(), {"synthetic_spectra": root / "raw", "mnist1d": root / "mnist1d"},
            root / "processed", "embedded")
    return root / "processed"


def _ctx(data_dir, out, run="conv1d", **kw):
    return RunContext("spectra_conv1d", run, RunConfig(**kw), DataConfig(), data_dir,
                      out / "results", out / "ckpt", torch.device("cpu"), "smoke", "embedded",
                      threads=1)


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory):
    ctx = _ctx(data_dir, tmp_path_factory.mktemp("run"), **TINY)
    train(ctx)
    return ctx, evaluate(ctx)


def _history(ctx):
    with open(ctx.out_dir / "history.csv") as f:
        return list(csv.DictReader(f))


def test_two_stages_train_and_evaluate(trained):
    ctx, m = trained
    rows = _history(ctx)
    assert [(r["stage"], r["epoch"]) for r in rows] == [("1", "1"), ("1", "2"), ("2", "1")]
    assert float(rows[1]["train_loss"]) < float(rows[0]["train_loss"])  # cross-entropy falls
    assert m["parameters"] == 748_324 and m["eval_set"] == "test" and m["n_eval"] == 100
    assert m["synthetic"] and m["data_label"].startswith("synthetic")
    assert m["macro_f1"] > 0.25  # all-star would give 0.23, uniform guessing about 0.16
    assert 0 <= m["val_macro_f1_stage1"] <= 1 and 0 <= m["val_macro_f1_stage2"] <= 1
    assert np.array(m["confusion"]).sum() == 100 and set(m["per_class_f1"]) == {
        "star", "unknown", "galaxy", "qso"}
    assert m["shipped_stage"] == (2 if m["val_macro_f1_stage2"] >= m["val_macro_f1_stage1"]
                                  else 1)
    for name in ("confusion.png", "examples.png"):
        assert (ctx.out_dir / "artifacts" / name).stat().st_size > 1000
    assert not list(ctx.ckpt_dir.rglob("*.pt"))  # checkpoints cleared at the end


class Killed(Exception):
    pass


def test_killed_and_resumed_run_gives_the_same_result(trained, data_dir, tmp_path, monkeypatch):
    ctx_ref, _ = trained
    ctx = _ctx(data_dir, tmp_path, **TINY)
    real_fit, calls = train_mod.fit, {"n": 0, "kill_at": {6, 11}}

    def killing_fit(**kw):  # dies mid stage 1 (step 6 of 8), then mid stage 2 (step 3 of 4)
        inner = kw["train_step"]

        def step(s):
            calls["n"] += 1
            if calls["n"] in calls["kill_at"]:
                raise Killed
            return inner(s)
        return real_fit(**{**kw, "train_step": step})

    monkeypatch.setattr(train_mod, "fit", killing_fit)
    for _ in range(2):
        with pytest.raises(Killed):
            train(ctx)
    train(ctx)
    ref, got = (load_torch(c.out_dir / "model.pt") for c in (ctx_ref, ctx))
    assert all(torch.equal(ref[k], got[k]) for k in ref)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "wall_time"} for r in rows]
    assert strip(_history(ctx)) == strip(_history(ctx_ref))


def test_mnist1d_adaptation_runs(data_dir, tmp_path):
    ctx = _ctx(data_dir, tmp_path, run="mnist1d", task="mnist1d", mnist_steps=4, mnist_batch=100)
    train(ctx)
    m = evaluate(ctx)
    assert m["task"] == "mnist1d" and 0 <= m["test_accuracy"] <= 1 and m["n_test"] == 50
    assert [r["epoch"] for r in _history(ctx)] == ["1", "2"]  # 3 steps an epoch, 4 steps


def _spectra_metrics(synthetic_data, profile):
    return {"task": "spectra", "synthetic": synthetic_data, "profile": profile,
            "data_label": "synthetic spectra (embedded)" if synthetic_data else "Tianchi",
            "val_macro_f1_stage1": 0.80, "val_macro_f1_stage2": 0.815, "macro_f1": 0.9,
            "eval_set": "test" if synthetic_data else "validation"}


def test_synthetic_scores_are_never_comparable_and_say_so():
    rows = comparisons({"conv1d": _spectra_metrics(True, "full")}, "embedded")
    assert [r.published for r in rows] == [0.82, 0.82, 0.83]
    assert all(r.status == "not comparable" and "SYNTHETIC" in r.metric for r in rows)


def test_official_full_scores_are_compared():
    rows = comparisons({"conv1d": _spectra_metrics(False, "full"),
                        "mnist1d": {"task": "mnist1d", "profile": "full", "steps": 3000,
                                    "test_accuracy": 0.90}}, "official")
    assert [r.status for r in rows] == ["within band", "within band", "outside band",
                                        "outside band"]
    assert rows[-1].published == 0.94 and rows[-1].band == 0.03
    reduced = comparisons({"conv1d": _spectra_metrics(False, "default")}, "official")
    assert all(r.status == "not comparable" for r in reduced)
