"""train(): every divergence of the recipe's table side by side, as one stack (``model``).

``mixture`` (E2): G = mu + sigma z against the 1-D mixture; the learning rate decays linearly
to 0 over the last ``decay_share`` of the steps and (mu, sigma) are averaged over the last
``average_share``. ``images`` (E3): the paper's MLP generator and ELU critic; a sample grid per
divergence, a validation feature FID and each critic's bound (validation images vs samples: its
saturation, ``saturation``) every epoch (the curves; nothing is selected on them: the last
weights are kept).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from kexue.gan.step import AlternatingGAN, EpochBatches, SampledBatches, Schedule
from kexue.metrics.features import FeatureNet, feature_fid, load_shared_feature_net
from kexue.nn.divergences import Divergence, get_divergence
from kexue.plots import save_image_grid
from kexue.rng import derive_seed, named_generator
from kexue.training import Run, RunContext, TrackedState

from .config import RunConfig
from .data import Images, load_images
from .losses import SimultaneousStep, critic_loss, generator_loss, member_values
from .mixture import TARGET
from .model import Critic, GaussianGenerator, MLPGenerator

HISTORY_ROWS = 40  # the mixture's trajectory is logged this many times
ONE_EACH = Schedule(d_steps=1, g_chunks=1, g_repeats=1)  # Su: one critic step, one G step


def divergences(cfg: RunConfig) -> list[Divergence]:
    return [get_divergence(cfg.recipe, key) for key in cfg.divergence_keys]


def make_step(cfg: RunConfig, divs: list[Divergence], generator: nn.Module, critic: nn.Module,
              opt_g, opt_c, real, latent_dim: int, batch_size: int, device):
    """``su``: the GAN kit's alternating step; ``original``: the paper's simultaneous one."""
    if cfg.update == "alternating":
        return AlternatingGAN(generator=generator, discriminator=critic, opt_g=opt_g,
                              opt_d=opt_c, real=real, latent_dim=latent_dim,
                              batch_size=batch_size, schedule=ONE_EACH, seed=cfg.seed,
                              d_loss=critic_loss(divs),
                              g_loss=generator_loss(divs, cfg.generator_loss), device=device)
    return SimultaneousStep(generator=generator, critic=critic, opt_g=opt_g, opt_c=opt_c,
                            real=real, latent_dim=latent_dim, batch_size=batch_size,
                            seed=cfg.seed, divergences=divs, g_loss=cfg.generator_loss,
                            device=device)


@dataclass
class MixtureStack:
    generator: GaussianGenerator
    critic: Critic


def build_mixture(cfg: RunConfig) -> MixtureStack:
    k = len(cfg.divergence_keys)
    return MixtureStack(GaussianGenerator(k), Critic(k, (1,), cfg.mixture.critic_hidden, "tanh"))


def build_images(cfg: RunConfig, shape: tuple[int, ...]) -> tuple[MLPGenerator, Critic]:
    k, im = len(cfg.divergence_keys), cfg.images
    return (MLPGenerator(k, im.latent_dim, im.generator_hidden, shape),
            Critic(k, shape, (im.critic_hidden, im.critic_hidden), "elu"))


def pack(**modules: nn.Module) -> dict[str, torch.Tensor]:
    """One flat state dict for model.pt: ``<name>.<parameter>`` for every module."""
    return {f"{name}.{k}": v for name, m in modules.items() for k, v in m.state_dict().items()}


def unpack(state: dict[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    prefix = f"{name}."
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def linear_decay(total: int, share: float):
    """LambdaLR factor: 1, then linearly down to 0 over the last ``share`` of ``total`` steps."""
    start = total * (1 - share)
    return lambda step: 1.0 if step < start else max(0.0, (total - step) / (total - start))


@torch.no_grad()
def generate_stack(generator: nn.Module, z: torch.Tensor, batch_size: int = 1000):
    """Every member's G(z), (K, N, ...), in eval mode (batch-norm running statistics)."""
    was_training = generator.training
    generator.eval()
    try:
        return torch.cat([generator(chunk) for chunk in z.split(batch_size)], dim=1)
    finally:
        generator.train(was_training)


