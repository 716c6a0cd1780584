"""NICE maths: invertibility, log-determinant against autograd, bits/dim, the article's size."""

import dataclasses
import math

import pytest
import torch

import kexue.articles.nice.train as nice_train
from conftest import Killed, UniformOnCube, without_wall_time
from kexue.articles.nice.config import DataConfig, NiceModel, RunConfig
from kexue.articles.nice.data import load_prepared, prepare, to_unit
from kexue.articles.nice.evaluate import evaluate
from kexue.articles.nice.model import Nice, build_model
from kexue.articles.nice.train import nll, train
from kexue.data.embedded import sklearn_digits
from kexue.io import load_torch
from kexue.metrics.likelihood import bits_per_dim
from kexue.nn.flows import (
    AdditiveCoupling,
    FlowSequential,
    gaussian_log_prob,
    logistic_log_prob,
)
from kexue.training import Checkpointer, RunContext, read_history


def _model(recipe, dims=16, hidden=8):
    torch.manual_seed(0)
    model = Nice(dims, 4, hidden, 2, recipe, 0.05).double()
    for p in model.parameters():  # non-trivial weights everywhere, so the test can fail
        torch.nn.init.normal_(p, std=0.3)
    return model


@pytest.mark.parametrize("recipe", ["su", "original"])
def test_reverse_inverts_forward(recipe):
    model = _model(recipe)
    x = torch.rand(5, 16, dtype=torch.float64)
    z, _ = model(x)
    assert torch.allclose(model.reverse(z), x, atol=1e-5)
    assert not torch.allclose(z, x)


@pytest.mark.parametrize("recipe", ["su", "original"])
def test_logdet_matches_autograd_jacobian(recipe):
    model = _model(recipe)
    x = torch.rand(1, 16, dtype=torch.float64)
    _, logdet = model(x)
    jac = torch.autograd.functional.jacobian(lambda v: model(v.unsqueeze(0))[0][0], x[0])
    assert torch.allclose(logdet[0], torch.linalg.slogdet(jac)[1], atol=1e-8)


def test_su_coupling_subtracts_relu_net_in_the_encoder():
    model = _model("su")
    coupling = model.flow[1]  # on the model's deinterleaved layout: contiguous halves
    x = torch.rand(2, 16, dtype=torch.float64)
    y, _ = coupling(x)
    m = coupling.net(x[:, :8])
    assert (m >= 0).all()  # ReLU on the net's output is part of Su's recipe
    assert torch.allclose(y[:, 8:], x[:, 8:] - m)
    assert torch.equal(y[:, :8], x[:, :8])


def _even_odd_flow(model: Nice) -> FlowSequential:
    """The model as Su wrote it: reverse, then split the dims even/odd, before every coupling."""
    layers = []
    for layer in list(model.flow)[:-1]:
        if isinstance(layer, AdditiveCoupling):
            layer = AdditiveCoupling(layer.net, "interleave", layer.sign)
        layers.append(layer)
    return FlowSequential(*layers, model.flow[-1])


@pytest.mark.parametrize("recipe", ["su", "original"])
def test_contiguous_layout_is_the_even_odd_flow_bit_for_bit(recipe):
    torch.manual_seed(0)
    model = Nice(784, 4, 64, 2, recipe, 0.05)  # float32, the article's dims
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.1)
    reference = _even_odd_flow(model)
    x = torch.rand(32, 784)
    z, logdet = model(x)
    z_ref, logdet_ref = reference(x)
    assert torch.equal(z, z_ref) and torch.equal(logdet, logdet_ref)
    assert not torch.allclose(z, x * model.flow[-1].log_scale.exp())  # the couplings act
    assert torch.equal(model.reverse(z), reference.reverse(z))
    # and so are the gradients of the loss
    grads = torch.autograd.grad(model.log_prob(x).mean(), list(model.parameters()))
    z_ref, logdet_ref = reference(x)
    ref_loss = (gaussian_log_prob(z_ref) if recipe == "su" else logistic_log_prob(z_ref))
    ref_grads = torch.autograd.grad((ref_loss + logdet_ref).mean(), list(model.parameters()))
    assert all(torch.equal(g, r) for g, r in zip(grads, ref_grads))


def test_odd_dims_are_refused():
    with pytest.raises(ValueError, match="odd"):
        Nice(15, 4, 8, 2, "su", 0.05)


def test_uniform_model_gives_exactly_8_bits_per_dim():
    # Through the evaluation path: the dequantisation must keep every test point in the cube
    # (k/255 + u/256 would not) and bits_per_dim must add log2(256) for the bin width.
    k = torch.tensor([[0, 255, 7, 128]] * 3, dtype=torch.uint8)
    value = nll(UniformOnCube(), k, 256, RunConfig(recipe="original"), "cpu")
    assert value == 0.0 and bits_per_dim(value, 4, 256) == 8.0
    # su evaluates the clean k/255: 255 lands on 1.0, outside [0, 1), so the check can fail
    assert nll(UniformOnCube(), k, 256, RunConfig(recipe="su"), "cpu") == math.inf


def test_paper_numbers_are_consistent():
    # 1980.50 nats of log-likelihood on MNIST <=> 4.36 bits/dim (spec §6)
    assert bits_per_dim(-1980.50, 784, 256) == pytest.approx(4.36, abs=0.005)
    # Su's -2200 loss -> NLL -1479.6 nats -> 5.28 bits/dim on the 8-bit scale
    nll = -2200 + 392 * math.log(2 * math.pi)
    assert bits_per_dim(nll, 784, 256) == pytest.approx(5.28, abs=0.005)


