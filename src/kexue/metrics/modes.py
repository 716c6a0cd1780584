"""Mode coverage of a generator: on a mixture with known centres, or over predicted classes.

* ``mode_coverage``: a sample is *high quality* when it lies within ``k`` σ of some centre; a
  mode is *covered* when at least ``min_share`` of all samples are high-quality samples of it;
  the KL from the histogram of high-quality samples over the modes to the uniform distribution
  measures how unevenly the modes are hit (0 for a perfect generator, log K when one mode takes
  everything).
* ``class_coverage``: the same histogram over the labels a classifier predicts for samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Coverage:
    modes_covered: int
    n_modes: int
    high_quality: float  # share of samples close to some mode (1.0 for class coverage)
    kl_to_uniform: float  # KL(histogram ‖ uniform) in nats; nan when no sample counts
    counts: tuple[int, ...]

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        return {f"{prefix}modes_covered": self.modes_covered,
                f"{prefix}high_quality": self.high_quality,
                f"{prefix}kl_to_uniform": self.kl_to_uniform}


def histogram_coverage(counts: Tensor, n_samples: int, min_share: float,
                       high_quality: float) -> Coverage:
    counts = counts.to(torch.int64)
    total = int(counts.sum())
    covered = int((counts >= min_share * n_samples).sum()) if n_samples else 0
    if total == 0:
        kl = math.nan
    else:
        p = counts.double() / total
        nz = p > 0
        kl = float((p[nz] * torch.log(p[nz] * len(counts))).sum())
    return Coverage(covered, len(counts), high_quality, kl, tuple(int(c) for c in counts))


def mode_coverage(samples: Tensor, centres: Tensor, sigma: float, n_sigmas: float = 3.0,
                  min_share: float = 0.01) -> Coverage:
    """Coverage of the modes ``centres`` (K, d) by ``samples`` (N, d) of a mixture of width σ."""
    distances = torch.cdist(samples.double(), centres.double())
    nearest, mode = distances.min(dim=1)
    good = nearest <= n_sigmas * sigma
    counts = torch.bincount(mode[good], minlength=len(centres))
    share = float(good.double().mean()) if len(samples) else math.nan
    return histogram_coverage(counts, len(samples), min_share, share)


def class_coverage(predicted: Tensor, n_classes: int, min_share: float = 0.01) -> Coverage:
    """Coverage of ``n_classes`` by the labels a classifier predicts for the samples."""
    counts = torch.bincount(predicted.to(torch.int64), minlength=n_classes)
    return histogram_coverage(counts, len(predicted), min_share, 1.0)
