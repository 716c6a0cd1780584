"""Configuration of the fgan runs. The defaults are the `full` settings: the paper's 1-D fit
(spec §4.1) and its MNIST architecture (spec §4.2).

A run trains every divergence of its recipe's table at once, as one stack of independent
networks (see ``model``): ``recipe`` picks the table *and* the update rule.

* ``su``: Su's table, alternating updates (one critic step, then one generator step; Su gives
  no algorithm) and the direct saddle-point generator loss, min_G F.
* ``original``: the paper's table and its Algorithm 1 (one simultaneous step of both players);
  on images the generator maximises E_Q[T] (the paper's MNIST "-log D trick" analogue), on the
  1-D fit it minimises F itself, since E2 measures the minimiser of D_f.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from kexue.config import NonNegative, Positive, Probability
from kexue.data.images import ImageOptions
from kexue.errors import ConfigError

# The rows trained, identified by f(u) (kexue.nn.divergences); TV is in Su's table only and
# GAN in the paper's only (spec §3.2, difference 4).
SU_DIVERGENCES = ("tv", "kl", "reverse_kl", "chi2_over_u", "chi2", "squared_hellinger",
                  "jeffrey", "js_half")
PAPER_DIVERGENCES = ("kl", "reverse_kl", "chi2", "chi2_over_u", "squared_hellinger", "jeffrey",
                     "js", "gan")


@dataclass
class DataConfig:
    images: ImageOptions = field(default_factory=ImageOptions)  # digits: stratified 360 test
    # held out of the training images (stratified) to choose the Parzen width (spec §5-6)
    digits_validation: Positive[int] = 300
    mnist_validation: Positive[int] = 10_000
    split_seed: NonNegative[int] = 0


@dataclass
class MixtureModel:
    """E2: G(z) = mu + sigma z against 0.4 N(-2, 0.5^2) + 0.6 N(1.5, 1) (spec §4.1)."""

    critic_hidden: tuple[Positive[int], ...] = (64, 64)  # 2 x 64 tanh
    batch_size: Positive[int] = 1024
    steps: Positive[int] = 20_000
    lr: Positive[float] = 1e-3  # Adam, both players
    # the learning rate decays linearly to 0 over this last share of the steps, and (mu,
    # sigma) are averaged over the last `average_share`: the fit is then a fixed point, not
    # one noisy iterate [assumption]
    decay_share: Probability[float] = 0.5
    average_share: Probability[float] = 0.25


@dataclass
class ImageModel:
    """E3: the paper's MNIST networks (spec §4.2)."""

    latent_dim: Positive[int] = 100  # z ~ U[-1, 1]^100
    generator_hidden: Positive[int] = 1200  # 2 x [Linear + BN + ReLU]
    critic_hidden: Positive[int] = 240  # 3 linear layers, ELU between [assumption: width]
    batch_size: Positive[int] = 4096
    steps: Positive[int] = 30_000
    lr: Positive[float] = 2e-4
    beta1: Probability[float] = 0.5
    grid_every: Positive[int] = 500  # a sample grid at fixed z every this many steps


@dataclass
class EvaluationConfig:
    parzen_samples: Positive[int] = 16_384  # the paper's "16k" samples (recalled)
    # widths tried on validation; the grid's ends are reported when the best sits on one
    parzen_sigmas: tuple[Positive[float], ...] = (0.05, 0.08, 0.1, 0.13, 0.16, 0.2, 0.25, 0.3,
                                                    0.4, 0.5)
    fid_samples: Positive[int] = 10_000
    # the FID curve during training: this many validation images and samples per divergence
    curve_samples: Positive[int] = 2_000


@dataclass
class RunConfig:
    experiment: Literal["mixture", "images"] = "images"
    recipe: Literal["su", "original"] = "original"
    divergences: tuple[str, ...] = ()  # () = every divergence of the recipe's table
    mixture: MixtureModel = field(default_factory=MixtureModel)
    images: ImageModel = field(default_factory=ImageModel)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    seed: NonNegative[int] = 0
    # CPU threads of a job (0 = every core). The stacks are small: one thread each, and two
    # jobs side by side, is faster on CPU than two threads fighting over a busy machine.
    threads: NonNegative[int] = 0

    @property
    def model(self) -> MixtureModel | ImageModel:
        """The model config of this run's experiment."""
        return self.mixture if self.experiment == "mixture" else self.images

    @property
    def divergence_keys(self) -> tuple[str, ...]:
        table = SU_DIVERGENCES if self.recipe == "su" else PAPER_DIVERGENCES
        return self.divergences or table

    @property
    def update(self) -> Literal["alternating", "simultaneous"]:
        return "alternating" if self.recipe == "su" else "simultaneous"

    @property
    def generator_loss(self) -> Literal["saddle", "tricky"]:
        return "tricky" if self.recipe == "original" and self.experiment == "images" else "saddle"

    def check(self) -> None:
        table = SU_DIVERGENCES if self.recipe == "su" else PAPER_DIVERGENCES
        unknown = [k for k in self.divergences if k not in table]
        if unknown:
            raise ConfigError(f"divergences: {unknown} are not in the {self.recipe!r} table; "
                              f"choose from {list(table)}")
        if len(set(self.divergences)) != len(self.divergences):
            raise ConfigError(f"divergences: {list(self.divergences)} lists one twice")
