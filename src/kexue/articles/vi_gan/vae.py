"""The VAE objective of the article: E_x[−log q(x|z) + KL(p(z|x) ‖ q(z))], i.e. the negative ELBO.

For inputs in [0, 1] that are not binary (MNIST /255, digits /16) the Bernoulli "likelihood"
is a cross-entropy against soft targets, so the ELBO is not a bound on a discrete likelihood:
the report says so.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from kexue.articles.vi_gan.model import VAE


def gaussian_kl(mean: Tensor, log_var: Tensor) -> Tensor:
    """KL(N(μ, diag σ²) ‖ N(0, I)) per example, in nats."""
    return 0.5 * (mean.square() + log_var.exp() - 1.0 - log_var).sum(dim=1)


def negative_elbo(model: VAE, x: Tensor, noise: Tensor) -> Tensor:
    """Σ BCE + analytic KL per example (Su's vae_keras loss), with one reparameterised z."""
    logits, mean, log_var = model(x, noise)
    reconstruction = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=1)
    return reconstruction + gaussian_kl(mean, log_var)


@torch.no_grad()
def mean_elbo(model: VAE, x: Tensor, generator: torch.Generator, samples: int = 10,
              batch_size: int = 1000) -> float:
    """Mean ELBO per example in nats, averaged over ``samples`` draws of z per example."""
    model.eval()
    total = 0.0
    for chunk in x.split(batch_size):
        for _ in range(samples):
            noise = torch.randn(len(chunk), model.mean.out_features, generator=generator)
            total -= float(negative_elbo(model, chunk, noise.to(chunk.device)).sum())
    return total / (len(x) * samples)
