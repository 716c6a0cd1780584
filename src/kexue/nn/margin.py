"""Margin softmaxes over cosine logits (kexue.fm 5743; AM-Softmax, Wang et al. 2018).

Every loss takes ``cos`` (B, N): the dot products of L2-normalised encodings with the class
vectors, and ``target`` (B,) class ids. All three are ``cross_entropy`` on modified logits, which
stays finite where Su's sparse ``log(1 - exp(.))`` forms can take the log of ~0.

The logits are cosines only while the class vectors have unit norm: keep them there with
:func:`project_unit_norm_` after every optimiser step (Keras's ``unit_norm`` constraint).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

MarginLoss = Literal["softmax", "am_softmax", "simpler_a_softmax"]


def scaled_cosine_softmax(cos: torch.Tensor, target: torch.Tensor, s: float = 30.0) -> torch.Tensor:
    """Cross-entropy on s·cos θ, no margin (the article's "softmax" row)."""
    return F.cross_entropy(s * cos, target)


def am_softmax(cos: torch.Tensor, target: torch.Tensor, s: float = 30.0,
               m: float = 0.35) -> torch.Tensor:
    """AM-Softmax: the target logit is s·(cos θ_t − m), the others s·cos θ_i."""
    margin = m * F.one_hot(target, cos.shape[1]).to(cos.dtype)
    return F.cross_entropy(s * (cos - margin), target)


def simpler_a_psi(cos: torch.Tensor) -> torch.Tensor:
    """Su's ψ(θ) = min(cos 4θ, cos θ), with cos 4θ = 1 − 8cos²θ + 8cos⁴θ (no acos needed)."""
    c2 = cos * cos
    return torch.minimum(1 - 8 * c2 + 8 * c2 * c2, cos)


def simpler_a_softmax(cos: torch.Tensor, target: torch.Tensor, s: float = 30.0) -> torch.Tensor:
    """Su's simpler A-Softmax: the target logit is s·ψ(θ_t), the others s·cos θ_i."""
    is_target = F.one_hot(target, cos.shape[1]).bool()
    return F.cross_entropy(s * torch.where(is_target, simpler_a_psi(cos), cos), target)


def margin_loss(name: MarginLoss, cos: torch.Tensor, target: torch.Tensor, s: float = 30.0,
                m: float = 0.35) -> torch.Tensor:
    """The loss called ``name``; ``m`` is used by AM-Softmax only."""
    if name == "softmax":
        return scaled_cosine_softmax(cos, target, s)
    if name == "am_softmax":
        return am_softmax(cos, target, s, m)
    if name == "simpler_a_softmax":
        return simpler_a_softmax(cos, target, s)
    raise ValueError(f"unknown margin loss {name!r}")


@torch.no_grad()
def project_unit_norm_(weight: torch.Tensor, eps: float = 1e-7) -> None:
    """Rescale every row (class vector) to unit L2 norm in place: w / (eps + ‖w‖), as Keras's
    ``unit_norm`` constraint does after each step. Not applied at init (Su's vectors start at
    norm ≈ 0.05 under Glorot-uniform)."""
    weight.div_(eps + weight.norm(dim=1, keepdim=True))
