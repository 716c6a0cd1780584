"""The lipschitz article: models, arms, configs, Part A/B training (resumable), claims, data."""

import contextlib
import hashlib
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from conftest import REPO
from kexue import config, stages
from kexue.articles.lipschitz import classifier, gan
from kexue.articles.lipschitz.config import ClassifierConfig, DataConfig, GANConfig, RunConfig
from kexue.articles.lipschitz.data import (
    SPLITS,
    load_classifier_set,
    load_gan_images,
    prepare,
)
from kexue.articles.lipschitz.model import (
    ConvCritic,
    ConvGenerator,
    MLPCritic,
    VGGClassifier,
)
from kexue.articles.lipschitz.published import _verdict
from kexue.articles.lipschitz.summary import curve_band
from kexue.data.embedded import mnist1d, save_npz, sklearn_digits
from kexue.data.registry import get_dataset
from kexue.errors import ConfigError, DataError
from kexue.io import load_torch, write_json
from kexue.training import RunContext

torch.set_num_threads(1)


def sigma(weight):
    return float(torch.linalg.matrix_norm(weight.detach().reshape(weight.shape[0], -1), ord=2))


# ------------------------------------------------------------------------------ models


def test_sn_classifier_starts_as_the_unconstrained_net():
    # σ of every SN layer is held at the layer's He-init value, so at init both nets compute
    # (nearly: PyTorch's σ comes from 15 warm-up iterations) the same function
    torch.manual_seed(0)
    plain = VGGClassifier(1, 10, (8, 16), dims=1)
    torch.manual_seed(0)
    sn = VGGClassifier(1, 10, (8, 16), dims=1, spectral="original")
    sn.eval()
    x = torch.randn(16, 1, 40)
    torch.testing.assert_close(sn(x), plain(x), rtol=0.05, atol=0.05)
    for m_sn, m_plain in zip(sn.net, plain.net):
        if isinstance(m_sn, (nn.Conv1d, nn.Linear)):
            assert sigma(m_sn.weight) == pytest.approx(sigma(m_plain.weight), rel=0.02)


