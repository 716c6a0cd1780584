"""The fault suite, numerical faults (part 2): a GAN whose discriminator saturates is reported
as such (a flag in its metrics, a line in its report), never a crash. The detector is the GAN
kit's ``kexue.gan.saturation``; vi_gan, fgan (every critic whose bound has a ceiling) and
lipschitz (its BCE arm; WGAN critics are not judged) wire it into their metrics and reports."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kexue.articles.fgan.losses import member_values
from kexue.articles.fgan.saturation import DISJOINT, classifier_d_loss, saturation_metrics
from kexue.articles.lipschitz.gan import critic_saturation, get_arm
from kexue.errors import DataError
from kexue.gan.saturation import discriminator_saturation
from kexue.gan.step import AlternatingGAN, SampledBatches, Schedule
from kexue.nn.divergences import PAPER, SU, get_divergence
from kexue.training import Checkpointer, RunContext, fit

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


# ------------------------------------------------------------------------ fgan: every f-critic

def _fgan_history(key, bounds):
    return [{"epoch": i, "step": 10 * (i + 1), f"bound_{key}": b} for i, b in enumerate(bounds)]


BOUNDED = [(table, key) for table, rows in (("su", SU), ("original", PAPER)) for key in rows
           if key in DISJOINT]
UNBOUNDED = [(table, key) for table, rows in (("su", SU), ("original", PAPER)) for key in rows
             if key not in DISJOINT]


def _divergence_of_two_normals(d, shift: float) -> float:
    """D_f(N(-shift, 1) || N(shift, 1)) by quadrature."""
    x = torch.linspace(-60, 60, 200_001, dtype=torch.float64)
    log_normal = lambda m: -0.5 * (x - m) ** 2 - 0.5 * math.log(2 * math.pi)
    return torch.trapezoid(d.perspective(log_normal(-shift), log_normal(shift)), x).item()


@faults("Numerical faults: saturated GAN")
@pytest.mark.parametrize("table, key", BOUNDED)
def test_fgan_saturation_ceiling_is_disjoint_supports(table, key):
    """DISJOINT is D_f of two far-apart Gaussians by quadrature, and lies above f(1)."""
    d = get_divergence(table, key)
    value = _divergence_of_two_normals(d, 25.0)
    assert value == pytest.approx(DISJOINT[key], abs=1e-6)
    assert DISJOINT[key] > d.f_at_one


@faults("Numerical faults: saturated GAN")
@pytest.mark.parametrize("table, key", UNBOUNDED)
def test_fgan_saturation_not_judged_without_a_ceiling(table, key):
    """Their D_f grows with the separation: the detector does not apply, said as None."""
    d = get_divergence(table, key)
    near, far = (_divergence_of_two_normals(d, s) for s in (3.0, 6.0))
    assert far > 2 * near > 10
    m = saturation_metrics(_fgan_history(key, [1e6] * 5), [d])
    assert m[f"d_saturated__{key}"] is None and m["d_saturated"] is False
    assert math.isnan(m[f"final_d_loss__{key}"])


@faults("Numerical faults: saturated GAN")
@pytest.mark.parametrize("table, key", [("original", "gan"), ("original", "js"),
                                        ("su", "js_half")])
def test_fgan_saturation_of_sigmoid_critics_reads_the_bce_d_loss(table, key):
    """For the rows whose critic is a sigmoid classifier, the mapped bound is ½·BCE exactly."""
    d = get_divergence(table, key)
    g = torch.Generator().manual_seed(0)
    v_real, v_fake = torch.randn(1, 500, generator=g) + 1, torch.randn(1, 500, generator=g) - 1
    bound = member_values([d], v_real, v_fake).item()
    bce = 0.5 * (F.binary_cross_entropy_with_logits(v_real, torch.ones_like(v_real))
                 + F.binary_cross_entropy_with_logits(v_fake, torch.zeros_like(v_fake)))
    assert classifier_d_loss(d, bound) == pytest.approx(bce.item(), rel=1e-5)


@faults("Numerical faults: saturated GAN")
@pytest.mark.parametrize("table, key", BOUNDED)
def test_fgan_saturation_flags_a_critic_at_its_ceiling(table, key):
    d = get_divergence(table, key)
    top, chance = DISJOINT[key], d.f_at_one
    near = top - 0.001 * (top - chance)  # 0.1 % of the range from certainty
    bounds = [chance, (chance + top) / 2, near, near, near]
    m = saturation_metrics(_fgan_history(key, bounds), [d])
    assert m[f"d_saturated__{key}"] is True and m[f"d_saturated_since_step__{key}"] == 30
    assert m["d_saturated"] is True and m["d_saturated_divergences"] == [key]
    assert m[f"final_d_loss__{key}"] == pytest.approx(0.001 * math.log(2))


@faults("Numerical faults: saturated GAN")
@pytest.mark.parametrize("table, key", BOUNDED)
def test_fgan_saturation_spares_a_critic_short_of_its_ceiling(table, key):
    d = get_divergence(table, key)
    top, chance = DISJOINT[key], d.f_at_one
    bounds = [chance + share * (top - chance) for share in (0.1, 0.999, 0.999, 0.9, 0.95)]
    m = saturation_metrics(_fgan_history(key, bounds), [d])
    assert m[f"d_saturated__{key}"] is False and m["d_saturated"] is False
    assert math.isnan(m[f"d_saturated_since_step__{key}"])


@faults("Numerical faults: saturated GAN")
def test_fgan_saturation_of_a_history_without_bounds_is_a_clear_error():
    """A history from before the bounds were logged: one line naming it, not a KeyError."""
    old = [{"epoch": 1, "step": 10, "train_d_loss": 0.3, "fid_gan": 40.0}]
    with pytest.raises(DataError, match=r"^out/history.csv: no bound_gan column .* again$"):
        saturation_metrics(old, [get_divergence("original", "gan")], "out/history.csv")


@faults("Numerical faults: saturated GAN")
def test_fgan_saturation_control_a_real_mixture_run_is_not_flagged(tmp_path):
    """The control: a short 1-D fit (the GAN and KL critics against a Gaussian that overlaps the
    mixture) runs to its end; its GAN critic is not saturated, its KL critic is not judged."""
    from kexue.articles.fgan.config import DataConfig, MixtureModel, RunConfig
    from kexue.articles.fgan.evaluate import evaluate
    from kexue.articles.fgan.train import train

    cfg = RunConfig(experiment="mixture", recipe="original", divergences=("kl", "gan"),
                    mixture=MixtureModel(critic_hidden=(16, 16), batch_size=64, steps=80))
    ctx = RunContext(article="fgan", run="mixture", seed=0, cfg=cfg, data_cfg=DataConfig(),
                     data_dir=tmp_path / "unused", out_dir=tmp_path / "out",
                     ckpt_dir=tmp_path / "ckpt", device=torch.device("cpu"), profile="smoke",
                     source="embedded")
    train(ctx)
    m = evaluate(ctx)
    assert m["d_saturated__gan"] is False and m["d_saturated__kl"] is None
    assert math.log(2) / 4 < m["final_d_loss__gan"] < 1.2 * math.log(2)
    assert m["d_saturated"] is False and m["d_saturated_divergences"] == []


# ---------------------------------------------------------------- lipschitz: Part B critics

def _lipschitz_rows(d_losses):
    return [{"dataset": "ring", **row} for row in _history(d_losses)]


@faults("Numerical faults: saturated GAN")
def test_lipschitz_saturation_of_the_bce_arm_is_judged():
    arm = get_arm("dcgan-sn")
    s = critic_saturation(arm, _lipschitz_rows([0.69, 0.3, 0.004, 0.003, 0.002]))
    assert s["d_saturated"] is True and s["d_saturated_since_step"] == 30
    assert critic_saturation(arm, _lipschitz_rows([0.69, 0.5, 0.6]))["d_saturated"] is False


@faults("Numerical faults: saturated GAN")
@pytest.mark.parametrize("arm", ["wgan-sn-su", "wgan-sn-original", "wgan-gp",
                                 "wgan-gp-one-sided"])
def test_lipschitz_saturation_of_wgan_critics_is_not_judged(arm):
    """A WGAN critic loss of any size (here −W₁ estimates near 0 and far below) is no verdict."""
    for d_losses in ([0.001] * 5, [-50.0] * 5):
        assert critic_saturation(get_arm(arm), _lipschitz_rows(d_losses)) == {"d_saturated": None}


@faults("Numerical faults: saturated GAN")
def test_lipschitz_saturation_control_a_real_dcgan_sn_run_is_not_flagged(tmp_path):
    """The control: DCGAN-SN (BCE) on the ring, 40 G iterations; evaluation reports D not
    saturated, and the WGAN arm beside it as not applicable."""
    from kexue.articles.lipschitz.config import DataConfig, GANConfig, RunConfig
    from kexue.articles.lipschitz.evaluate import evaluate
    from kexue.articles.lipschitz.train import train

    for arm, verdict in (("dcgan-sn", False), ("wgan-sn-original", None)):
        cfg = RunConfig(part="B", gan=GANConfig(
            arm=arm, iterations={"ring": 40}, lr=1e-3, eval_every=10, eval_samples=200,
            lipschitz_points=64))
        ctx = RunContext(article="lipschitz", run=arm, seed=0, cfg=cfg, data_cfg=DataConfig(),
                         data_dir=tmp_path / "unused", out_dir=tmp_path / arm / "out",
                         ckpt_dir=tmp_path / arm / "ckpt", device=torch.device("cpu"),
                         profile="smoke", source="embedded")
        train(ctx)
        m = evaluate(ctx)
        assert m["ring_d_saturated"] is verdict, m
        if verdict is False:
            assert m["ring_final_d_loss"] > 0.1 and m["ring_d_saturated_since_step"] is None
