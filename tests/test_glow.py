"""Glow article: data readers (CIFAR-10 binary, CelebA, embedded), the training loop (learns,
resumes exactly, stops on NaN, collapse guard) and the comparisons."""

import io
import json
import math
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from kexue.articles import glow
from kexue.articles.glow import DataConfig, RunConfig
from kexue.io import load_torch
from kexue.nn import flows
from kexue.training import Checkpointer, NonFiniteLoss, RunContext, TrackedState, read_history

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
CIFAR_SUBSET = SHARED / "cifar10-subset" / "data_batch_1_first4000.bin"
CELEBA_ORIGINALS = SHARED / "celeba-subset" / "original_178x218"

TINY = {"levels": 2, "depth": 1, "width": 16, "steps_per_epoch": 10, "epochs": 3, "lr": 1e-3,
        "checkpoint_every": 4, "n_samples": 9, "batch_size": 16}


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """Embedded digits, prepared as the workflow would (generated from sklearn)."""
    from kexue.data.embedded import sklearn_digits

    root = tmp_path_factory.mktemp("glow")
    (root / "raw" / "digits").mkdir(parents=True)
    sklearn_digits(root / "raw" / "digits")
    glow.prepare(DataConfig(embedded="digits"), {"digits": root / "raw" / "digits"},
                 root / "processed", "embedded")
    return root / "processed"


def _ctx(data_dir: Path, root: Path, **overrides) -> RunContext:
    cfg = RunConfig(**{**TINY, **overrides})
    return RunContext(article="glow", run="tiny", cfg=cfg, data_cfg=DataConfig(embedded="digits"),
                      data_dir=data_dir, out_dir=root / "results", ckpt_dir=root / "ckpt",
                      device=torch.device("cpu"), profile="smoke", source="embedded", threads=1)


def _history(path):
    return [{k: v for k, v in r.items() if k != "wall_time"} for r in read_history(path)]


# ---------------------------------------------------------------- data


def test_prepare_digits(prepared):
    meta = json.loads((prepared / "data.json").read_text())
    assert meta["default"] == "digits"
    d = meta["datasets"]["digits"]
    assert (d["n_train"], d["n_test"], d["n_levels"], d["shape"]) == (1437, 360, 17, [1, 8, 8])
    assert d["data_label"].startswith("embedded")
    x_train, _x_test, _ = glow.load_prepared(prepared)
    assert x_train.dtype == torch.uint8 and int(x_train.max()) == 16


def test_image_patch_split_sizes():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 427, 640, 3), dtype=np.uint8)
    train, test = glow.sample_image_patches(images, DataConfig())
    assert train.shape == (24_102, 3, 16, 16) and test.shape == (1_976, 3, 16, 16)  # spec §5.3
    assert np.array_equal(test[0], images[0, :16, 480:496].transpose(2, 0, 1))


def test_dequantisation_is_su_scale():
    k = torch.tensor([0, 255])
    expected = torch.tensor([-0.5, 255 / 256 - 0.5])
    assert torch.equal(glow.dequantise(k, torch.zeros(2), 256), expected)
    x = glow.dequantise(k, torch.full((2,), 0.999), 256)
    assert (x < 0.5).all()  # x/256 - 0.5 + U[0, 1/256): inside [-0.5, 0.5)


@pytest.mark.skipif(not CIFAR_SUBSET.is_file(), reason="offline mirror not present")
def test_cifar_binary_reader_on_the_mirror_subset(tmp_path):
    x, labels = glow.read_cifar_records(CIFAR_SUBSET.read_bytes(), CIFAR_SUBSET.name)
    assert x.shape == (4000, 3, 32, 32) and x.dtype == np.uint8
    assert x[0, :, 0, 0].tolist() == [59, 62, 63] and labels[0] == 6  # keras x_train[0]
    assert x[1, :, 0, 0].tolist() == [154, 177, 187]
    assert labels[:10].tolist() == [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]
    train, test, meta = glow.read_cifar10(CIFAR_SUBSET.parent, DataConfig())
    assert (len(train), len(test)) == (3500, 500)
    assert np.array_equal(test[0], x[3500])
    assert "3500-3999 held out" in meta["test_split"] and not meta["full_dataset"]


