"""train(): Part A trains a classifier per batch size (and λ); Part B a GAN per dataset."""

from __future__ import annotations

from kexue.training import Run, RunContext

from .classifier import stage_name, stages, train_classifiers
from .gan import train_gan
from .store import flatten


def train(ctx: RunContext) -> None:
    cfg = ctx.cfg
    if cfg.part == "A":
        weights, history = train_classifiers(ctx)
        names = [stage_name(*stage) for stage in stages(cfg.classifier)]
    else:
        weights, history = {}, []
        for dataset in cfg.gan.datasets:
            nets, rows = train_gan(ctx, dataset)
            weights.update({f"{dataset}/{name}": state for name, state in nets.items()})
            history += rows
        names = list(cfg.gan.datasets)
    Run(ctx).finish(flatten(weights), history)
    for name in names:  # the finished stages' last checkpoints
        Run(ctx, stage=name).clear()
