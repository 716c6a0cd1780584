"""Configuration of the vi_gan runs; the defaults are Su's own E1 settings (spec §3-4)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from kexue.config import NonNegative, Positive
from kexue.data.images import ImageOptions
from kexue.errors import ConfigError

TOY_DATASETS = ("ring8", "grid25")  # synthetic 2-D targets, sampled by code
IMAGE_DATASETS = ("digits", "mnist", "celeba")


def _su_images() -> ImageOptions:
    # Su's DCGAN trains at 64x64. The kit's defaults give the split every GAN article shares,
    # so the feature network (trained on the default split) never saw the held-out images.
    return ImageOptions(image_size=64)


@dataclass
class DataConfig:
    # digits: stratified 1,437 / 360; the mirror's CelebA subset holds out ids >= 9,001
    images: ImageOptions = field(default_factory=_su_images)
    # the datasets to read (empty: the registry's for the data source); e.g. [mnist] when the
    # official data are used for the VAE only
    datasets: tuple[str, ...] = ()


@dataclass
class DCGANModel:
    """Su's models_64x64 (from LynnHo's DCGAN code), spec §3."""

    latent_dim: Positive[int] = 100
    width: Positive[int] = 64  # channels of D's first conv and G's last hidden layer
    batch_norm: bool = True  # E2 swaps every BN for identity (the layers stay bias-free)


@dataclass
class MLPModel:
    """The offline analogue (spec §4): G z → h → h → x, D x → h → h → logit, ReLU."""

    latent_dim: Positive[int] = 16  # 16 for the ring, 32 for digits
    hidden: Positive[int] = 128  # 128 for the ring, 256 for digits


@dataclass
class VAEModel:
    """Su's vae_keras.py: x → 256 ReLU → (μ, log σ²), z → 256 ReLU → sigmoid."""

    hidden: Positive[int] = 256
    latent_dim: Positive[int] = 2


@dataclass
class RunConfig:
    task: Literal["gan", "vae", "em"] = "gan"
    dataset: Literal["ring8", "grid25", "digits", "mnist", "celeba"] = "celeba"
    # --- GAN (E1/E2) ---
    architecture: Literal["dcgan", "mlp"] = "dcgan"  # mlp for the 2-D targets and digits
    dcgan: DCGANModel = field(default_factory=DCGANModel)
    mlp: MLPModel = field(default_factory=MLPModel)
    schedule: Literal["one_batch_each", "five_batches_each"] = "one_batch_each"  # E1 | E2
    snapshot_weight: NonNegative[float] = 5.0  # λ on the per-element mean; 0 = plain GAN
    lr: Positive[float] = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    batch_size: Positive[int] = 64
    # Su's loop counter: 50 epochs x 3,165 iterations (E2 counts 5 D + 10 G updates as one)
    iterations: Positive[int] = 158_250
    eval_every: Positive[int] = 3_165  # one history row (metrics, sample grid) per epoch
    eval_samples: Positive[int] = 1000  # samples per evaluation (the ring: 2,000, spec §6)
    # collapse: the diversity ratio falls below this after having reached it [assumption]
    collapse_ratio: Positive[float] = 0.5
    grid_rows: Positive[int] = 10  # 10 x 10 samples at one fixed z (Su's grids)
    # --- VAE (E3): Keras RMSprop defaults, batch 100, 50 epochs ---
    vae: VAEModel = field(default_factory=VAEModel)
    vae_lr: Positive[float] = 1e-3
    vae_epochs: Positive[int] = 50
    vae_batch_size: Positive[int] = 100
    elbo_samples: Positive[int] = 10  # z draws per test image for the test ELBO
    # --- EM (E4) ---
    em_components: Positive[int] = 3
    em_points: Positive[int] = 2000
    em_iterations: Positive[int] = 100
    checkpoint_every: Positive[int] = 500
    threads: NonNegative[int] = 0  # 0: the cores the workflow gives; 1 suits the small MLPs
    seed: NonNegative[int] = 0

    def check(self) -> None:
        if self.task == "gan" and self.dataset in TOY_DATASETS and self.architecture != "mlp":
            raise ConfigError(f"dataset={self.dataset}: 2-D targets need architecture: mlp")
        if self.task == "vae" and self.dataset not in ("digits", "mnist"):
            raise ConfigError(f"task=vae: dataset must be digits or mnist, not {self.dataset}")
        if self.eval_every > self.iterations:
            raise ConfigError(f"eval_every={self.eval_every} exceeds iterations="
                              f"{self.iterations}: the run would never be evaluated")