def test_cifar_reader_layouts_and_format_checks(tmp_path):
    rng = np.random.default_rng(0)
    rec = np.concatenate([rng.integers(0, 10, (3, 1), dtype=np.uint8),
                          rng.integers(0, 256, (3, 3072), dtype=np.uint8)], 1)
    x, _y = glow.read_cifar_records(rec.tobytes(), "t")
    assert np.array_equal(x[2, 1].ravel(), rec[2, 1 + 1024: 1 + 2048])  # G plane, row-major
    with pytest.raises(ValueError, match="whole number of 3073-byte"):
        glow.read_cifar_records(rec.tobytes()[:-1], "short")
    bad = rec.copy()
    bad[0, 0] = 12
    with pytest.raises(ValueError, match="label 12"):
        glow.read_cifar_records(bad.tobytes(), "bad")
    # the official tar layout is read from memory; a batch of the wrong size is refused
    tar_path = tmp_path / "official" / glow.CIFAR_TAR
    tar_path.parent.mkdir()
    with tarfile.open(tar_path, "w:gz") as tf:
        for name in (*glow.CIFAR_TRAIN, glow.CIFAR_TEST):
            info = tarfile.TarInfo(f"{glow.CIFAR_DIR}/{name}")
            info.size = rec.nbytes
            tf.addfile(info, io.BytesIO(rec.tobytes()))
    with pytest.raises(ValueError, match="3 records, expected 10,000"):
        glow.read_cifar10(tar_path.parent, DataConfig())
    # the python version is never unpickled
    (tmp_path / "py").mkdir()
    (tmp_path / "py" / "cifar-10-python.tar.gz").write_bytes(b"")
    with pytest.raises(ValueError, match="never unpickled"):
        glow.read_cifar10(tmp_path / "py", DataConfig())


@pytest.mark.skipif(not CELEBA_ORIGINALS.is_dir(), reason="offline mirror not present")
def test_celeba_reader_on_original_jpegs():
    from PIL import Image

    ids, x, width = glow.read_celeba_images(CELEBA_ORIGINALS, 32, threads=2)
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
    small = glow.celeba_crop_resize(buf.getvalue(), 16)
    reread = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    ref = np.asarray(reread.crop((0, 10, 89, 99)).resize((16, 16), Image.BILINEAR))
    assert np.array_equal(small, ref.transpose(2, 0, 1))
    # no list_eval_partition.txt: the held-out split is by id
    train, test, meta = glow.read_celeba(CELEBA_ORIGINALS, DataConfig(celeba_subset_test_from=25))
    assert (len(train), len(test)) == (24, 8) and "held out" in meta["test_split"]


def test_celeba_reader_refuses_other_shapes(tmp_path):
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (100, 100)).save(buf, "JPEG")
    with pytest.raises(ValueError, match="not an aligned 178x218"):
        glow.celeba_crop_resize(buf.getvalue(), 32, "x")


# ---------------------------------------------------------------- training


