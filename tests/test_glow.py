"""Glow article: data readers (CIFAR-10 binary, CelebA, embedded), the training loop (learns,
resumes exactly, stops on NaN, collapse guard), the comparisons and the params block."""

import dataclasses
import io
import json
import math
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

import kexue.articles.glow.train as glow_train
from conftest import MIRROR, REPO, Killed, UniformOnCube, without_wall_time
from kexue.articles.glow.config import DataConfig, GlowModel, RunConfig
from kexue.articles.glow.data import load_prepared, prepare
from kexue.articles.glow.evaluate import evaluate
from kexue.articles.glow.model import Glow, build_model
from kexue.articles.glow.published import comparisons
from kexue.comparison import ArticleResults, RunResults
from kexue.data import images
from kexue.data.embedded import sklearn_digits
from kexue.data.images import ImageOptions
from kexue.errors import DataError
from kexue.io import load_torch
from kexue.metrics.likelihood import bits_per_dim, dequantise
from kexue.nn import flows
from kexue.training import Checkpointer, NonFiniteLoss, RunContext, TrackedState, read_history

CIFAR_SUBSET = MIRROR / "cifar10-subset" / "data_batch_1_first4000.bin"
CELEBA_ORIGINALS = MIRROR / "celeba-subset" / "original_178x218"

TINY_MODEL = {"levels": 2, "depth": 1, "width": 16}
TINY = {"steps_per_epoch": 10, "epochs": 3, "lr": 1e-3, "checkpoint_every": 4, "n_samples": 9,
        "batch_size": 16}
MODEL_KEYS = {f.name for f in dataclasses.fields(GlowModel)}


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """Embedded digits, prepared as the workflow would (generated from sklearn)."""
    root = tmp_path_factory.mktemp("glow")
    (root / "raw" / "digits").mkdir(parents=True)
    (root / "processed").mkdir()
    sklearn_digits(root / "raw" / "digits")
    prepare(DataConfig(datasets=("digits",)), {"digits": root / "raw" / "digits"},
            root / "processed", "embedded")
    return root / "processed"


def _ctx(data_dir: Path, root: Path, **overrides) -> RunContext:
    model = {**TINY_MODEL, **{k: v for k, v in overrides.items() if k in MODEL_KEYS}}
    run = {**TINY, **{k: v for k, v in overrides.items() if k not in MODEL_KEYS}}
    cfg = RunConfig(model=GlowModel(**model), **run)
    return RunContext(article="glow", run="tiny", seed=cfg.seed, cfg=cfg,
                      data_cfg=DataConfig(datasets=("digits",)), data_dir=data_dir,
                      out_dir=root / "results", ckpt_dir=root / "ckpt",
                      device=torch.device("cpu"), profile="smoke", source="embedded", threads=1)


def _history(path):
    return without_wall_time(read_history(path))


# ---------------------------------------------------------------- data


def test_prepare_digits(prepared):
    meta = json.loads((prepared / "data.json").read_text())
    assert meta["default"] == "digits"
    d = meta["datasets"]["digits"]
    # 1,437 training images, 5% of them (72) held out for validation; the test set untouched
    assert (d["n_train"], d["n_val"], d["n_test"]) == (1365, 72, 360)
    assert (d["n_levels"], d["shape"], d["complete_data"]) == (17, [1, 8, 8], False)
    assert d["data_label"].startswith("embedded")
    x_train, _ = load_prepared(prepared, "", "train")
    x_val, _ = load_prepared(prepared, "digits", "val")
    assert x_train.dtype == torch.uint8 and int(x_train.max()) == 16
    assert len(x_train) == 1365 and len(x_val) == 72
    # validation images are not training images
    train_rows = {bytes(r) for r in x_train.flatten(1).numpy()}
    assert sum(bytes(r) in train_rows for r in x_val.flatten(1).numpy()) < 5  # duplicates only


