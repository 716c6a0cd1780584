"""train(): maximum likelihood with Adam, Su's best-epoch weights (``su``) or the last ones."""

from __future__ import annotations

import math

import torch

from kexue.nn.flows import bits_per_dim
from kexue.rng import epoch_permutation, step_generator
from kexue.training import Run, RunContext, autocast

from .config import RunConfig
from .data import load_prepared, to_unit
from .model import Nice, build_model


def _eval_noise(x: torch.Tensor, seed: int) -> torch.Tensor:
    return torch.rand(x.shape, generator=torch.Generator().manual_seed(seed + 10_007))


@torch.no_grad()
def test_nll(model: Nice, x_test: torch.Tensor, meta: dict, cfg: RunConfig, device) -> float:
    """Mean test NLL in nats per image: clean x for ``su``, one fixed noise draw for ``original``."""
    model.eval()
    noise = None if cfg.recipe == "su" else _eval_noise(x_test, cfg.seed)
    total = 0.0
    for i in range(0, len(x_test), 1000):
        nz = None if noise is None else noise[i: i + 1000]
        x = to_unit(x_test[i: i + 1000], meta["n_levels"], cfg.recipe, nz).to(device)
        total += -model.log_prob(x).sum().item()
    model.train()
    return total / len(x_test)


def train(ctx: RunContext) -> None:
    cfg = ctx.cfg
    x_train, x_test, meta = load_prepared(ctx.data_dir)
    model = build_model(meta["dims"], cfg).to(ctx.device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, cfg.adam_beta2),
                           eps=cfg.adam_eps)
    steps_per_epoch = math.ceil(len(x_train) / cfg.batch_size)
    run = Run(ctx)
    const = 0.5 * meta["dims"] * math.log(2 * math.pi)  # Su's loss omits it

    def train_step(step: int) -> dict:
        epoch, i = divmod(step, steps_per_epoch)
        perm = epoch_permutation(len(x_train), cfg.seed, epoch)
        idx = perm[i * cfg.batch_size: (i + 1) * cfg.batch_size]
        g = step_generator(cfg.seed, step)
        noise = torch.rand(len(idx), meta["dims"], generator=g)
        if cfg.recipe == "su":
            noise = noise * cfg.su_noise
        x = to_unit(x_train[idx], meta["n_levels"], cfg.recipe, noise).to(ctx.device)
        with autocast(ctx.device, cfg.amp):
            nll = -model.log_prob(x).mean()
        opt.zero_grad(set_to_none=True)
        nll.backward()
        opt.step()
        return {"loss": nll.item(), "su_loss": nll.item() - const}

    best = run.keep_best("min")

    def end_of_epoch(epoch: int, row: dict) -> dict:
        nll = test_nll(model, x_test, meta, cfg, ctx.device)
        best.update(epoch, nll, model)  # Su keeps the best val_loss weights
        return {"val_nll": nll, "val_su_loss": nll - const,
                "val_bpd": bits_per_dim(nll, meta["dims"], meta["n_levels"])}

    result = run.fit(modules={"model": model, "opt": opt, "best": best},
                     total_steps=cfg.epochs * steps_per_epoch, steps_per_epoch=steps_per_epoch,
                     train_step=train_step, end_of_epoch=end_of_epoch,
                     checkpoint_every=cfg.checkpoint_every)
    # su ships the best val_loss weights as Su's ModelCheckpoint did; original the last ones.
    run.finish(best.weights() if cfg.recipe == "su" else model.state_dict(), result.history)
