"""One iteration of alternating GAN training, as a ``train_step(step)`` for the kit's ``fit``.

An iteration does ``d_steps`` discriminator updates (each on a fresh real batch and a fresh z),
then draws ``g_chunks`` fresh z batches, takes the snapshot G°(z) of every chunk with the
weights from *before* any G update of the iteration, and does ``g_repeats`` generator updates
on each chunk. Every random draw comes from ``step_generator(seed, step)`` and every real batch
is a pure function of its running index, so a run killed and resumed replays the same updates.

Su's regulariser λ·MSE(G(z), G°(z)) is exactly zero, with a zero gradient, at the first update
after a snapshot (same z, same weights, same batch-norm batch): it acts only from the second
update on. That is why his schedules take several G updates against one snapshot.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from kexue.gan.losses import bce_d_loss, nonsaturating_g_loss, snapshot_mse
from kexue.rng import epoch_permutation, step_generator

DLoss = Callable[[nn.Module, Tensor, Tensor], Tensor]  # (D, real, fake) -> loss
GLoss = Callable[[nn.Module, Tensor], Tensor]  # (D, fake) -> loss
Regulariser = Callable[[Tensor, Tensor], Tensor]  # (G(z), G°(z)) -> loss


@dataclass(frozen=True)
class Schedule:
    d_steps: int  # D updates per iteration, each on a fresh real batch and a fresh z
    g_chunks: int  # fresh z batches for G per iteration, all snapshotted before any G update
    g_repeats: int  # G updates on each chunk's z

    def __post_init__(self):
        if min(self.d_steps, self.g_chunks, self.g_repeats) < 1:
            raise ValueError(f"a GAN schedule needs at least one update of each kind: {self}")


SCHEDULES: dict[str, Schedule] = {
    # Su's vgan E1, from LynnHo's DCGAN code: 1 D update, then 2 G updates on one fresh z.
    "one_batch_each": Schedule(d_steps=1, g_chunks=1, g_repeats=2),
    # Su's vgan E2: 5 D updates, one snapshot of 5 chunks, 2 G updates per chunk (5 D : 10 G).
    "five_batches_each": Schedule(d_steps=5, g_chunks=5, g_repeats=2),
}


class SampledBatches:
    """Real batches drawn from a sampler (a synthetic target): ``sample(n, generator)``."""

    def __init__(self, sample: Callable[[int, torch.Generator], Tensor], batch_size: int):
        self.sample, self.batch_size = sample, batch_size

    def __call__(self, index: int, generator: torch.Generator) -> Tensor:
        return self.sample(self.batch_size, generator)


class EpochBatches:
    """Real batches of a fixed dataset in epoch order: batch ``index`` of the run is batch
    ``index % per_epoch`` of epoch ``index // per_epoch`` under ``epoch_permutation``; the last
    partial batch of an epoch is dropped (as Su's TF queue did)."""

    def __init__(self, data: Tensor, batch_size: int, seed: int):
        if len(data) < batch_size:
            raise ValueError(f"{len(data)} examples cannot fill one batch of {batch_size}")
        self.data, self.batch_size, self.seed = data, batch_size, seed
        self.per_epoch = len(data) // batch_size
        self._order: tuple[int, Tensor] | None = None

    def __call__(self, index: int, generator: torch.Generator) -> Tensor:
        epoch, k = divmod(index, self.per_epoch)
        if self._order is None or self._order[0] != epoch:
            self._order = (epoch, epoch_permutation(len(self.data), self.seed, epoch))
        rows = self._order[1][k * self.batch_size:(k + 1) * self.batch_size]
        return self.data[rows.to(self.data.device)]


class AlternatingGAN:
    """The training step of a GAN: ``step(i)`` runs iteration ``i`` and returns its mean losses.

    ``snapshot_weight`` is λ of Su's regulariser (0 switches it off, and no snapshot is taken;
    the schedule, hence the number of updates, is the same in both arms).
    """

    def __init__(self, *, generator: nn.Module, discriminator: nn.Module,
                 opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
                 real: Callable[[int, torch.Generator], Tensor], latent_dim: int, batch_size: int,
                 schedule: Schedule, seed: int, snapshot_weight: float = 0.0,
                 d_loss: DLoss = bce_d_loss, g_loss: GLoss = nonsaturating_g_loss,
                 regulariser: Regulariser = snapshot_mse,
                 device: torch.device | str = "cpu"):
        self.generator, self.discriminator = generator, discriminator
        self.opt_g, self.opt_d = opt_g, opt_d
        self.real, self.latent_dim, self.batch_size = real, latent_dim, batch_size
        self.schedule, self.seed, self.snapshot_weight = schedule, seed, snapshot_weight
        self.d_loss, self.g_loss, self.regulariser = d_loss, g_loss, regulariser
        self.device = torch.device(device)

    def modules(self) -> dict[str, object]:
        """What a checkpoint must hold to resume this step bit-identically."""
        return {"generator": self.generator, "discriminator": self.discriminator,
                "opt_g": self.opt_g, "opt_d": self.opt_d}

    def latent(self, generator: torch.Generator) -> Tensor:
        return torch.randn(self.batch_size, self.latent_dim, generator=generator).to(self.device)

    def __call__(self, step: int) -> dict[str, float]:
        rng = step_generator(self.seed, step)
        self.generator.train()
        self.discriminator.train()
        d_losses = [self._d_update(step * self.schedule.d_steps + i, rng)
                    for i in range(self.schedule.d_steps)]
        g_losses, reg_losses = self._g_updates(rng)
        d_loss, g_loss = sum(d_losses) / len(d_losses), sum(g_losses) / len(g_losses)
        out = {"loss": d_loss + g_loss, "d_loss": d_loss, "g_loss": g_loss}
        if reg_losses:
            out["snapshot_mse"] = sum(reg_losses) / len(reg_losses)
        return out

    def _d_update(self, batch_index: int, rng: torch.Generator) -> float:
        real = self.real(batch_index, rng).to(self.device)
        z = self.latent(rng)
        with torch.no_grad():
            fake = self.generator(z)
        loss = self.d_loss(self.discriminator, real, fake)
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()
        return loss.item()

    def _g_updates(self, rng: torch.Generator) -> tuple[list[float], list[float]]:
        zs = [self.latent(rng) for _ in range(self.schedule.g_chunks)]
        regularised = self.snapshot_weight > 0
        # G° in train mode, chunk by chunk, before any G update: at the first update of a chunk
        # G(z) == G°(z) bit for bit, batch-norm statistics included. (Su forwards all chunks of
        # E2 at once; without batch norm that is the same function.) In train mode the snapshot
        # also moves batch-norm running averages, as Su's TF code does.
        with torch.no_grad():
            snapshots = [self.generator(z) for z in zs] if regularised else [None] * len(zs)
        self.discriminator.requires_grad_(False)  # G updates need no D gradients
        g_losses, reg_losses = [], []
        try:
            for z, snapshot in zip(zs, snapshots):
                for _ in range(self.schedule.g_repeats):
                    fake = self.generator(z)
                    loss = self.g_loss(self.discriminator, fake)
                    g_losses.append(loss.item())
                    if regularised:
                        reg = self.regulariser(fake, snapshot)
                        reg_losses.append(reg.item())
                        loss = loss + self.snapshot_weight * reg
                    self.opt_g.zero_grad(set_to_none=True)
                    loss.backward()
                    self.opt_g.step()
        finally:
            self.discriminator.requires_grad_(True)
        return g_losses, reg_losses
