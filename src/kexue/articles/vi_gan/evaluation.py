"""What train.py and evaluate.py share: the networks of a run and the judge that scores a
generator at a checkpoint (fixed z, fixed evaluation z, so curves are not sampling noise)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import Tensor, nn

from kexue.articles.vi_gan.config import TOY_DATASETS, RunConfig
from kexue.articles.vi_gan.data import load_images
from kexue.articles.vi_gan.model import (
    DCGANDiscriminator,
    DCGANGenerator,
    MLPDiscriminator,
    MLPGenerator,
)
from kexue.data.toy2d import GaussianMixture2D, toy_target
from kexue.gan.samples import fixed_latent, generate, save_samples_grid
from kexue.io import atomic_path, read_json
from kexue.metrics.features import (
    diversity,
    embed,
    feature_dir,
    feature_fid,
    feature_kid,
    load_feature_net,
    predict,
    to_signed,
)
from kexue.metrics.modes import class_coverage, mode_coverage
from kexue.rng import derive_seed, named_generator
from kexue.training import RunContext


def is_toy(cfg: RunConfig) -> bool:
    return cfg.dataset in TOY_DATASETS


def toy(cfg: RunConfig) -> GaussianMixture2D:
    return toy_target(cfg.dataset)


def latent_dim(cfg: RunConfig) -> int:
    return cfg.mlp.latent_dim if cfg.architecture == "mlp" else cfg.dcgan.latent_dim


def data_shape(ctx: RunContext) -> tuple[int, ...]:
    if is_toy(ctx.cfg):
        return (2,)
    return tuple(load_images(ctx.data_dir, ctx.cfg.dataset).train.shape[1:])


def data_meta(ctx: RunContext) -> dict:
    """What data.json says about the run's dataset (label, completeness, classes)."""
    return read_json(ctx.data_dir / "data.json")[ctx.cfg.dataset]


def build_gan(cfg: RunConfig, shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    if cfg.architecture == "mlp":
        m = cfg.mlp
        size = int(np.prod(shape))
        return (MLPGenerator(m.latent_dim, m.hidden, shape, tanh=len(shape) > 1),
                MLPDiscriminator(size, m.hidden))
    m, (channels, height, _) = cfg.dcgan, shape
    return (DCGANGenerator(m.latent_dim, m.width, channels, height, m.batch_norm),
            DCGANDiscriminator(m.width, channels, height, m.batch_norm))


@dataclass
class GanJudge:
    """Scores a generator on the fixed evaluation z and saves what it draws at the fixed z."""

    cfg: RunConfig
    eval_z: Tensor
    grid_z: Tensor
    target: GaussianMixture2D | None = None  # the 2-D runs
    feature_net: nn.Module | None = None  # the image runs
    real: Tensor | None = None  # held-out real images in [-1, 1]
    real_features: Tensor | None = None
    n_classes: int = 0
    kid_seed: int = 0
    fid_label: str = ""

    @classmethod
    def for_run(cls, ctx: RunContext) -> GanJudge:
        cfg, dim = ctx.cfg, latent_dim(ctx.cfg)
        eval_z = fixed_latent(named_generator(ctx.seed, "evaluation"), cfg.eval_samples, dim)
        grid_z = fixed_latent(named_generator(ctx.seed, "fixed-z"), cfg.grid_rows**2, dim)
        if is_toy(cfg):
            return cls(cfg, eval_z, grid_z, target=toy(cfg))
        images = load_images(ctx.data_dir, cfg.dataset)
        net, info = load_feature_net(feature_dir(ctx, cfg.dataset) / "model.pt")
        real = to_signed(images.test, images.n_levels)
        return cls(cfg, eval_z, grid_z, feature_net=net, real=real,
                   real_features=embed(net, real), n_classes=info["n_classes"],
                   kid_seed=derive_seed(ctx.seed, "kid"), fid_label=info["fid_label"])

    def __call__(self, generator: nn.Module, step: int, folder: Path) -> dict[str, float]:
        device = next(generator.parameters()).device
        samples = generate(generator, self.eval_z.to(device)).cpu().float()
        if self.target is not None:
            _save_points(folder / f"samples_{step:07d}.npy", samples)
            return self.toy_metrics(samples)
        save_samples_grid(folder / f"samples_{step:07d}.png", generator,
                          self.grid_z.to(device), self.cfg.grid_rows,
                          upscale=max(1, 64 // samples.shape[-1]))
        return self.image_metrics(samples)

    def toy_metrics(self, samples: Tensor) -> dict[str, float]:
        cov = mode_coverage(samples, self.target.centre_tensor(), self.target.sigma)
        # the collapse detector in the data space itself (2-D points need no features)
        spread = diversity(samples, self.target.sample(len(samples), named_generator(0, "ring")))
        return {**cov.as_dict(), "diversity_ratio": spread.ratio,
                "near_duplicates": spread.near_duplicates}

    def image_metrics(self, samples: Tensor) -> dict[str, float]:
        net = self.feature_net
        spread = diversity(embed(net, samples), self.real_features)
        kid, kid_sd = feature_kid(net, self.real, samples, seed=self.kid_seed)
        out = {"feature_fid": feature_fid(net, self.real, samples), "feature_kid": kid,
               "feature_kid_sd": kid_sd, "diversity_ratio": spread.ratio,
               "near_duplicates": spread.near_duplicates}
        if self.n_classes:  # a classifier's predicted labels: mode coverage over classes
            out |= class_coverage(predict(net, samples), self.n_classes).as_dict("class_")
        return out



def _save_points(path: Path, points: Tensor) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, points.numpy(), allow_pickle=False)


def collapse_step(history: list[dict], threshold: float) -> tuple[float, bool]:
    """(step of collapse, whether the run was ever diverse). Collapse is a *loss* of diversity:
    the first evaluation with a diversity ratio below ``threshold`` after one at or above it,
    so that the low diversity of a generator that is still untrained does not count. A run
    that is never diverse collapsed from the start: its first evaluation. nan: no collapse."""
    diverse = False
    for row in history:
        if row["diversity_ratio"] >= threshold:
            diverse = True
        elif diverse:
            return float(row["step"]), True
    return (float("nan"), True) if diverse else (float(history[0]["step"]), False)
