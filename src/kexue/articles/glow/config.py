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
    # hidden convs of the coupling nets: Su's Keras Conv2D (Glorot-uniform, zero bias) | openai's
    # N(0, 0.05^2) | PyTorch's default (larger: std 0.078 vs Glorot's 0.021 for Su's first conv)
    net_init: Literal["keras", "openai", "torch"] = "keras"
    net_actnorm: bool = False  # openai: each hidden conv (no bias) -> data-initialised actnorm
    # openai's conv2d_zeros: the zero-initialised convs (coupling nets' last, split priors)
    # multiply their output by a learned gain exp(logscale_factor * logs), logs from 0
    zero_conv_gain: bool = False
    # openai stores every actnorm/gain log-scale divided by 3 (a 3x larger step); Su: 1
    logscale_factor: Positive[float] = 1.0


@dataclass
class RunConfig:
    recipe: Literal["su", "original", "ablation"] = "su"  # label for reports
    dataset: str = ""  # "" = the first prepared dataset; "celeba" for Su's E1 on real data
    model: GlowModel = field(default_factory=GlowModel)
    actnorm_init_images: Positive[int] = 256  # openai/glow n_batch_init
    # adamax_openai: openai/glow's Adamax (optim.py): beta2 = 1 - 1/(steps of one pass over the
    # training set), step size lr * sqrt(1 - beta2^t) / (1 - beta1^t); "adamax" is PyTorch's
    # (beta2 0.999, no sqrt factor)
    optimiser: Literal["adam", "adamax", "adamax_openai"] = "adam"
    lr: Positive[float] = 1e-4
    warmup_steps: NonNegative[int] = 0  # linear lr warm-up
    grad_clip: NonNegative[float] = 0.0  # max grad norm; 0 = off
    batch_size: Positive[int] = 32
    steps_per_epoch: Positive[int] = 1000  # Su's "epoch": 32 x 1000 = 32,000 random images
    epochs: Positive[int] = 150
    # openai/glow's --dal 1 on CIFAR-10: random shifts of up to +-10 % of height and width
    augment_shift: Probability[float] = 0.0
    collapse_guard: bool = True
    # Su's `epoch > 10` on Keras's 0-based epoch index: the guard acts from the
    # (collapse_after + 2)-th epoch on, the 12th for Su's 10
    collapse_after: NonNegative[int] = 10
    collapse_lr: Positive[float] = 1e-5
    # training forward pass: bf16 autocast on CUDA only (kexue.training.effective_precision);
    # evaluation is fp32
    precision: Literal["fp32", "bf16"] = "fp32"
    # torch.compile of the loss and of the evaluation's log-likelihood: "auto" compiles each
    # where the run is long enough to repay it (train.COMPILE_COST: from ~5,300 steps, so the
    # full profile's 150k, not default's 2.4k; train.EVAL_COMPILE_COST, counted in batches)
    compile: Literal["auto", "on", "off"] = "auto"
    eval_images: NonNegative[int] = 0  # validation images for the per-epoch curve; 0 = all
    temperatures: tuple[Positive[float], ...] = (0.7, 0.8, 1.0)
    n_samples: Positive[int] = 64
    seed: NonNegative[int] = 0
    checkpoint_every: Positive[int] = 500
    # intra-op threads; 0 = what the workflow gives. Tiny models are faster on 1: on a busy
    # 2-core machine two OpenMP threads made a smoke run 10-50x slower.
    threads: NonNegative[int] = 0
