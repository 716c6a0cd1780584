"""Losses shared by the articles.

Binary focal loss (Lin et al. 2017) from log-probabilities:

    FL(p, y) = -alpha * y * (1 - p)^gamma * log p  -  (1 - alpha) * (1 - y) * p^gamma * log(1 - p)

with alpha weighting the positive term. ``torchvision.ops.sigmoid_focal_loss`` has the same form
but takes a single logit (p = sigmoid(x)); DGCNN's p is a product of sigmoids (global score x
head), which has no single logit, so the loss here takes log p, computed stably as a sum of
``logsigmoid`` terms (``log_sigmoid_product``); torchvision is not a dependency of the project
either.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def log_sigmoid_product(*logits: torch.Tensor) -> torch.Tensor:
    """log(prod_i sigmoid(logit_i)), without forming the product."""
    return sum(F.logsigmoid(x) for x in logits)


def binary_focal_loss(log_p: torch.Tensor, target: torch.Tensor, alpha: float = 0.25,
                      gamma: float = 2.0, clip: float = 1e-8) -> torch.Tensor:
    """Elementwise focal loss of probabilities given by their log ``log_p``.

    p is clipped to [clip, 1 - clip] (Keras ``K.clip`` in Su's code: no gradient outside), and
    log(1 - p) is computed as log(-expm1(log p)), exact near p = 0 and p = 1.
    """
    log_p = log_p.clamp(math.log(clip), math.log1p(-clip))
    p = log_p.exp()
    log_not_p = torch.log(-torch.expm1(log_p))
    target = target.to(log_p.dtype)
    return (-alpha * target * (1 - p) ** gamma * log_p
            - (1 - alpha) * (1 - target) * p ** gamma * log_not_p)


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Sum of ``values`` over the True positions of ``mask``, divided by their count."""
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp_min(1.0)
