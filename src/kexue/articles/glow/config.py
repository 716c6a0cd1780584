"""Configs of the RealNVP/Glow article. Defaults are Su's ``su`` recipe at full scale."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from kexue.config import NonNegative, Positive, Probability
from kexue.data.images import ImageOptions


@dataclass
class DataConfig:
    # any registered image datasets; () = the source's default (photo patches embedded,
    # CIFAR-10 and CelebA official). A run picks one with RunConfig.dataset.
    datasets: tuple[str, ...] = ()
    images: ImageOptions = field(default_factory=ImageOptions)
    # held out from the training images for the per-epoch curve: the test set is used once
    val_fraction: Probability[float] = 0.05
    max_train: NonNegative[int] = 0  # 0 = all (smoke runs use fewer)
    max_test: NonNegative[int] = 0


@dataclass
class GlowModel:
    levels: Positive[int] = 3  # L
    depth: Positive[int] = 6  # K steps of flow per level
    width: Positive[int] = 512  # hidden channels of the coupling nets
    coupling: Literal["additive", "affine"] = "additive"
    permutation: Literal["reverse", "shuffle", "invconv"] = "shuffle"
    actnorm: Literal["zero", "data"] = "zero"  # zero init (Su) | data-dependent (Glow)


@dataclass
class RunConfig:
    recipe: Literal["su", "original", "ablation"] = "su"  # label for reports
    dataset: str = ""  # "" = the first prepared dataset; "celeba" for Su's E1 on real data
    model: GlowModel = field(default_factory=GlowModel)
    actnorm_init_images: Positive[int] = 256  # openai/glow n_batch_init
    optimiser: Literal["adam", "adamax"] = "adam"
    lr: Positive[float] = 1e-4
    warmup_steps: NonNegative[int] = 0  # linear lr warm-up
    grad_clip: NonNegative[float] = 0.0  # max grad norm; 0 = off
    batch_size: Positive[int] = 32
    steps_per_epoch: Positive[int] = 1000  # Su's "epoch": 32 x 1000 = 32,000 random images
    epochs: Positive[int] = 150
    collapse_guard: bool = True
    collapse_after: NonNegative[int] = 10  # the guard acts from epoch collapse_after + 1 on
    collapse_lr: Positive[float] = 1e-5
    eval_images: NonNegative[int] = 0  # validation images for the per-epoch curve; 0 = all
    temperatures: tuple[Positive[float], ...] = (0.7, 0.8, 1.0)
    n_samples: Positive[int] = 64
    seed: NonNegative[int] = 0
    checkpoint_every: Positive[int] = 500
    # intra-op threads; 0 = what the workflow gives. Tiny models are faster on 1: on a busy
    # 2-core machine two OpenMP threads made a smoke run 10-50x slower.
    threads: NonNegative[int] = 0
