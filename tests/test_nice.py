"""NICE maths: invertibility, log-determinant against autograd, bits/dim, the article's size."""

import math

import pytest
import torch

from kexue.articles import nice
from kexue.articles.nice import Nice, RunConfig, to_unit
from kexue.nn.flows import bits_per_dim, gaussian_log_prob, logistic_log_prob


def _model(recipe, dims=16, hidden=8):
    torch.manual_seed(0)
    model = Nice(dims, RunConfig(recipe=recipe, hidden=hidden, depth=2)).double()
    for p in model.parameters():  # non-trivial weights everywhere, so the test can fail
        torch.nn.init.normal_(p, std=0.3)
    return model


@pytest.mark.parametrize("recipe", ["su", "original"])
def test_reverse_inverts_forward(recipe):
    model = _model(recipe)
    x = torch.rand(5, 16, dtype=torch.float64)
    z, _ = model.flow(x)
    assert torch.allclose(model.flow.reverse(z), x, atol=1e-5)
    assert not torch.allclose(z, x)


@pytest.mark.parametrize("recipe", ["su", "original"])
def test_logdet_matches_autograd_jacobian(recipe):
    model = _model(recipe)
    x = torch.rand(1, 16, dtype=torch.float64)
    _, logdet = model.flow(x)
    jac = torch.autograd.functional.jacobian(lambda v: model.flow(v.unsqueeze(0))[0][0], x[0])
    assert torch.allclose(logdet[0], torch.linalg.slogdet(jac)[1], atol=1e-8)


def test_su_coupling_subtracts_relu_net_in_the_encoder():
    model = _model("su")
    coupling = model.flow[1]
    x = torch.rand(2, 16, dtype=torch.float64)
    y, _ = coupling(x)
    m = coupling.net(x[:, 0::2])
    assert (m >= 0).all()  # ReLU on the net's output is part of Su's recipe
    assert torch.allclose(y[:, 1::2], x[:, 1::2] - m)
    assert torch.equal(y[:, 0::2], x[:, 0::2])


class UniformOnCube(torch.nn.Module):
    """Density 1 on [lo, lo + 1)^D, 0 outside: a dequantised point outside the cube gives inf."""

    def __init__(self, lo: float = 0.0):
        super().__init__()
        self.lo = lo

    def log_prob(self, x):
        inside = ((x >= self.lo) & (x < self.lo + 1)).flatten(1).all(1)
        return torch.where(inside, 0.0, -math.inf)


def test_uniform_model_gives_exactly_8_bits_per_dim():
    # Through the evaluation path: the dequantisation must keep every test point in the cube
    # (k/255 + u/256 would not) and bits_per_dim must add log2(256) for the bin width.
    k = torch.tensor([[0, 255, 7, 128]] * 3, dtype=torch.uint8)
    nll = nice.test_nll(UniformOnCube(), k, {"n_levels": 256}, RunConfig(recipe="original"), "cpu")
    assert nll == 0.0 and bits_per_dim(nll, 4, 256) == 8.0
    assert bits_per_dim(0.0, 64, 17) == pytest.approx(math.log2(17))


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
    model = Nice(784, RunConfig())
    assert sum(p.numel() for p in model.parameters()) == 19_158_352


def test_dequantisation_recipes():
    k = torch.tensor([[0, 255]])
    assert torch.equal(to_unit(k, 256, "su", None), torch.tensor([[0.0, 1.0]]))
    noisy = to_unit(k, 256, "su", torch.tensor([[0.01, 0.0]]))
    assert noisy[0, 0] == pytest.approx(-0.01)  # Su's noise is negative
    u = torch.tensor([[0.0, 0.999]])
    assert torch.allclose(to_unit(k, 256, "original", u), (k + u) / 256)


class _Killed(BaseException):
    pass


def _digits_context(tmp_path, run_dir):
    from kexue.articles import nice
    from kexue.data.embedded import sklearn_digits
    from kexue.training import RunContext

    raw, processed = tmp_path / "raw", tmp_path / "processed"
    if not processed.exists():
        raw.mkdir()
        sklearn_digits(raw)
        nice.prepare(nice.DataConfig(max_train=256), {"digits": raw}, processed, "embedded")
    cfg = RunConfig(recipe="original", hidden=32, depth=2, batch_size=64, epochs=3,
                    checkpoint_every=3, n_samples=16)
    return RunContext("nice", "original", cfg, nice.DataConfig(), processed, tmp_path / run_dir,
                      tmp_path / run_dir / "ckpt", torch.device("cpu"), "smoke", "embedded")


def test_killed_training_resumes_to_the_same_model_and_learns(tmp_path, monkeypatch):
    from kexue.articles import nice
    from kexue.io import load_torch
    from kexue.training import Checkpointer, read_history

    reference = _digits_context(tmp_path, "reference")
    nice.train(reference)

    saves, real_save = [], Checkpointer.save

    def save_then_die(self, state, name="last"):
        real_save(self, state, name)
        saves.append(name)
        if saves.count("last") == 2:  # killed right after the second checkpoint (step 4)
            raise _Killed

    killed = _digits_context(tmp_path, "killed")
    monkeypatch.setattr(Checkpointer, "save", save_then_die)
    with pytest.raises(_Killed):
        nice.train(killed)
    monkeypatch.setattr(Checkpointer, "save", real_save)
    assert load_torch(killed.ckpt_dir / "last.pt")["step"] == 4  # 3 (every 3), then 4 (epoch)
    nice.train(killed)

    a, b = (load_torch(c.out_dir / "model.pt") for c in (reference, killed))
    assert all(torch.equal(a[k], b[k]) for k in a)
    history = read_history(reference.out_dir / "history.csv")
    assert history[-1]["val_nll"] < history[0]["val_nll"]  # it learns
    assert not list(killed.ckpt_dir.glob("*.pt"))  # checkpoints cleared after success
    metrics = nice.evaluate(reference)
    # original ships the last weights, evaluated with the same fixed dequantisation noise
    assert metrics["test_bpd"] == pytest.approx(history[-1]["val_bpd"], rel=1e-6)
    assert (reference.out_dir / "artifacts" / "samples.png").exists()
