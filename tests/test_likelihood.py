"""Dequantisation, the test NLL and bits/dim of kexue.metrics.likelihood."""

import math

import pytest
import torch

from conftest import UniformOnCube
from kexue.metrics.likelihood import bits_per_dim, dequantise
from kexue.metrics.likelihood import test_nll as nll_of


def test_bits_per_dim_adds_the_bin_width():
    assert bits_per_dim(0.0, 3072, 256) == 8.0  # the uniform density on [0, 1]^D is 1
    assert bits_per_dim(0.0, 64, 17) == pytest.approx(math.log2(17))
    # D ln 2 nats are one bit per dimension
    assert bits_per_dim(10 * math.log(2), 10, 256) == pytest.approx(9.0)
    t = torch.tensor([0.0, 784 * math.log(2)])
    assert torch.allclose(bits_per_dim(t, 784, 256), torch.tensor([8.0, 9.0]))


def test_dequantise_fills_each_bin_and_stays_in_the_cube():
    k = torch.tensor([0, 1, 255], dtype=torch.uint8)
    assert torch.equal(dequantise(k, torch.zeros(3), 256), k.float() / 256)
    top = dequantise(k, torch.full((3,), 0.999), 256)
    assert torch.all(top < (k.float() + 1) / 256) and top[-1] < 1.0
    centred = dequantise(k, torch.zeros(3), 256, offset=-0.5)
    assert centred[0] == -0.5 and torch.all(centred < 0.5)


def _to_x(offset):
    return lambda k, u: dequantise(k, u if u is not None else torch.zeros(k.shape), 256, offset)


@pytest.mark.parametrize("offset", [0.0, -0.5])
def test_uniform_model_gives_exactly_log2_levels(offset):
    k = torch.tensor([[0, 255, 7, 128]] * 5, dtype=torch.uint8)
    nll = nll_of(UniformOnCube(offset).log_prob, k, _to_x(offset), seed=0, device="cpu",
                   batch=2)
    assert nll == 0.0 and bits_per_dim(nll, 4, 256) == 8.0


def test_a_point_outside_the_cube_is_infinite():
    # the model's cube is [0, 1); centred data in [-0.5, 0.5) fall outside: +inf NLL
    k = torch.zeros(2, 4, dtype=torch.uint8)
    assert nll_of(UniformOnCube(0.0).log_prob, k, _to_x(-0.5), seed=0, device="cpu") == math.inf


class _Gaussian:
    """A log density that depends on x, so that the noise draws show in the NLL."""

    def __call__(self, x):
        return -0.5 * (x**2).sum(1)


def test_noise_is_fixed_by_the_seed_and_independent_of_batching_and_global_rng():
    k = torch.randint(0, 256, (37, 6), generator=torch.Generator().manual_seed(0))
    torch.manual_seed(1)
    a = nll_of(_Gaussian(), k, _to_x(0.0), seed=3, device="cpu", batch=5)
    torch.manual_seed(2)
    b = nll_of(_Gaussian(), k, _to_x(0.0), seed=3, device="cpu", batch=5)
    assert a == b
    assert nll_of(_Gaussian(), k, _to_x(0.0), seed=4, device="cpu", batch=5) != a


def test_no_noise_gives_the_clean_nll():
    k = torch.randint(0, 256, (10, 3), generator=torch.Generator().manual_seed(0))
    nll = nll_of(_Gaussian(), k, _to_x(0.0), seed=0, device="cpu", noise=False)
    expected = (0.5 * (k.double() / 256) ** 2).sum(1).mean().item()
    assert nll == pytest.approx(expected, rel=1e-6)