def mixture_probe(seed: int, n: int = 20_000) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed real batch and z batch for the logged variational bounds."""
    g = named_generator(seed, "probe")
    return TARGET.sample(n, g), torch.randn(n, 1, generator=g)


def feature_net(ctx: RunContext, data: Images) -> tuple[FeatureNet, dict]:
    """The shared feature network of the run's dataset (the DAG's ``features`` job)."""
    return load_shared_feature_net(ctx, data.meta["dataset"], data.meta["data_label"],
                                   data.meta["test_split"])


def train(ctx: RunContext) -> None:
    torch.manual_seed(derive_seed(ctx.cfg.seed, "init"))  # the initial weights
    if ctx.cfg.experiment == "mixture":
        _train_mixture(ctx)
    else:
        _train_images(ctx)


def _train_mixture(ctx: RunContext) -> None:
    cfg, m = ctx.cfg, ctx.cfg.mixture
    divs, keys = divergences(cfg), cfg.divergence_keys
    stack = build_mixture(cfg)
    g, c = stack.generator.to(ctx.device), stack.critic.to(ctx.device)
    opt_g, opt_c = (torch.optim.Adam(net.parameters(), lr=m.lr) for net in (g, c))
    sched_g, sched_c = (torch.optim.lr_scheduler.LambdaLR(o, linear_decay(m.steps, m.decay_share))
                        for o in (opt_g, opt_c))
    step = make_step(cfg, divs, g, c, opt_g, opt_c, SampledBatches(TARGET.sample, m.batch_size),
                     1, m.batch_size, ctx.device)
    average = TrackedState(mu=torch.zeros(len(keys)), sigma=torch.zeros(len(keys)), n=0)
    first_averaged = m.steps - max(1, round(m.average_share * m.steps))

    def train_step(s: int) -> dict:
        out = step(s)
        sched_g.step()
        sched_c.step()
        if s >= first_averaged:
            average["mu"] = average["mu"] + g.mu.detach().cpu()
            average["sigma"] = average["sigma"] + g.sigma.detach().cpu()
            average["n"] += 1
        return out

    real, z = (t.to(ctx.device) for t in mixture_probe(cfg.seed))

    @torch.no_grad()
    def end_of_epoch(epoch: int, row: dict) -> dict:
        bounds = member_values(divs, c(real), c(g(z)))
        out = {}
        for i, key in enumerate(keys):
            out.update({f"mu_{key}": g.mu[i].item(), f"sigma_{key}": g.sigma[i].item(),
                        f"bound_{key}": bounds[i].item()})
        return out

    run = Run(ctx)
    result = run.fit(modules={"generator": g, "critic": c, "opt_g": opt_g, "opt_c": opt_c,
                              "sched_g": sched_g, "sched_c": sched_c, "average": average},
                     total_steps=m.steps, steps_per_epoch=max(1, m.steps // HISTORY_ROWS),
                     train_step=train_step, end_of_epoch=end_of_epoch,
                     checkpoint_every=max(1, m.steps // HISTORY_ROWS))
    run.finish({**pack(generator=g, critic=c), "mu_average": average["mu"] / average["n"],
                "sigma_average": average["sigma"] / average["n"]}, result.history)


def _train_images(ctx: RunContext) -> None:
    cfg, im = ctx.cfg, ctx.cfg.images
    divs, keys = divergences(cfg), cfg.divergence_keys
    data: Images = load_images(ctx.data_dir)
    g, c = (net.to(ctx.device) for net in build_images(cfg, tuple(data.train.shape[1:])))
    opt_g, opt_c = (torch.optim.Adam(net.parameters(), lr=im.lr, betas=(im.beta1, 0.999))
                    for net in (g, c))
    real = EpochBatches(data.train.to(ctx.device), im.batch_size, cfg.seed)
    step = make_step(cfg, divs, g, c, opt_g, opt_c, real, im.latent_dim, im.batch_size,
                     ctx.device)
    net, _ = feature_net(ctx, data)
    probe = data.validation[:cfg.evaluation.curve_samples]
    validation = probe * 2 - 1  # the feature network takes [-1, 1]
    grid_z = torch.randn(64, im.latent_dim, generator=named_generator(cfg.seed, "grid"))
    fid_z = torch.randn(len(validation), im.latent_dim,
                        generator=named_generator(cfg.seed, "fid curve"))
    ctx.train_artifacts.mkdir(parents=True, exist_ok=True)

    def end_of_epoch(epoch: int, row: dict) -> dict:
        samples = generate_stack(g, fid_z.to(ctx.device))
        with torch.no_grad():  # each critic's bound on validation vs samples: its saturation
            bounds = member_values(divs, c(probe.to(ctx.device)), c(samples)).cpu()
        samples = samples.cpu()
        grids = generate_stack(g, grid_z.to(ctx.device)).cpu()
        out = {}
        for i, key in enumerate(keys):
            out[f"fid_{key}"] = feature_fid(net, validation, samples[i] * 2 - 1)
            out[f"bound_{key}"] = bounds[i].item()
            save_image_grid(ctx.train_artifacts / f"{key}_step{row['step']:06d}.png",
                            unit_to_uint8(grids[i]), nrow=8, upscale=2)
        return out

    run = Run(ctx)
    result = run.fit(modules={"generator": g, "critic": c, "opt_g": opt_g, "opt_c": opt_c},
                     total_steps=im.steps, steps_per_epoch=im.grid_every,
                     train_step=step, end_of_epoch=end_of_epoch,
                     checkpoint_every=im.grid_every)
    run.finish(pack(generator=g, critic=c), result.history)


def unit_to_uint8(images: torch.Tensor):
    return (images.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