def test_unprepared_dataset_is_a_config_error(prepared):
    from kexue.errors import ConfigError

    with pytest.raises(ConfigError, match="'celeba' was not prepared"):
        load_prepared(prepared, "celeba", "train")


def test_image_patch_split_sizes():
    rng = np.random.default_rng(0)
    photos = rng.integers(0, 256, (2, 427, 640, 3), dtype=np.uint8)
    train, test = images.sample_image_patches(photos, ImageOptions())
    assert train.shape == (24_102, 3, 16, 16) and test.shape == (1_976, 3, 16, 16)  # spec §5.3
    assert np.array_equal(test[0], photos[0, :16, 480:496].transpose(2, 0, 1))


def test_dequantisation_is_su_scale():
    k = torch.tensor([0, 255])
    expected = torch.tensor([-0.5, 255 / 256 - 0.5])
    assert torch.equal(dequantise(k, torch.zeros(2), 256, glow_train.OFFSET), expected)
    x = dequantise(k, torch.full((2,), 0.999), 256, glow_train.OFFSET)
    assert (x < 0.5).all()  # x/256 - 0.5 + U[0, 1/256): inside [-0.5, 0.5)


def test_cifar_binary_reader_on_the_mirror_subset(shared_datasets):
    x, labels = images.read_cifar_records(CIFAR_SUBSET.read_bytes(), CIFAR_SUBSET.name)
    assert x.shape == (4000, 3, 32, 32) and x.dtype == np.uint8
    assert x[0, :, 0, 0].tolist() == [59, 62, 63] and labels[0] == 6  # keras x_train[0]
    assert x[1, :, 0, 0].tolist() == [154, 177, 187]
    assert labels[:10].tolist() == [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]
    cifar = images.read_cifar10("cifar10", CIFAR_SUBSET.parent, ImageOptions())
    assert (len(cifar.train), len(cifar.test)) == (3500, 500)
    assert np.array_equal(cifar.test[0], x[3500])
    assert cifar.train_labels[:10].tolist() == labels[:10].tolist()
    assert cifar.test_labels[0] == labels[3500]
    assert "3500-3999 held out" in cifar.test_split and not cifar.complete


def test_cifar_reader_layouts_and_format_checks(tmp_path):
    rng = np.random.default_rng(0)
    rec = np.concatenate([rng.integers(0, 10, (3, 1), dtype=np.uint8),
                          rng.integers(0, 256, (3, 3072), dtype=np.uint8)], 1)
    x, _y = images.read_cifar_records(rec.tobytes(), "t")
    assert np.array_equal(x[2, 1].ravel(), rec[2, 1 + 1024: 1 + 2048])  # G plane, row-major
    with pytest.raises(DataError, match="whole number of 3073-byte"):
        images.read_cifar_records(rec.tobytes()[:-1], "short")
    bad = rec.copy()
    bad[0, 0] = 12
    with pytest.raises(DataError, match="label 12"):
        images.read_cifar_records(bad.tobytes(), "bad")
    # the official tar layout is read from memory; a batch of the wrong size is refused
    tar_path = tmp_path / "official" / images.CIFAR_TAR
    tar_path.parent.mkdir()
    with tarfile.open(tar_path, "w:gz") as tf:
        for name in (*images.CIFAR_TRAIN, images.CIFAR_TEST):
            info = tarfile.TarInfo(f"{images.CIFAR_DIR}/{name}")
            info.size = rec.nbytes
            tf.addfile(info, io.BytesIO(rec.tobytes()))
    with pytest.raises(DataError, match="3 records, expected 10,000"):
        images.read_cifar10("cifar10", tar_path.parent, ImageOptions())
    # the python version is never unpickled
    (tmp_path / "py").mkdir()
    (tmp_path / "py" / "cifar-10-python.tar.gz").write_bytes(b"")
    with pytest.raises(DataError, match="never unpickled"):
        images.read_cifar10("cifar10", tmp_path / "py", ImageOptions())


