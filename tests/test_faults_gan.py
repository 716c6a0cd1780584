"""The fault suite, numerical faults (part 2): a GAN whose discriminator saturates is reported
as such (a flag in its metrics, a line in its report), never a crash. The detector is the GAN
kit's ``kexue.gan.saturation``; vi_gan wires it into its metrics and report."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from kexue.gan.saturation import discriminator_saturation
from kexue.gan.step import AlternatingGAN, SampledBatches, Schedule
from kexue.training import Checkpointer, fit

faults = pytest.mark.faults
torch.set_num_threads(1)


def _history(d_losses, g_losses=None):
    g_losses = g_losses or [1.0] * len(d_losses)
    return [{"epoch": i, "step": 10 * (i + 1), "train_d_loss": d, "train_g_loss": g,
             "train_loss": d + g}
            for i, (d, g) in enumerate(zip(d_losses, g_losses))]


@faults("Numerical faults: saturated GAN")
def test_saturation_is_the_final_stretch_of_a_near_zero_d_loss():
    history = _history([0.69, 0.5, 0.2, 0.008, 0.004, 0.002], [0.7, 1.0, 2.0, 5.0, 6.0, 7.0])
    s = discriminator_saturation(history)
    assert s.saturated and s.since_step == 40 and s.final_d_loss == 0.002
    assert s.g_loss_during == pytest.approx(6.0)
    assert s.metrics() == {"d_saturated": True, "d_saturated_since_step": 40,
                           "final_d_loss": 0.002, "g_loss_while_saturated": s.g_loss_during}


@faults("Numerical faults: saturated GAN")
@pytest.mark.parametrize("d_losses", [
    [0.69, 0.6, 0.65, 0.7],  # a balanced game
    [0.69, 0.001, 0.002, 0.003, 0.3, 0.4],  # saturated for a while, then recovered
    [0.69, 0.5, 0.005, 0.004],  # only two low rows: could be noise
    [0.69, 0.001, 0.001, float("nan")],  # diverged: NaN is not saturation
], ids=["balanced", "recovered", "too short", "nan"])
def test_no_saturation_is_reported_when_the_end_is_not_saturated(d_losses):
    s = discriminator_saturation(_history(d_losses))
    assert not s.saturated and s.since_step is None and math.isnan(s.g_loss_during)
    assert s.metrics()["d_saturated"] is False and math.isnan(s.metrics()["d_saturated_since_step"])


@faults("Numerical faults: saturated GAN")
def test_a_short_history_saturated_throughout_is_flagged():
    assert discriminator_saturation(_history([0.003, 0.002])).saturated  # smoke runs: 2 rows


@faults("Numerical faults: saturated GAN")
def test_a_history_without_d_loss_is_a_clear_error():
    with pytest.raises(ValueError, match="train_d_loss column"):
        discriminator_saturation([{"step": 1, "train_loss": 0.3}])


def _toy_gan(seed: int, g_lr: float, g_start: float) -> AlternatingGAN:
    """An MLP discriminator against a linear generator, both on 2-d standard normal noise: the
    data is N(0, I), so a generator starting at ``g_start`` (its bias) = 0 can match it."""
    torch.manual_seed(seed)
    generator = nn.Linear(2, 2)
    nn.init.constant_(generator.bias, g_start)
    discriminator = nn.Sequential(nn.Linear(2, 32), nn.LeakyReLU(0.2), nn.Linear(32, 1))
    return AlternatingGAN(
        generator=generator, discriminator=discriminator,
        opt_g=torch.optim.Adam(generator.parameters(), lr=g_lr),
        opt_d=torch.optim.Adam(discriminator.parameters(), lr=1e-2),
        real=SampledBatches(lambda n, g: torch.randn(n, 2, generator=g), 64), latent_dim=2,
        batch_size=64, schedule=Schedule(d_steps=1, g_chunks=1, g_repeats=1), seed=seed)


@faults("Numerical faults: saturated GAN")
def test_a_real_training_whose_d_saturates_finishes_and_is_flagged(tmp_path):
    """A generator that cannot move (lr 0), 10 units from the data: D wins outright. Training
    runs to the end (no NonFiniteLoss, no crash) and the detector flags its history."""
    gan = _toy_gan(0, g_lr=0.0, g_start=10.0)
    result = fit(modules=gan.modules(), total_steps=200, steps_per_epoch=20, train_step=gan,
                 end_of_epoch=None, ckpt=Checkpointer(tmp_path, "gan"), checkpoint_every=20)
    assert result.steps == 200
    s = discriminator_saturation(result.history)
    assert s.saturated and s.since_step < 200 and s.final_d_loss < 1e-3
    assert s.g_loss_during > 5  # -log D(G(z)): D gives the fakes almost no chance


@faults("Numerical faults: saturated GAN")
def test_the_control_a_learning_generator_is_not_flagged(tmp_path):
    gan = _toy_gan(0, g_lr=1e-2, g_start=0.0)
    result = fit(modules=gan.modules(), total_steps=200, steps_per_epoch=20, train_step=gan,
                 end_of_epoch=None, ckpt=Checkpointer(tmp_path, "gan"), checkpoint_every=20)
    s = discriminator_saturation(result.history)
    assert not s.saturated, result.history[-3:]
