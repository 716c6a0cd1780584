import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp

from kexue.metrics.parzen import parzen_evaluation, parzen_log_likelihood


def test_matches_a_brute_force_kde():
    """Against explicit differences and scipy's logsumexp (sklearn's tree KDE is approximate
    far from the samples at narrow widths, so it is no reference here)."""
    g = torch.Generator().manual_seed(0)
    samples, x = torch.rand(300, 20, generator=g), torch.rand(50, 20, generator=g)
    sigmas = [0.1, 0.3, 1.0]
    ours = parzen_log_likelihood(samples, x, sigmas, chunk=16)
    s, q = samples.double().numpy(), x.double().numpy()
    d2 = ((q[:, None, :] - s[None]) ** 2).sum(-1)
    for row, sigma in zip(ours, sigmas):
        expected = (logsumexp(-d2 / (2 * sigma**2), axis=1) - np.log(300)
                    - 10 * np.log(2 * np.pi * sigma**2))
        assert np.allclose(row.numpy(), expected, rtol=1e-10)


def test_images_are_flattened():
    g = torch.Generator().manual_seed(1)
    samples, x = torch.rand(40, 1, 4, 4, generator=g), torch.rand(7, 1, 4, 4, generator=g)
    assert torch.allclose(parzen_log_likelihood(samples, x, [0.2]),
                          parzen_log_likelihood(samples.flatten(1), x.flatten(1), [0.2]))


def test_width_is_chosen_on_validation_and_reported_on_test():
    """Samples from N(0, I_2): the chosen width maximises the validation curve, the test number
    is the mean +- SEM at that width, and a true-density-like width beats the extremes."""
    g = torch.Generator().manual_seed(2)
    samples = torch.randn(2000, 2, generator=g)
    validation, test = torch.randn(500, 2, generator=g), torch.randn(400, 2, generator=g)
    sigmas = [0.01, 0.03, 0.1, 0.3, 1.0, 3.0]
    result = parzen_evaluation(samples, validation, test, sigmas)
    assert result.sigma == sigmas[int(np.argmax(result.validation_means))]
    assert result.sigma in (0.1, 0.3) and not result.at_grid_edge
    test_ll = parzen_log_likelihood(samples, test, [result.sigma])[0]
    assert result.test_mean == pytest.approx(test_ll.mean().item())
    assert result.test_sem == pytest.approx(test_ll.std().item() / math.sqrt(400))
    # the KDE of 2,000 draws is close to the true N(0, I) log-likelihood, -log(2 pi) - 1
    assert result.test_mean == pytest.approx(-math.log(2 * math.pi) - 1, abs=0.1)


def test_grid_edge_is_flagged():
    g = torch.Generator().manual_seed(3)
    samples, val, test = (torch.randn(n, 2, generator=g) for n in (200, 100, 100))
    assert parzen_evaluation(samples, val, test, [1e-3, 2e-3]).at_grid_edge
