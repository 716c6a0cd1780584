"""Training of the vi_gan runs: the GANs (E1/E2 and their offline analogues), the VAE (E3) and
EM (E4). The GANs are evaluated at every ``eval_every`` iterations on a fixed z (history rows,
sample grids), so the report can show when a run collapses."""

from __future__ import annotations

import torch

from kexue.articles.vi_gan import evaluation
from kexue.articles.vi_gan.data import load_images
from kexue.articles.vi_gan.em import (
    fit_em,
    initial_mixture,
    sklearn_log_likelihood,
    synthetic_mixture_data,
)
from kexue.articles.vi_gan.model import VAE
from kexue.articles.vi_gan.vae import mean_elbo, negative_elbo
from kexue.gan.step import SCHEDULES, AlternatingGAN, EpochBatches, SampledBatches
from kexue.metrics.features import to_signed
from kexue.nn import keras_init
from kexue.rng import epoch_permutation, named_generator, step_generator
from kexue.training import Run, RunContext


def train(ctx: RunContext) -> None:
    {"gan": _train_gan, "vae": _train_vae, "em": _train_em}[ctx.cfg.task](ctx)


def _train_gan(ctx: RunContext) -> None:
    cfg, device = ctx.cfg, ctx.device
    torch.manual_seed(ctx.seed)  # the initial weights
    generator, discriminator = evaluation.build_gan(cfg, evaluation.data_shape(ctx))
    generator, discriminator = generator.to(device), discriminator.to(device)
    adam = {"lr": cfg.lr, "betas": (cfg.beta1, cfg.beta2)}
    gan = AlternatingGAN(
        generator=generator, discriminator=discriminator,
        opt_g=torch.optim.Adam(generator.parameters(), **adam),
        opt_d=torch.optim.Adam(discriminator.parameters(), **adam),
        real=_real_batches(ctx), latent_dim=evaluation.latent_dim(cfg),
        batch_size=cfg.batch_size, schedule=SCHEDULES[cfg.schedule], seed=ctx.seed,
        snapshot_weight=cfg.snapshot_weight, device=device)
    judge = evaluation.GanJudge.for_run(ctx)

    def end_of_epoch(epoch: int, row: dict) -> dict:
        return judge(generator, int(row["step"]), ctx.train_artifacts)

    run = Run(ctx)
    result = run.fit(modules=gan.modules(), total_steps=cfg.iterations,
                     steps_per_epoch=cfg.eval_every, train_step=gan,
                     end_of_epoch=end_of_epoch, checkpoint_every=cfg.checkpoint_every)
    run.finish({"generator": generator.state_dict(),
                "discriminator": discriminator.state_dict()}, result.history)


def _real_batches(ctx: RunContext):
    cfg = ctx.cfg
    if evaluation.is_toy(cfg):
        return SampledBatches(evaluation.toy(cfg).sample, cfg.batch_size)
    images = load_images(ctx.data_dir, cfg.dataset)
    return EpochBatches(to_signed(images.train, images.n_levels).to(ctx.device),
                        cfg.batch_size, ctx.seed)


def _train_vae(ctx: RunContext) -> None:
    cfg, device = ctx.cfg, ctx.device
    images = load_images(ctx.data_dir, cfg.dataset)
    x_train, x_test = (images.unit(images.train).to(device), images.unit(images.test).to(device))
    torch.manual_seed(ctx.seed)
    model = VAE(x_train.shape[1], cfg.vae.hidden, cfg.vae.latent_dim)
    keras_init(model)  # Glorot-uniform kernels, zero biases, as in vae_keras.py
    model = model.to(device)
    # Keras RMSprop: lr 1e-3, ρ 0.9, ε 1e-7 (PyTorch's default smoothing is 0.99)
    opt = torch.optim.RMSprop(model.parameters(), lr=cfg.vae_lr, alpha=0.9, eps=1e-7)
    per_epoch = len(x_train) // cfg.vae_batch_size

    def step(i: int) -> dict:
        epoch, k = divmod(i, per_epoch)
        rows = epoch_permutation(len(x_train), ctx.seed, epoch)[
            k * cfg.vae_batch_size:(k + 1) * cfg.vae_batch_size].to(device)
        noise = torch.randn(len(rows), cfg.vae.latent_dim, generator=step_generator(ctx.seed, i))
        model.train()
        loss = negative_elbo(model, x_train[rows], noise.to(device)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": loss.item()}

    def end_of_epoch(epoch: int, row: dict) -> dict:
        # Su's per-epoch validation on the test set: watched, never used to select a model
        g = named_generator(ctx.seed, "evaluation")
        return {"test_elbo": mean_elbo(model, x_test, g, samples=1)}

    run = Run(ctx)
    result = run.fit(modules={"model": model, "opt": opt}, total_steps=cfg.vae_epochs * per_epoch,
                     steps_per_epoch=per_epoch, train_step=step, end_of_epoch=end_of_epoch,
                     checkpoint_every=cfg.checkpoint_every)
    run.finish(model.state_dict(), result.history)


def _train_em(ctx: RunContext) -> None:
    cfg = ctx.cfg
    x = synthetic_mixture_data(cfg.em_points, ctx.seed)
    init = initial_mixture(x, cfg.em_components, ctx.seed)
    mixture, history = fit_em(x, init, cfg.em_iterations)
    reference = sklearn_log_likelihood(x, init, cfg.em_iterations)
    state = {"weights": torch.from_numpy(mixture.weights),
             "means": torch.from_numpy(mixture.means),
             "covariances": torch.from_numpy(mixture.covariances),
             "sklearn_log_likelihood": torch.tensor(reference)}
    rows = [{"epoch": i, "step": i, "mean_log_likelihood": ll} for i, ll in enumerate(history)]
    Run(ctx).finish(state, rows)