def test_sn_classifier_keeps_sigma_fixed_during_training():
    torch.manual_seed(0)
    net = VGGClassifier(1, 10, (8,), dims=1, spectral="original")
    radii = [float(m.parametrizations.weight[1].radius) for m in net.net
             if isinstance(m, (nn.Conv1d, nn.Linear))]
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    for _ in range(60):  # large steps: the raw weights move a lot, σ of the used ones not
        loss = nn.functional.cross_entropy(net(torch.randn(32, 1, 20)), torch.randint(0, 10, (32,)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    layers = [m for m in net.net if isinstance(m, (nn.Conv1d, nn.Linear))]
    for m, r in zip(layers, radii):
        assert sigma(m.weight) == pytest.approx(r, rel=0.05)


def test_su_critic_is_sus_network():
    critic = ConvCritic(64, 3, (64, 128, 256, 512), spectral="su")
    generator = ConvGenerator(64, 3, (512, 256, 128, 64), latent_dim=100)
    images = generator(torch.randn(2, 100))
    assert images.shape == (2, 3, 64, 64) and images.abs().max().item() <= 1
    assert critic(images).shape == (2,)
    bns = [m for m in critic.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 3 and all(bn.momentum == 0.01 and bn.eps == 1e-3 for bn in bns)
    # γ under Su's SN is γ/‖γ‖₂
    assert all(float(bn.weight.norm()) == pytest.approx(1.0, rel=1e-5) for bn in bns)
    dense = critic.net[-1]
    assert dense.bias is None and sigma(dense.weight) == pytest.approx(1.0, rel=1e-4)
    slopes = {m.negative_slope for m in critic.modules() if isinstance(m, nn.LeakyReLU)}
    assert slopes == {0.3}
    assert list(critic.buffers()) == [b for bn in bns for b in bn.buffers()]  # no SN state


@pytest.mark.parametrize("name", sorted(gan.ARMS))
def test_arms_build_the_critic_they_describe(name):
    arm = gan.get_arm(name)
    critic = MLPCritic(spectral=arm.spectral, batchnorm=arm.batchnorm, slope=arm.slope)
    has_bn = any(isinstance(m, nn.BatchNorm1d) for m in critic.modules())
    has_sn = any(hasattr(m, "parametrizations") for m in critic.modules())
    assert has_bn == arm.batchnorm and has_sn == (arm.spectral is not None)
    assert arm.schedule.d_steps == (1 if name == "dcgan-sn" else 5)
    if name == "wgan-sn-original":
        assert not has_bn and arm.slope == 0.1 and arm.spectral == "original"


def test_penalised_loss_replays_its_interpolation_draws():
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
    real, fake = torch.randn(16, 2), torch.randn(16, 2)
    loss = gan.PenalisedCriticLoss(10.0, one_sided=False)
    loss.rng = torch.Generator().manual_seed(5)
    first = loss(critic, real, fake).item()
    loss.rng = torch.Generator().manual_seed(5)
    assert loss(critic, real, fake).item() == first
    loss.rng = torch.Generator().manual_seed(6)
    assert loss(critic, real, fake).item() != first


def test_critic_lipschitz_of_a_linear_critic():
    critic = nn.Sequential(nn.Linear(3, 1), nn.Flatten(0))
    out = gan.critic_lipschitz(critic, torch.randn(10, 3), torch.randn(10, 3),
                               torch.Generator().manual_seed(0))
    w = float(critic[0].weight.norm())
    assert out["lipschitz_real"] == pytest.approx(w, rel=1e-5)
    assert out["lipschitz_max"] == pytest.approx(w, rel=1e-5)


# ------------------------------------------------------------------------------ configs


def test_lambda_rules():
    with pytest.raises(ConfigError, match="needs a λ grid"):
        config.build(RunConfig, {"part": "A", "classifier": {"arm": "snr"}}, "run")
    with pytest.raises(ConfigError, match="takes no λ"):
        config.build(RunConfig, {"part": "A", "classifier": {"arm": "sn", "lambdas": [0.1]}},
                     "run")
    with pytest.raises(ConfigError, match="gan.iterations"):
        config.build(RunConfig, {"part": "B", "gan": {"iterations": {}}}, "run")
    with pytest.raises(ConfigError, match="gan.iterations"):
        config.build(RunConfig, {"part": "B", "gan": {"iterations": {"ring": 0}}}, "run")
    # 0 drops a dataset (how the official block swaps the digits for CelebA)
    cfg = config.build(RunConfig, {"part": "B", "gan": {"iterations": {"ring": 5, "digits": 0,
                                                                      "celeba": 9}}}, "run")
    assert cfg.gan.datasets == ("ring", "celeba")
    with pytest.raises(ConfigError, match="arm"):
        config.build(RunConfig, {"gan": {"arm": "wgan-clip"}}, "run")


def test_learning_rate_schedule():
    cfg = ClassifierConfig(lr=0.1)
    assert classifier.learning_rate(cfg, 256, 0, 100) == pytest.approx(0.1)
    assert classifier.learning_rate(cfg, 256, 50, 100) == pytest.approx(0.05)
    assert classifier.learning_rate(cfg, 256, 100, 100) == pytest.approx(0.0, abs=1e-12)
    scaled = ClassifierConfig(lr=0.1, lr_scaling="linear", base_batch=64)
    assert classifier.learning_rate(scaled, 256, 0, 100) == pytest.approx(0.4)


def test_verdicts():
    assert _verdict([0.9, 0.91, 0.92], [0.8, 0.81, 0.79], a_better=True) == "supported"
    assert _verdict([0.8, 0.81, 0.79], [0.9, 0.91, 0.92], a_better=True) == "contradicted"
    assert _verdict([0.8, 0.9, 0.7], [0.81, 0.71, 0.9], a_better=True).startswith("inconclusive")
    assert _verdict([1.0, 1.1], [2.0, 2.1], a_better=False) == "supported"  # lower is better


def test_curve_band():
    h = [[{"iteration": 10, "t": 1.0, "fid": 5.0}], [{"iteration": 10, "t": 3.0, "fid": 7.0}]]
    xs, m, sd = curve_band(h, "t", "fid")
    assert xs == [2.0] and m == [6.0] and sd[0] == pytest.approx(math.sqrt(2))
    xs, m, sd = curve_band(h[:1], "t", "fid")  # one seed: no band
    assert m == [5.0] and sd == [0.0]


# ------------------------------------------------------------------------------ training


@pytest.fixture(scope="module")
def prepared_root(tmp_path_factory):
    """A scratch repository root: the generated data, the DAG's shared digits feature network
    of the smoke profile, and the prepared data in processed/."""
    root = tmp_path_factory.mktemp("lipschitz")
    raw = {"mnist1d": root / "data/raw/mnist1d", "digits": root / "data/raw/digits"}
    for name, generate in (("mnist1d", mnist1d), ("digits", sklearn_digits)):
        raw[name].mkdir(parents=True)
        generate(raw[name])
    params = {**config.load_params(REPO / "params.yaml"), "profile": "smoke",
              "data_source": "embedded"}
    with contextlib.chdir(root):
        stages.features(params, "digits", threads=1)
    out = root / "processed"
    out.mkdir()
    prepare(DataConfig(part_a=("mnist1d", "digits"), part_b=("digits",), max_train=300), raw,
            out, "embedded")
    return root


@pytest.fixture
def data_dir(prepared_root, monkeypatch) -> Path:
    monkeypatch.chdir(prepared_root)  # where the runs look for data/features/...
    return prepared_root / "processed"


def context(tmp: Path, data_dir: Path, cfg: RunConfig, run: str) -> RunContext:
    return RunContext(article="lipschitz", run=run, seed=cfg.seed, cfg=cfg, data_cfg=DataConfig(),
                      data_dir=data_dir, out_dir=tmp / "out" / run, ckpt_dir=tmp / "ckpt" / run,
                      device=torch.device("cpu"), profile="smoke", source="embedded")


def digest(state: dict) -> str:
    h = hashlib.sha256()
    for key in sorted(state):
        value = state[key]
        if isinstance(value, dict):
            h.update(digest(value).encode())
        elif isinstance(value, torch.Tensor):
            h.update(value.numpy().tobytes())
        else:
            h.update(repr(value).encode())
    return h.hexdigest()


class Killed(Exception):
    pass


def train_killed_then_resumed(monkeypatch, ctx, train_fn, kill_at: int):
    """Run ``train_fn`` with a kill at call ``kill_at`` of the step function, then again."""
    from kexue import training

    real_fit = training.fit
    calls = {"n": 0}

    def killing_fit(**kw):
        inner = kw["train_step"]

        def step(i):
            calls["n"] += 1
            if calls["n"] == kill_at:
                raise Killed
            return inner(i)

        return real_fit(**{**kw, "train_step": step})

    monkeypatch.setattr(training, "fit", killing_fit)
    with pytest.raises(Killed):
        train_fn(ctx)
    monkeypatch.setattr(training, "fit", real_fit)
    train_fn(ctx)


@pytest.mark.parametrize("run", ["A-snr", "B-wgan-gp", "B-wgan-sn-original"])
def test_training_resumes_bit_identically(tmp_path, data_dir, monkeypatch, run):
    from kexue.articles.lipschitz.train import train

    if run.startswith("A"):
        cfg = RunConfig(part="A", checkpoint_every=2, classifier=ClassifierConfig(
            arm="snr", datasets=("mnist1d",), batch_sizes=(64, 128), lambdas=(0.01, 0.1),
            epochs=2, widths=(4, 8)))
    else:
        cfg = RunConfig(part="B", checkpoint_every=3, gan=GANConfig(
            arm=run.removeprefix("B-"), iterations={"ring": 8, "digits": 4}, lr=1e-3,
            critic_widths=(8, 16), generator_widths=(16, 8), latent_dim=8, eval_every=4,
            eval_samples=200, lipschitz_points=64))
    straight = context(tmp_path / "a", data_dir, cfg, run)
    train(straight)
    resumed = context(tmp_path / "b", data_dir, cfg, run)
    train_killed_then_resumed(monkeypatch, resumed, train, kill_at=11)
    a = load_torch(straight.out_dir / "model.pt")
    b = load_torch(resumed.out_dir / "model.pt")
    assert digest(a) == digest(b)
    assert not any(straight.ckpt_dir.rglob("*.pt"))  # every stage's checkpoints cleared


def test_part_a_learns_and_measures(tmp_path, data_dir):
    from kexue.articles.lipschitz.evaluate import evaluate
    from kexue.articles.lipschitz.train import train

    cfg = RunConfig(part="A", classifier=ClassifierConfig(
        arm="weight_decay", datasets=("digits",), batch_sizes=(32,), lambdas=(1e-4, 5e-4),
        epochs=8, widths=(8, 16)))
    ctx = context(tmp_path, data_dir, cfg, "A-weight_decay")
    train(ctx)
    m = evaluate(ctx)
    assert m["digits_test_acc_b32"] > 0.5  # 10 classes: chance is 0.1
    assert m["digits_lam_b32"] in (1e-4, 5e-4)
    assert 0 < m["digits_lipschitz_lower_b32"] <= m["digits_lipschitz_bound_b32"]
    assert m["digits_lipschitz_proxy_b32"] < m["digits_lipschitz_bound_b32"]
    assert (ctx.artifacts / "layer_norms_digits.png").is_file()


def test_part_b_records_curves_and_seconds(tmp_path, data_dir):
    from kexue.articles.lipschitz.evaluate import evaluate
    from kexue.articles.lipschitz.train import train

    cfg = RunConfig(part="B", gan=GANConfig(
        arm="wgan-sn-su", iterations={"ring": 6, "digits": 4}, critic_widths=(8, 16),
        generator_widths=(16, 8), latent_dim=8, eval_every=2, eval_samples=200,
        lipschitz_points=64))
    ctx = context(tmp_path, data_dir, cfg, "B-wgan-sn-su")
    train(ctx)
    m = evaluate(ctx)
    assert m["ring_iterations"] == 6 and m["ring_seconds_per_iteration"] > 0
    assert m["digits_fid"] > 0 and 0 <= m["ring_high_quality"] <= 1
    # the floor (real test vs training images) is far below 4 iterations' samples
    assert 0 < m["digits_fid_floor"] < m["digits_fid"] / 10
    assert "ring_fid_floor" not in m
    assert m["digits_lipschitz_max"] >= m["digits_lipschitz_real"] > 0
    assert (ctx.artifacts / "samples_digits.png").is_file()
    assert (ctx.artifacts / "samples_ring.png").is_file()


# ------------------------------------------------------------------------------ data


def test_fashion_mnist_is_registered_with_the_official_checksums(shared_datasets):
    ds = get_dataset("fashion-mnist")
    assert ds.reader == "idx"
    sums = dict(line.split()[::-1] for line in
                (shared_datasets / "fashion-mnist" / "SHA256SUMS").read_text().splitlines())
    assert {f.name: f.sha256 for f in ds.files} == sums
    for f in ds.files:
        data = (shared_datasets / "fashion-mnist" / f.name).read_bytes()
        assert hashlib.md5(data).hexdigest() == f.md5 and len(data) == f.size


def test_fashion_mnist_prepares_from_the_mirror(tmp_path, shared_datasets):
    from kexue.data.fetch import fetch_dataset

    raw = tmp_path / "raw" / "fashion-mnist"
    fetch_dataset("fashion-mnist", raw, mirror=str(shared_datasets), progress=False)
    out = tmp_path / "processed"
    out.mkdir()
    prepare(DataConfig(part_a=("fashion-mnist",), part_b=(), max_train=1000),
            {"fashion-mnist": raw}, out, "official")
    d = np.load(out / "a_fashion-mnist.npz", allow_pickle=False)
    assert d["x_train"].shape == (1000, 1, 28, 28) and d["x_test"].shape == (10000, 1, 28, 28)
    assert d["x_val"].shape == (6000, 1, 28, 28)
    assert abs(float(d["x_train"].mean())) < 0.05  # standardised on the training split
    assert sorted(np.unique(d["y_test"])) == list(range(10))


F32 = np.zeros((3, 1, 4, 4), np.float32)
I64 = np.zeros(3, np.int64)


def _write_meta(folder: Path) -> None:
    write_json(folder / "data.json", {"part_a": {"mnist1d": {"shape": [1, 40]}},
                                      "part_b": {"digits": {"shape": [1, 8, 8]}}})


@pytest.mark.faults("Broken/hostile input: npz")
@pytest.mark.parametrize("name, write, read, problem", [
    ("mnist1d.npz",
     lambda p: save_npz(p, x_train=np.zeros((3, 40), np.int64), y_train=I64,
                        x_test=np.zeros((3, 40), np.float32), y_test=I64),
     lambda d: prepare(DataConfig(part_a=("mnist1d",), part_b=()), {"mnist1d": d}, d / "out",
                       "embedded"),
     "x_train is int64 of shape \\(3, 40\\); expected 2 dimensions of dtype kind f"),
    ("a_mnist1d.npz",
     lambda p: save_npz(p, **{f"x_{s}": np.zeros((3, 40), np.float32) for s in SPLITS},
                        **{f"y_{s}": I64 for s in SPLITS}),
     lambda d: load_classifier_set(d, "mnist1d"),
     "x_train is float32 of shape \\(3, 40\\); expected 3 dimensions"),
    ("b_digits.npz",
     lambda p: save_npz(p, train=F32, test=F32) or p.write_bytes(p.read_bytes()[:-40]),
     lambda d: load_gan_images(d, "digits"), "not a valid .npz file"),
    ("b_digits.npz", lambda p: save_npz(p, train=F32.astype(np.uint8), test=F32),
     lambda d: load_gan_images(d, "digits"), "train is uint8 .* dtype kind f"),
], ids=["raw mnist1d wrong dtype", "prepared part A wrong shape", "prepared part B truncated",
        "prepared part B wrong dtype"])
def test_a_broken_npz_is_named(tmp_path, name, write, read, problem):
    """Raw and prepared arrays are read through load_npz: a broken one is a one-line DataError
    naming the file and the member."""
    _write_meta(tmp_path)
    write(tmp_path / name)
    with pytest.raises(DataError, match=rf"^{re.escape(str(tmp_path / name))}: {problem}") as err:
        read(tmp_path)
    assert "\n" not in str(err.value)
