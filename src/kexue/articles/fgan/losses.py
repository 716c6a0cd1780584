"""Variational divergence minimisation: F(theta, omega) = E_P[T(x)] - E_Q[f*(T(x))], T = g_f(V).

The critic V maximises F. The generator either minimises F (``saddle``, the direct
saddle-point form of Su's article and of the paper's theory) or maximises E_Q[T] (``tricky``,
the paper's MNIST analogue of the -log D trick, spec §4.2). Losses take the networks and
batches, as the GAN kit's ``AlternatingGAN`` expects; ``SimultaneousStep`` is the paper's
Algorithm 1, one evaluation of F and one update of both players.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from kexue.nn.divergences import Divergence
from kexue.rng import step_generator

GeneratorLoss = Literal["saddle", "tricky"]


def member_values(divergences: Sequence[Divergence], v_real: Tensor, v_fake: Tensor) -> Tensor:
    """F_k = mean T_k(V_k(real)) - mean f_k*(T_k(V_k(fake))) for each member k of a stack, from
    raw critic outputs of shape (K, B): a lower bound on D_fk(P||Q_k) for every critic."""
    return torch.stack([t_real.mean() - conjugate_fake.mean()
                        for t_real, conjugate_fake in map(Divergence.critic_terms, divergences,
                                                          v_real, v_fake)])


def critic_loss(divergences: Sequence[Divergence]) -> Callable[[nn.Module, Tensor, Tensor], Tensor]:
    """-sum_k F_k: members share no parameter, so each critic ascends its own F_k."""
    def loss(critic: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        return -member_values(divergences, critic(real), critic(fake)).sum()
    return loss


def generator_loss(divergences: Sequence[Divergence],
                   kind: GeneratorLoss) -> Callable[[nn.Module, Tensor], Tensor]:
    """``saddle``: -sum_k E_Qk[f_k*(T_k)], i.e. F up to the E_P term, which does not depend on
    G; ``tricky``: -sum_k E_Qk[T_k]."""
    def loss(critic: nn.Module, fake: Tensor) -> Tensor:
        return generator_terms(divergences, kind, critic(fake))
    return loss


def generator_terms(divergences: Sequence[Divergence], kind: GeneratorLoss,
                    v_fake: Tensor) -> Tensor:
    """The generator loss from raw critic outputs on fakes, (K, B)."""
    term = "conjugate_of_activation" if kind == "saddle" else "activation"
    return -sum(getattr(d, term)(v).mean() for d, v in zip(divergences, v_fake))


class SimultaneousStep:
    """The paper's Algorithm 1 as a ``train_step(step)``: one real batch and one z batch, one
    forward pass, then the critic ascends F and the generator descends its loss, both from the
    same parameters. Draws come from ``step_generator(seed, step)``, hence resumable."""

    def __init__(self, *, generator: nn.Module, critic: nn.Module, opt_g: torch.optim.Optimizer,
                 opt_c: torch.optim.Optimizer, real: Callable[[int, torch.Generator], Tensor],
                 latent_dim: int, batch_size: int, seed: int,
                 divergences: Sequence[Divergence], g_loss: GeneratorLoss,
                 device: torch.device | str = "cpu"):
        self.generator, self.critic, self.opt_g, self.opt_c = generator, critic, opt_g, opt_c
        self.real, self.latent_dim, self.batch_size = real, latent_dim, batch_size
        self.seed, self.divergences, self.g_loss = seed, tuple(divergences), g_loss
        self.device = torch.device(device)

    def modules(self) -> dict[str, object]:
        return {"generator": self.generator, "discriminator": self.critic,
                "opt_g": self.opt_g, "opt_d": self.opt_c}

    def __call__(self, step: int) -> dict[str, float]:
        rng = step_generator(self.seed, step)
        real = self.real(step, rng).to(self.device)
        z = torch.randn(self.batch_size, self.latent_dim, generator=rng).to(self.device)
        self.generator.train()
        self.critic.train()
        v_fake = self.critic(self.generator(z))
        value = member_values(self.divergences, self.critic(real), v_fake).sum()
        g_loss = generator_terms(self.divergences, self.g_loss, v_fake)
        critic_params = list(self.critic.parameters())
        generator_params = list(self.generator.parameters())
        critic_grads = torch.autograd.grad(-value, critic_params, retain_graph=True)
        generator_grads = torch.autograd.grad(g_loss, generator_params)
        for params, grads in ((critic_params, critic_grads), (generator_params, generator_grads)):
            for p, g in zip(params, grads):
                p.grad = g
        self.opt_c.step()
        self.opt_g.step()
        return {"loss": -value.item(), "d_loss": -value.item(), "g_loss": g_loss.item()}