def test_celeba_reader_on_original_jpegs(shared_datasets):
    from PIL import Image

    ids, x, width = images.read_celeba_images(CELEBA_ORIGINALS, 32, threads=2)
    assert ids.tolist() == list(range(1, 33)) and width == 178
    assert x.shape == (32, 3, 32, 32) and x.dtype == np.uint8
    img = Image.open(CELEBA_ORIGINALS / "000007.jpg").convert("RGB")
    assert img.size == (178, 218)
    ref = np.asarray(img.crop((0, 20, 178, 198)).resize((32, 32), Image.BILINEAR))
    assert np.array_equal(x[6], ref.transpose(2, 0, 1))
    # the mirror's half-size copies (89x109) are cropped at rows 10..99
    half = img.resize((89, 109), Image.BILINEAR)
    buf = io.BytesIO()
    half.save(buf, "JPEG")
    small = images.celeba_crop_resize(buf.getvalue(), 16)
    reread = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    ref = np.asarray(reread.crop((0, 10, 89, 99)).resize((16, 16), Image.BILINEAR))
    assert np.array_equal(small, ref.transpose(2, 0, 1))
    # no list_eval_partition.txt: the held-out split is by id
    train, test, meta = images.read_celeba(CELEBA_ORIGINALS, ImageOptions(celeba_subset_test_from=25))
    assert (len(train), len(test)) == (24, 8) and "held out" in meta["test_split"]


def test_celeba_reader_refuses_other_shapes(tmp_path):
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (100, 100)).save(buf, "JPEG")
    with pytest.raises(DataError, match="not an aligned 178x218"):
        images.celeba_crop_resize(buf.getvalue(), 32, "x")


# ---------------------------------------------------------------- training