def test_tiny_round_learns_and_resumes_exactly(prepared, tmp_path, monkeypatch):
    # the Glow recipe exercises data-dependent init, LU conv, affine coupling and warm-up
    kw = {"coupling": "affine", "permutation": "invconv", "actnorm": "data",
          "optimiser": "adamax", "warmup_steps": 5, "collapse_guard": False}
    ref = _ctx(prepared, tmp_path / "a", **kw)
    glow.train(ref)
    hist = read_history(ref.out_dir / "history.csv")
    assert [r["epoch"] for r in hist] == [1, 2, 3]
    assert hist[-1]["test_bpd"] < hist[0]["test_bpd"]
    metrics = glow.evaluate(ref)
    assert metrics["test_bpd"] == pytest.approx(hist[-1]["test_bpd"], abs=1e-9)
    assert metrics["steps_run"] == 30 and metrics["epochs_run"] == 3
    assert math.isfinite(metrics["test_bpd"]) and metrics["test_bpd"] > 0
    for t in ("0.7", "0.8", "1"):
        assert (ref.out_dir / "artifacts" / f"samples_T{t}.png").is_file()
    assert not list((tmp_path / "a" / "ckpt").glob("*.pt"))  # cleared at the end

    # kill at step 17 (last checkpoint: step 16), then resume: the same weights and history
    ctx = _ctx(prepared, tmp_path / "b", **kw)
    real = glow.step_generator

    def killing(seed, step):
        if step == 17:
            raise KeyboardInterrupt
        return real(seed, step)

    monkeypatch.setattr(glow, "step_generator", killing)
    inits = []

    def counting(model, x):
        inits.append(flows.data_dependent_init(model, x))
        return inits[-1]

    monkeypatch.setattr(glow, "data_dependent_init", counting)
    with pytest.raises(KeyboardInterrupt):
        glow.train(ctx)
    assert load_torch(tmp_path / "b" / "ckpt" / "last.pt")["step"] == 16
    monkeypatch.setattr(glow, "step_generator", real)
    glow.train(ctx)
    assert len(inits) == 1 and inits[0] > 0  # the resumed run did not redo the init
    a, b = load_torch(ref.out_dir / "model.pt"), load_torch(ctx.out_dir / "model.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert _history(ref.out_dir / "history.csv") == _history(ctx.out_dir / "history.csv")


def test_nan_loss_stops_and_keeps_last_good_checkpoint(prepared, tmp_path, monkeypatch):
    ctx = _ctx(prepared, tmp_path)
    calls = {"n": 0}
    real = glow.Glow.log_prob

    def poisoned(self, x):
        lp = real(self, x)
        if self.training:
            calls["n"] += 1
            if calls["n"] == 7:  # training step 6 (0-based)
                return lp * math.nan
        return lp

    monkeypatch.setattr(glow.Glow, "log_prob", poisoned)
    with pytest.raises(NonFiniteLoss, match=r"at step 6.*last good checkpoint"):
        glow.train(ctx)
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
    guard = glow.CollapseGuard(cfg, model, opt, state, Checkpointer(tmp_path, "t"))
    assert not guard(1, -100.0)
    best = {k: v.clone() for k, v in model.state_dict().items()}
    for epoch, loss in [(2, -50.0), (3, 10.0)]:  # worse; positive but not yet after epoch 3
        with torch.no_grad():
            model.weight.add_(1.0)
        assert not guard(epoch, loss)
    assert opt.param_groups[0]["lr"] == 1e-4
    assert guard(4, 5.0)  # positive loss after the threshold epoch: collapse
    assert all(torch.equal(v, best[k]) for k, v in model.state_dict().items())
    assert opt.param_groups[0]["lr"] == 1e-5 and state["lr"] == 1e-5
    assert state["collapses"] == 1
    assert not guard(5, -200.0)  # a new best is saved, nothing reloaded


def test_collapse_guard_inside_training(prepared, tmp_path, monkeypatch):
    """Fake a positive, worse epoch loss after the threshold: train() reloads and drops lr."""
    ctx = _ctx(prepared, tmp_path, collapse_after=1, epochs=3)
    real = glow.CollapseGuard.__call__
    fake = {1: -10.0, 2: -20.0, 3: 50.0}
    monkeypatch.setattr(glow.CollapseGuard, "__call__",
                        lambda self, epoch, loss: real(self, epoch, fake[epoch]))
    glow.train(ctx)
    hist = read_history(ctx.out_dir / "history.csv")
    assert [r["collapse_guard"] for r in hist] == [0, 0, 1]
    assert [r["lr"] for r in hist] == [1e-3, 1e-3, 1e-5]


# ---------------------------------------------------------------- comparisons


def _metrics(recipe, dataset="cifar10", full=True, profile="full", source="official", depth=32):
    return {"recipe": recipe, "dataset": dataset, "full_dataset": full, "depth": depth,
            "levels": 3, "test_bpd": 3.37, "data_label": dataset, "steps_run": 1,
            "batch_size": 64, "provenance": {"profile": profile, "data_source": source}}


def test_comparisons():
    rows = glow.comparisons({"original": _metrics("original"), "su": _metrics("su")}, "official")
    by = {(r.run, r.published): r for r in rows}
    assert by[("original", 3.35)].status == "within band"
    assert by[("original", 3.39)].status == "within band"
    assert by[("su", 3.49)].status == "not comparable"  # context only
    for m in (_metrics("original", profile="default"), _metrics("original", full=False),
              _metrics("original", dataset="image_patches", source="embedded"),
              _metrics("original", depth=4)):
        assert {r.status for r in glow.comparisons({"original": m}, "x")} == {"not comparable"}
    assert glow.comparisons({"ablation-reverse-additive": _metrics("ablation")}, "x") == []


# ---------------------------------------------------------------- params block

PARAMS_FRAGMENT = Path(__file__).resolve().parents[1] / "workflow" / "params.d" / "glow.yaml"


@pytest.mark.skipif(not PARAMS_FRAGMENT.is_file(), reason="params fragment merged away")
def test_params_block_is_valid_for_every_profile_and_source():
    import yaml

    from kexue import config

    runs = {"su", "original"} | {f"ablation-{p}-{c}" for p in ("reverse", "shuffle", "invconv")
                                 for c in ("additive", "affine")}
    block = yaml.safe_load(PARAMS_FRAGMENT.read_text())
    params = {"profile": "smoke", "data_source": "embedded", "articles": block}
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
                    assert (cfg.permutation, cfg.coupling) == (perm, coupling)
    full = {**params, "profile": "full", "data_source": "official"}
    assert config.run_config(full, "glow", "su") == RunConfig(dataset="celeba")  # spec E1


def test_uniform_model_gives_exactly_8_bits_per_dim():
    class UniformOnCube(torch.nn.Module):  # density 1 on Glow's data cube [-0.5, 0.5)^D
        def log_prob(self, x):
            inside = ((x >= -0.5) & (x < 0.5)).flatten(1).all(1)
            return torch.where(inside, 0.0, -math.inf)

    k = torch.tensor([0, 255, 3, 128], dtype=torch.uint8).repeat(5, 3, 2, 2)[:, :, :2, :2]
    nll = glow.test_nll(UniformOnCube(), k, 256, seed=0, device="cpu")
    assert nll == 0.0 and flows.bits_per_dim(nll, 12, 256) == 8.0
