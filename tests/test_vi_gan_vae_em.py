import itertools

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from kexue.articles.vi_gan.em import (
    fit_em,
    initial_mixture,
    mean_log_likelihood,
    sklearn_log_likelihood,
    synthetic_mixture_data,
)
from kexue.articles.vi_gan.model import VAE
from kexue.articles.vi_gan.vae import gaussian_kl, mean_elbo, negative_elbo

torch.set_num_threads(1)


def test_gaussian_kl_matches_torch_distributions():
    mean, log_var = torch.randn(4, 2), torch.randn(4, 2)
    expected = kl_divergence(Normal(mean, (0.5 * log_var).exp()), Normal(0.0, 1.0)).sum(1)
    assert torch.allclose(gaussian_kl(mean, log_var), expected, atol=1e-6)


def test_negative_elbo_is_cross_entropy_plus_kl():
    torch.manual_seed(0)
    model = VAE(in_features=6, hidden=5, latent_dim=2)
    x, noise = torch.rand(3, 6), torch.randn(3, 2)
    logits, mean, log_var = model(x, noise)
    p = torch.sigmoid(logits)
    bce = -(x * p.log() + (1 - x) * (1 - p).log()).sum(1)
    assert torch.allclose(negative_elbo(model, x, noise), bce + gaussian_kl(mean, log_var),
                          atol=1e-5)


@torch.no_grad()
def test_elbo_bounds_the_exact_log_likelihood_of_binary_data():
    """With binary x and a 1-d latent, log p(x) = log ∫ p(x|z) p(z) dz by quadrature ≥ ELBO."""
    torch.manual_seed(0)
    model = VAE(in_features=4, hidden=8, latent_dim=1)
    x = torch.tensor([[1.0, 0.0, 1.0, 1.0]])
    z = torch.linspace(-8, 8, 4001)[:, None]
    logits = model.decode_logits(z)
    log_px_z = -torch.nn.functional.binary_cross_entropy_with_logits(
        logits, x.expand(len(z), -1), reduction="none").sum(1)
    log_pz = Normal(0.0, 1.0).log_prob(z[:, 0])
    log_px = float(torch.logsumexp(log_px_z + log_pz, 0) + torch.log(z[1] - z[0]))
    elbo = mean_elbo(model, x, torch.Generator().manual_seed(0), samples=2000)
    assert elbo < log_px
    assert log_px - elbo < 5  # a loose bound, not a wrong one


def test_vae_training_raises_the_elbo():
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(256, 16, generator=g) < torch.linspace(0.1, 0.9, 16)).float()
    torch.manual_seed(0)
    model = VAE(in_features=16, hidden=32, latent_dim=2)
    before = mean_elbo(model, x, torch.Generator().manual_seed(1))
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9)
    model.train()
    for _ in range(200):
        loss = negative_elbo(model, x, torch.randn(len(x), 2, generator=g)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert mean_elbo(model, x, torch.Generator().manual_seed(1)) > before + 1


def test_em_increases_the_likelihood_and_matches_sklearn():
    x = synthetic_mixture_data(1500, seed=0)
    init = initial_mixture(x, 3, seed=0)
    mix, history = fit_em(x, init, iterations=60)
    assert all(b >= a - 1e-12 for a, b in itertools.pairwise(history))
    assert history[-1] > history[0] + 0.1
    assert history[-1] == pytest.approx(sklearn_log_likelihood(x, init, 60), abs=1e-3)
    assert history[-1] == pytest.approx(mean_log_likelihood(x, mix))
    found = mix.means[np.argsort(mix.means[:, 0])]
    truth = np.array([[-3.0, 0.0], [2.0, -2.5], [2.0, 2.0]])
    truth = truth[np.argsort(truth[:, 0], kind="stable")]
    assert np.abs(np.sort(found, axis=0) - np.sort(truth, axis=0)).max() < 0.3


def test_em_differs_from_sklearn_when_started_elsewhere():
    """The match is not automatic: a different start after one step gives another value."""
    x = synthetic_mixture_data(500, seed=1)
    a, b = initial_mixture(x, 3, seed=0), initial_mixture(x, 3, seed=5)
    _, history = fit_em(x, a, iterations=1)
    assert abs(history[-1] - sklearn_log_likelihood(x, b, 1)) > 1e-3
