"""Parzen-window (Gaussian KDE) log-likelihood of held-out data under a generator's samples, the
metric of the GAN and f-GAN papers' MNIST tables:

    log p(x) = logsumexp_j[-||x - s_j||^2 / (2 sigma^2)] - log N - (D/2) log(2 pi sigma^2),

s_1..s_N the generated samples. The isotropic width sigma is chosen on a validation split (never
on the test split) by maximising the mean validation log-likelihood over a grid. A weak and
biased metric: it depends strongly on sigma and N; differences below the SEM mean nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor


def _squared_distances(x: Tensor, samples: Tensor) -> Tensor:
    d = (x * x).sum(1, keepdim=True) - 2 * x @ samples.T + (samples * samples).sum(1)
    return d.clamp_min(0)


@torch.no_grad()
def parzen_log_likelihood(samples: Tensor, x: Tensor, sigmas: Sequence[float],
                          chunk: int = 256) -> Tensor:
    """Per-point log p(x) for every width: (len(sigmas), len(x)) in float64. Inputs are
    flattened to (n, D); distances are computed once per chunk of x for all widths."""
    samples = samples.flatten(1).double()
    x = x.flatten(1).to(samples)
    n, dim = samples.shape
    sig = torch.as_tensor(sigmas, dtype=torch.float64, device=samples.device)
    norm = math.log(n) + 0.5 * dim * torch.log(2 * math.pi * sig**2)
    out = []
    for part in x.split(chunk):
        d2 = _squared_distances(part, samples)
        out.append(torch.stack([torch.logsumexp(-d2 / (2 * s * s), dim=1) for s in sig])
                   - norm[:, None])
    return torch.cat(out, dim=1).cpu()


@dataclass(frozen=True)
class ParzenResult:
    sigma: float  # the width chosen on validation
    test_mean: float  # mean test log-likelihood, nats
    test_sem: float  # its standard error, std / sqrt(n)
    sigmas: tuple[float, ...]
    validation_means: tuple[float, ...]  # the selection curve
    at_grid_edge: bool  # the best width is an end of the grid: widen the grid

    def as_dict(self, prefix: str = "parzen_") -> dict[str, float]:
        return {f"{prefix}ll": self.test_mean, f"{prefix}sem": self.test_sem,
                f"{prefix}sigma": self.sigma}


def parzen_evaluation(samples: Tensor, validation: Tensor, test: Tensor,
                      sigmas: Sequence[float]) -> ParzenResult:
    """Choose sigma on ``validation``, then report the test mean +- SEM at that sigma."""
    sigmas = tuple(float(s) for s in sigmas)
    val = parzen_log_likelihood(samples, validation, sigmas).mean(dim=1)
    best = int(val.argmax())
    test_ll = parzen_log_likelihood(samples, test, [sigmas[best]])[0]
    return ParzenResult(
        sigma=sigmas[best], test_mean=float(test_ll.mean()),
        test_sem=float(test_ll.std() / math.sqrt(len(test_ll))), sigmas=sigmas,
        validation_means=tuple(float(v) for v in val),
        at_grid_edge=best in (0, len(sigmas) - 1))
