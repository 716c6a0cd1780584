"""E2's target and ground truth: quadrature against closed forms, the optimiser against moment
matching, and the chi^2 divergences' finite regions."""

import math

import pytest
import torch

from kexue.articles.fgan.mixture import (
    TARGET,
    Mixture1D,
    divergence_to_gaussian,
    ground_truth,
    sigma_bounds,
)
from kexue.nn.divergences import PAPER, SU


def test_mixture_density_and_sampler_agree():
    x = torch.linspace(-15, 15, 30001, dtype=torch.float64)
    density = TARGET.log_prob(x).exp()
    assert torch.trapezoid(density, x).item() == pytest.approx(1.0, abs=1e-10)
    mean = torch.trapezoid(x * density, x).item()
    assert mean == pytest.approx(0.1, abs=1e-10)  # 0.4 * -2 + 0.6 * 1.5
    draws = TARGET.sample(200_000, torch.Generator().manual_seed(0))
    assert draws.shape == (200_000, 1)
    assert draws.mean().item() == pytest.approx(mean, abs=0.02)
    assert draws.var().item() == pytest.approx(3.64, rel=0.02)


def test_quadrature_matches_gaussian_closed_forms():
    p = Mixture1D(weights=(1.0,), means=(0.3,), stds=(0.8,))
    mu, sigma = -0.5, 1.3
    kl = math.log(sigma / 0.8) + (0.8**2 + (0.3 - mu) ** 2) / (2 * sigma**2) - 0.5
    assert divergence_to_gaussian(SU["kl"], p, mu, sigma).item() == pytest.approx(kl, rel=1e-6)
    bc = math.sqrt(2 * 0.8 * sigma / (0.8**2 + sigma**2)) * math.exp(
        -((0.3 - mu) ** 2) / (4 * (0.8**2 + sigma**2)))
    hellinger = divergence_to_gaussian(PAPER["squared_hellinger"], p, mu, sigma).item()
    assert hellinger == pytest.approx(2 - 2 * bc, rel=1e-6)


def test_kl_ground_truth_is_moment_matching():
    """argmin KL(P||N(mu, sigma^2)) is P's mean and standard deviation."""
    truth = ground_truth(SU["kl"])
    assert truth.mu == pytest.approx(0.1, abs=1e-5)
    assert truth.sigma == pytest.approx(math.sqrt(3.64), abs=1e-5)
    assert not truth.at_bound and truth.stability < 1e-6


def test_gan_and_js_share_their_minimiser():
    """D_GAN = 2 JS - log 4 and the paper's JS is twice Su's: one minimiser, shifted values."""
    js, js_half, gan = (ground_truth(d) for d in (PAPER["js"], SU["js_half"], PAPER["gan"]))
    assert js.mu == pytest.approx(gan.mu, abs=1e-5) == pytest.approx(js_half.mu, abs=1e-5)
    assert gan.divergence == pytest.approx(js.divergence - math.log(4), abs=1e-9)
    assert js.divergence == pytest.approx(2 * js_half.divergence, abs=1e-9)


def test_mode_seeking_ground_truth_is_not_the_moment_match():
    truth = ground_truth(PAPER["chi2_over_u"])  # int q^2/p: sits near the wide component
    assert truth.mu > 1.0 and truth.sigma < 1.2
    low, high = sigma_bounds(PAPER["chi2_over_u"], TARGET)
    assert low < truth.sigma < high and not truth.at_bound


@pytest.mark.parametrize("key,sigma_ok,sigma_infinite", [("chi2", 1.0, 0.6),
                                                        ("chi2_over_u", 1.1, 1.6)])
def test_chi2_divergences_are_infinite_outside_their_bounds(key, sigma_ok, sigma_infinite):
    """Inside the bounds the value does not move when the interval is widened; outside it
    grows with the interval (the integral diverges)."""
    d = PAPER[key]
    low, high = sigma_bounds(d, TARGET)
    assert low < sigma_ok < high and not low < sigma_infinite < high

    def value(sigma, half_width):
        return divergence_to_gaussian(d, TARGET, 0.0, sigma, half_width, 80001).item()

    assert value(sigma_ok, 30) == pytest.approx(value(sigma_ok, 15), rel=1e-9)
    assert value(sigma_infinite, 30) > 1e3 * value(sigma_infinite, 15)