def test_priors_are_normalised_densities():
    z = torch.linspace(-30, 30, 200001, dtype=torch.float64).unsqueeze(1)
    dz = z[1, 0] - z[0, 0]
    for log_prob in (gaussian_log_prob, logistic_log_prob):
        assert (log_prob(z).exp().sum() * dz).item() == pytest.approx(1.0, abs=1e-6)
    assert torch.isfinite(logistic_log_prob(torch.tensor([[1e4, -1e4]]))).all()


def test_article_model_has_19_158_352_parameters():
    model = build_model(784, RunConfig())
    assert sum(p.numel() for p in model.parameters()) == 19_158_352


def test_dequantisation_recipes():
    k = torch.tensor([[0, 255]])
    assert torch.equal(to_unit(k, 256, "su", None), torch.tensor([[0.0, 1.0]]))
    noisy = to_unit(k, 256, "su", torch.tensor([[0.01, 0.0]]))
    assert noisy[0, 0] == pytest.approx(-0.01)  # Su's noise is negative
    u = torch.tensor([[0.0, 0.999]])
    assert torch.allclose(to_unit(k, 256, "original", u), (k + u) / 256)


def _digits_context(tmp_path, run_dir, epochs=3):
    raw, processed = tmp_path / "raw", tmp_path / "processed"
    if not processed.exists():
        raw.mkdir()
        processed.mkdir()  # the stage creates the output folder
        sklearn_digits(raw)
        prepare(DataConfig(max_train=256), {"digits": raw}, processed, "embedded")
    cfg = RunConfig(recipe="original", model=NiceModel(hidden=32, depth=2), batch_size=64,
                    epochs=epochs, checkpoint_every=3, n_samples=16)
    return RunContext("nice", "original", 0, cfg, DataConfig(), processed, tmp_path / run_dir,
                      tmp_path / run_dir / "ckpt", torch.device("cpu"), "smoke", "embedded")


def test_training_learns_and_ships_the_best_validation_epoch(tmp_path):
    ctx = _digits_context(tmp_path, "run", epochs=4)
    train(ctx)
    history = read_history(ctx.out_dir / "history.csv")
    assert [r["epoch"] for r in history] == [1, 2, 3, 4]
    assert history[-1]["val_nll"] < history[0]["val_nll"]  # it learns
    assert not list(ctx.ckpt_dir.glob("*.pt"))  # checkpoints cleared after success
    # the shipped weights are those of the best validation epoch: they reproduce its score
    best = min(history, key=lambda r: (r["val_nll"], -r["epoch"]))
    model = build_model(64, ctx.cfg)
    model.load_state_dict(load_torch(ctx.out_dir / "model.pt"))
    x_val, meta = load_prepared(ctx.data_dir, "val")
    assert nll(model, x_val, meta["n_levels"], ctx.cfg, "cpu") == pytest.approx(
        best["val_nll"], rel=1e-6)
    metrics = evaluate(ctx)
    assert metrics["best_epoch"] == best["epoch"] and metrics["val_nll_nats"] == best["val_nll"]
    x_test, _ = load_prepared(ctx.data_dir, "test")
    assert metrics["n_test"] == len(x_test) and metrics["complete_data"] is False
    assert metrics["test_bpd"] == pytest.approx(bits_per_dim(metrics["test_nll_nats"], 64, 17))
    assert math.isfinite(metrics["test_bpd"])
    assert metrics["precision"] == metrics["effective_precision"] == "fp32"  # the default
    from PIL import Image

    # 16 samples of 8x8: a 4x4 grid with 1-pixel borders (37 px), upscaled 12x
    assert Image.open(ctx.artifacts / "samples.png").size == (444, 444)


def test_killed_training_resumes_to_the_same_model(tmp_path, monkeypatch):
    reference = _digits_context(tmp_path, "reference")
    train(reference)

    saves, real_save = [], Checkpointer.save

    def save_then_die(self, state, name="last"):
        real_save(self, state, name)
        saves.append(name)
        if saves.count("last") == 2:  # killed right after the second checkpoint
            raise Killed

    killed = _digits_context(tmp_path, "killed")
    monkeypatch.setattr(Checkpointer, "save", save_then_die)
    with pytest.raises(Killed):
        train(killed)
    monkeypatch.setattr(Checkpointer, "save", real_save)
    assert load_torch(killed.ckpt_dir / "last.pt")["step"] == 4  # 3 (every 3), then 4 (epoch)
    train(killed)

    a, b = (load_torch(c.out_dir / "model.pt") for c in (reference, killed))
    assert all(torch.equal(a[k], b[k]) for k in a)
    history = [read_history(c.out_dir / "history.csv") for c in (reference, killed)]
    assert without_wall_time(history[0]) == without_wall_time(history[1])


def test_precision_is_the_configs_and_only_cuda_runs_bf16(tmp_path, monkeypatch):
    ctx = _digits_context(tmp_path, "bf16", epochs=1)
    ctx.cfg = dataclasses.replace(ctx.cfg, precision="bf16")
    asked, real_autocast = [], nice_train.autocast

    def recording_autocast(device, precision):
        asked.append(precision)
        return real_autocast(device, precision)

    monkeypatch.setattr(nice_train, "autocast", recording_autocast)
    train(ctx)
    assert asked and set(asked) == {"bf16"}  # every training forward pass
    metrics = evaluate(ctx)
    assert (metrics["precision"], metrics["effective_precision"]) == ("bf16", "fp32")  # CPU