def test_tiny_round_learns_and_resumes_exactly(prepared, tmp_path, monkeypatch):
    # openai/glow's recipe exercises data-dependent init (flow and nets), LU conv, affine
    # coupling, output gains, openai's Adamax, warm-up and the shift augmentation
    kw = {"coupling": "affine", "permutation": "invconv", "actnorm": "data", "net_init": "openai",
          "net_actnorm": True, "zero_conv_gain": True, "logscale_factor": 3.0,
          "optimiser": "adamax_openai", "warmup_steps": 5, "augment_shift": 0.1,
          "collapse_guard": False}
    ref = _ctx(prepared, tmp_path / "a", **kw)
    glow_train.train(ref)
    hist = read_history(ref.out_dir / "history.csv")
    assert [r["epoch"] for r in hist] == [1, 2, 3]
    assert hist[-1]["val_bpd"] < hist[0]["val_bpd"]  # it learns
    # Glow ships the last weights: they reproduce the last validation score
    model = build_model(ref.cfg, (1, 8, 8))
    model.load_state_dict(load_torch(ref.out_dir / "model.pt"))
    x_val, _ = load_prepared(prepared, "", "val")
    val = glow_train.nll(model, x_val, 17, ref.cfg.seed, "cpu")
    assert bits_per_dim(val, 64, 17) == pytest.approx(hist[-1]["val_bpd"], rel=1e-9)
    metrics = evaluate(ref)
    assert metrics["steps_run"] == 30 and metrics["epochs_run"] == 3
    assert metrics["n_test"] == 360 and metrics["complete_data"] is False
    assert metrics["test_bpd"] == pytest.approx(bits_per_dim(metrics["test_nll_nats"], 64, 17))
    assert math.isfinite(metrics["test_bpd"]) and metrics["test_bpd"] > 0
    for t in ("0.7", "0.8", "1"):
        assert (ref.artifacts / f"samples_T{t}.png").is_file()
    assert metrics["samples"] == {"0.7": "samples_T0.7.png", "0.8": "samples_T0.8.png",
                                  "1": "samples_T1.png"}
    assert not list((tmp_path / "a" / "ckpt").glob("*.pt"))  # cleared at the end

    # kill at step 17 (last checkpoint: step 16), then resume: the same weights and history
    ctx = _ctx(prepared, tmp_path / "b", **kw)
    real = glow_train.step_generator

    def killing(seed, step):
        if step == 17:
            raise Killed
        return real(seed, step)

    monkeypatch.setattr(glow_train, "step_generator", killing)
    inits = []

    def counting(model, x):
        inits.append(flows.data_dependent_init(model, x))
        return inits[-1]

    monkeypatch.setattr(glow_train, "data_dependent_init", counting)
    with pytest.raises(Killed):
        glow_train.train(ctx)
    assert load_torch(tmp_path / "b" / "ckpt" / "last.pt")["step"] == 16
    monkeypatch.setattr(glow_train, "step_generator", real)
    glow_train.train(ctx)
    assert len(inits) == 1 and inits[0] > 0  # the resumed run did not redo the init
    a, b = load_torch(ref.out_dir / "model.pt"), load_torch(ctx.out_dir / "model.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert _history(ref.out_dir / "history.csv") == _history(ctx.out_dir / "history.csv")


def test_precision_is_a_config_choice_recorded_in_the_metrics(prepared, tmp_path, monkeypatch):
    """The training forward pass runs under kexue.training.autocast with the run's precision;
    metrics.json records what the run really used (bf16 only on CUDA: fp32 here)."""
    from kexue.articles.glow.evaluate import evaluate
    from test_glow import _ctx

    seen = []
    real = glow_train.autocast

    def spy(device, precision):
        seen.append(precision)
        return real(device, precision)

    monkeypatch.setattr(glow_train, "autocast", spy)
    ctx = _ctx(prepared, tmp_path, precision="bf16", epochs=1)
    glow_train.train(ctx)
    assert seen and set(seen) == {"bf16"}
    metrics = evaluate(ctx)
    assert metrics["precision"] == "fp32"
    # the stripe diagnostic of the test images and of every sample grid
    assert set(metrics["alternation"]) == {"test", "T0.7", "T0.8", "T1"}
    assert all(set(v) == {"columns", "rows"} for v in metrics["alternation"].values())


def test_nan_loss_stops_and_keeps_last_good_checkpoint(prepared, tmp_path, monkeypatch):
    ctx = _ctx(prepared, tmp_path)
    calls = {"n": 0}
    real = Glow.log_prob

    def poisoned(self, x):
        lp = real(self, x)
        if self.training:
            calls["n"] += 1
            if calls["n"] == 7:  # training step 6 (0-based)
                return lp * math.nan
        return lp

    monkeypatch.setattr(Glow, "log_prob", poisoned)
    with pytest.raises(NonFiniteLoss, match=r"at step 6.*last good checkpoint"):
        glow_train.train(ctx)
    state = load_torch(tmp_path / "ckpt" / "last.pt")
    assert state["step"] == 4  # checkpoint_every=4
    assert all(torch.isfinite(v).all() for v in state["modules"]["model"].values()
               if v.is_floating_point())
    assert not (ctx.out_dir / "model.pt").exists()


def test_collapse_guard_reloads_best_weights_and_drops_lr(tmp_path):
    cfg = RunConfig(collapse_after=3, collapse_lr=1e-5, lr=1e-4)
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    state = TrackedState(lr=cfg.lr, best_loss=math.inf, collapses=0)
    guard = glow_train.CollapseGuard(cfg, model, opt, state, Checkpointer(tmp_path, "t"))
    assert not guard(1, -100.0)
    best = {k: v.clone() for k, v in model.state_dict().items()}
    # worse; then positive at epochs 3 and 4 (0-based 2 and 3): not yet past index 3
    for epoch, loss in [(2, -50.0), (3, 10.0), (4, 10.0)]:
        with torch.no_grad():
            model.weight.add_(1.0)
        assert not guard(epoch, loss)
    assert opt.param_groups[0]["lr"] == 1e-4
    assert guard(5, 5.0)  # positive loss at 0-based epoch 4 > 3: collapse
    assert all(torch.equal(v, best[k]) for k, v in model.state_dict().items())
    assert opt.param_groups[0]["lr"] == 1e-5 and state["lr"] == 1e-5
    assert state["collapses"] == 1
    assert not guard(6, -200.0)  # a new best is saved, nothing reloaded


def test_collapse_guard_counts_epochs_as_keras(tmp_path):
    """Su's `epoch > 10` on Keras's 0-based index (spec §9): a positive, non-best loss at the
    11th epoch (index 10) does nothing; at the 12th (index 11) it reloads and drops the lr."""
    cfg = RunConfig()  # collapse_after 10, lr 1e-4 -> 1e-5
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    state = TrackedState(lr=cfg.lr, best_loss=math.inf, collapses=0)
    guard = glow_train.CollapseGuard(cfg, model, opt, state, Checkpointer(tmp_path, "t"))
    for epoch in range(1, 11):
        assert not guard(epoch, -100.0 - epoch)  # improving
    assert not guard(11, 50.0)
    assert state["lr"] == 1e-4 and state["collapses"] == 0
    assert guard(12, 50.0)
    assert state["lr"] == 1e-5 and state["collapses"] == 1


def test_collapse_guard_is_off_when_disabled(tmp_path):
    cfg = RunConfig(collapse_after=0, collapse_guard=False)
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    state = TrackedState(lr=cfg.lr, best_loss=math.inf, collapses=0)
    guard = glow_train.CollapseGuard(cfg, model, opt, state, Checkpointer(tmp_path, "t"))
    assert not guard(1, -1.0) and not guard(2, 50.0)
    assert state["collapses"] == 0 and opt.param_groups[0]["lr"] == cfg.lr


def test_collapse_guard_inside_training(prepared, tmp_path, monkeypatch):
    """Fake a positive, worse epoch loss after the threshold: train() reloads and drops lr."""
    ctx = _ctx(prepared, tmp_path, collapse_after=1, epochs=3)
    real = glow_train.CollapseGuard.__call__
    fake = {1: -10.0, 2: -20.0, 3: 50.0}
    monkeypatch.setattr(glow_train.CollapseGuard, "__call__",
                        lambda self, epoch, loss: real(self, epoch, fake[epoch]))
    glow_train.train(ctx)
    hist = read_history(ctx.out_dir / "history.csv")
    assert [r["collapse_guard"] for r in hist] == [0, 0, 1]
    assert [r["lr"] for r in hist] == [1e-3, 1e-3, 1e-5]


def test_uniform_model_gives_exactly_8_bits_per_dim():
    # through glow's evaluation path: Su's centred cube [-0.5, 0.5)^D must hold every point
    k = torch.tensor([0, 255, 3, 128], dtype=torch.uint8).repeat(5, 3, 2, 2)[:, :, :2, :2]
    nll = glow_train.nll(UniformOnCube(-0.5), k, 256, seed=0, device="cpu")
    assert nll == 0.0 and bits_per_dim(nll, 12, 256) == 8.0
    assert glow_train.nll(UniformOnCube(0.0), k, 256, seed=0, device="cpu") == math.inf


# ---------------------------------------------------------------- comparisons


def _metrics(recipe, dataset="cifar10", complete=True, depth=32, test_bpd=3.37):
    return {"recipe": recipe, "dataset": dataset, "complete_data": complete, "depth": depth,
            "levels": 3, "test_bpd": test_bpd, "data_label": dataset, "steps_run": 1,
            "batch_size": 64, "permutation": "reverse", "coupling": "additive"}


def _results(profile="full", source="official", **runs):
    return ArticleResults("glow", profile, source,
                          {name: RunResults(name, dict(enumerate(seeds)))
                           for name, seeds in runs.items()})


def test_comparisons():
    rows = comparisons(_results(original=[_metrics("original")], su=[_metrics("su")]))
    by = {(r.run, r.published.value): r for r in rows}
    assert set(by) == {("original", 3.35), ("original", 3.39), ("su", 3.49)}
    assert by[("original", 3.35)].status == "within band"
    assert by[("original", 3.39)].status == "within band"
    assert by[("su", 3.49)].status == "not comparable"  # context only
    worse = comparisons(_results(original=[_metrics("original", test_bpd=3.42)]))
    assert {r.published.value: r.status for r in worse} == {3.35: "outside band",
                                                            3.39: "within band"}
    for results in (_results("default", original=[_metrics("original")]),
                    _results(original=[_metrics("original", complete=False)]),
                    _results("full", "embedded",
                             original=[_metrics("original", dataset="image_patches")]),
                    _results(original=[_metrics("original", depth=4)])):
        assert {r.status for r in comparisons(results)} == {"not comparable"}
    assert comparisons(_results(**{"ablation-reverse-additive": [_metrics("ablation")]})) == []


def test_comparison_is_over_the_mean_of_the_seeds():
    seeds = [_metrics("original", test_bpd=v) for v in (3.36, 3.38, 3.40)]
    row = next(r for r in comparisons(_results(original=seeds)) if r.published.value == 3.35)
    assert row.mean == pytest.approx(3.38) and row.sd == pytest.approx(0.02)



def test_ablation_rows_are_mean_and_sd_over_seeds():
    from kexue.articles.glow.published import ablation_rows, ordering

    def run(perm, values):
        return [{**_metrics("ablation", test_bpd=v), "permutation": perm} for v in values]

    rows = ablation_rows(_results("default", "embedded", **{
        "ablation-invconv-additive": run("invconv", [4.0, 4.2]),
        "ablation-shuffle-additive": run("shuffle", [5.0, 5.2, 5.4]),
        "ablation-reverse-additive": run("reverse", [5.6])}))
    by = {r["permutation"]: r for r in rows}
    assert by["invconv"]["test bits/dim"] == pytest.approx(4.1)
    assert by["invconv"]["sd"] == pytest.approx(0.1414, abs=1e-4)
    assert (by["shuffle"]["seeds"], by["reverse"]["sd"]) == (3, None)
    # one seed of reverse: within noise of shuffle; invconv is resolved
    assert ordering(rows, "additive") == "invconv < shuffle ≈ reverse"

# ---------------------------------------------------------------- params block


def test_params_block_is_valid_for_every_profile_and_source():
    from kexue import config

    runs = {"su", "original"} | {f"ablation-{p}-{c}" for p in ("reverse", "shuffle", "invconv")
                                 for c in ("additive", "affine")}
    params = config.load_params(REPO / "params.yaml")
    config.validate_params(params)
    for profile in config.PROFILES:
        for source in config.DATA_SOURCES:
            p = {**params, "profile": profile, "data_source": source}
            assert set(config.run_names(p, "glow")) == runs
            config.data_config(p, "glow")
            for run in runs:
                cfg = config.run_config(p, "glow", run)
                if run.startswith("ablation"):
                    perm, coupling = run.split("-")[1:]
                    assert (cfg.model.permutation, cfg.model.coupling) == (perm, coupling)
    full = {**params, "profile": "full", "data_source": "official"}
    assert config.run_config(full, "glow", "su") == RunConfig(dataset="celeba")  # spec E1


def test_evaluation_compiles_only_where_it_pays():
    from kexue import config
    from kexue.metrics.likelihood import EVAL_BATCH

    cost = glow_train.EVAL_COMPILE_COST
    params = config.load_params(REPO / "params.yaml")
    params.update(profile="default", data_source="embedded")
    for run in config.run_names(params, "glow"):  # 500 validation images an epoch: eager
        cfg = config.run_config(params, "glow", run)
        assert cfg.eval_images and not cost.pays(cfg.epochs * (cfg.eval_images // EVAL_BATCH))
    # full: all of a 10,000-image validation split every epoch for 150 epochs: compiled
    assert cost.pays(150 * (10_000 // EVAL_BATCH))
