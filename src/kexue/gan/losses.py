"""GAN losses on discriminator logits, and Su's snapshot regulariser (arXiv 1807.05936).

Every loss takes the networks and the batches, not precomputed logits, so that losses needing
extra D calls (a gradient penalty) fit the same step. The discriminator is called separately on
the real and on the fake batch, so batch-norm statistics are never pooled over both.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def bce_d_loss(discriminator: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
    """½·[BCE(D(x), 1) + BCE(D(G(z)), 0)], the standard discriminator loss."""
    real_logits = discriminator(real)
    fake_logits = discriminator(fake)
    return 0.5 * (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                  + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def nonsaturating_g_loss(discriminator: nn.Module, fake: Tensor) -> Tensor:
    """BCE(D(G(z)), 1) = E[−log D(G(z))], the non-saturating generator loss."""
    logits = discriminator(fake)
    return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))


def snapshot_mse(fake: Tensor, snapshot: Tensor) -> Tensor:
    """E‖G(z) − G°(z)‖² as a mean over every element (TF's ``mean_squared_error``): the KL
    term KL(q(x)‖q°(x)) of Su's complete generator loss under a narrow Gaussian. ``snapshot``
    is a constant: no gradient flows into the frozen copy."""
    return F.mse_loss(fake, snapshot.detach())
