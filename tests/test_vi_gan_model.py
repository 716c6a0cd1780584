import math

import pytest
import torch
from torch import nn

from kexue.articles.vi_gan.model import (
    DCGANDiscriminator,
    DCGANGenerator,
    MLPDiscriminator,
    MLPGenerator,
)
from kexue.data.toy2d import ring
from kexue.gan.losses import snapshot_mse
from kexue.gan.step import SCHEDULES, AlternatingGAN, EpochBatches, SampledBatches

torch.set_num_threads(1)


def test_dcgan_shapes_match_models_64x64():
    g, d = DCGANGenerator(), DCGANDiscriminator()
    x = g(torch.randn(2, 100))
    assert x.shape == (2, 3, 64, 64) and x.abs().max() <= 1
    assert d(x).shape == (2,)
    convs = [m for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [m.out_channels for m in convs] == [256, 128, 64, 3]
    assert g.fc.out_features == 4 * 4 * 512
    assert [m.out_channels for m in d.modules() if isinstance(m, nn.Conv2d)] == [64, 128, 256, 512]
    assert d.fc.in_features == 512 * 16
    small = DCGANGenerator(image_size=32)(torch.randn(2, 100))
    assert small.shape == (2, 3, 32, 32)
    with pytest.raises(ValueError):
        DCGANGenerator(image_size=48)


@pytest.mark.parametrize("batch_norm", [True, False])
def test_only_the_three_outer_layers_have_biases(batch_norm):
    g, d = DCGANGenerator(batch_norm=batch_norm), DCGANDiscriminator(batch_norm=batch_norm)
    layers = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
    biased = [m for net in (g, d) for m in net.modules() if isinstance(m, layers)
              and m.bias is not None]
    assert biased == [g.body[-2], d.body[0], d.fc]
    assert all(float(m.bias.detach().abs().max()) == 0 for m in biased)
    has_bn = any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for net in (g, d)
                 for m in net.modules())
    assert has_bn == batch_norm
    assert sum(isinstance(m, nn.LeakyReLU) and m.negative_slope == 0.2 for m in d.modules()) == 4


@torch.no_grad()
def test_initialisation():
    torch.manual_seed(0)
    d, g = DCGANDiscriminator(), DCGANGenerator()
    conv = d.body[2].weight.detach()
    assert conv.abs().max() <= 0.04 and 0.01 < conv.std() < 0.02  # truncated at 2σ
    assert g.body[0].weight.std() == pytest.approx(0.02, rel=0.05)
    assert g.fc.weight.std() == pytest.approx(0.02, rel=0.05)
    bn = g.body[1]
    assert bn.momentum == 0.1 and bn.eps == 1e-5 and torch.all(bn.weight == 1)


def test_mlp_analogues():
    g = MLPGenerator(16, 128, (2,), tanh=False)
    assert g(torch.randn(5, 16)).shape == (5, 2)
    gi = MLPGenerator(32, 256, (1, 8, 8), tanh=True)
    assert gi(torch.randn(5, 32)).shape == (5, 1, 8, 8)
    assert MLPDiscriminator(64, 256)(torch.randn(5, 1, 8, 8)).shape == (5,)


def regulariser_grads(model):
    record = []

    def regulariser(fake, snapshot):
        loss = snapshot_mse(fake, snapshot)
        grads = torch.autograd.grad(loss, list(model.parameters()), retain_graph=True)
        record.append(max(float(g.abs().max()) for g in grads))
        return loss
    return regulariser, record


@pytest.mark.parametrize("schedule,batch_norm", [("one_batch_each", True),
                                                 ("five_batches_each", False)])
def test_su_regulariser_gradient_is_zero_at_the_first_g_step_only(schedule, batch_norm):
    """E1 (BN, 1 D : 2 G) and E2 (no BN, 5 D : 5 × 2 G) on a small DCGAN: the regulariser's
    gradient is exactly zero at the first G step after the snapshot and non-zero afterwards."""
    torch.manual_seed(0)
    g = DCGANGenerator(latent_dim=8, width=4, image_size=16, batch_norm=batch_norm)
    d = DCGANDiscriminator(width=4, image_size=16, batch_norm=batch_norm)
    regulariser, record = regulariser_grads(g)
    gan = AlternatingGAN(
        generator=g, discriminator=d, opt_g=torch.optim.Adam(g.parameters(), 2e-4, (0.5, 0.999)),
        opt_d=torch.optim.Adam(d.parameters(), 2e-4, (0.5, 0.999)),
        real=EpochBatches(torch.rand(64, 3, 16, 16) * 2 - 1, 8, seed=0), latent_dim=8,
        batch_size=8, schedule=SCHEDULES[schedule], seed=0, snapshot_weight=5.0,
        regulariser=regulariser)
    for step in range(2):
        record.clear()
        gan(step)
        assert record[0] == 0.0
        assert all(r > 0 for r in record[1:]) and len(record) >= 2


def test_recomputing_the_snapshot_every_g_step_would_disable_the_regulariser():
    """The pitfall of the spec, shown: G° taken right before each G step gives zero gradient."""
    torch.manual_seed(0)
    g = MLPGenerator(4, 16, (2,), tanh=False)
    opt = torch.optim.Adam(g.parameters(), 1e-2)
    z = torch.randn(16, 4)
    for _ in range(2):
        with torch.no_grad():
            snapshot = g(z)
        loss = snapshot_mse(g(z), snapshot)
        grads = torch.autograd.grad(loss, list(g.parameters()))
        assert max(float(x.abs().max()) for x in grads) == 0.0
        opt.zero_grad()
        g(z).sum().backward()
        opt.step()


def test_a_short_ring_run_learns():
    """A few hundred iterations of the regularised GAN put most samples near the ring."""
    torch.manual_seed(1)
    g, d = MLPGenerator(16, 128, (2,), tanh=False), MLPDiscriminator(2, 128)
    target = ring()
    gan = AlternatingGAN(
        generator=g, discriminator=d, opt_g=torch.optim.Adam(g.parameters(), 1e-3, (0.5, 0.999)),
        opt_d=torch.optim.Adam(d.parameters(), 1e-3, (0.5, 0.999)),
        real=SampledBatches(target.sample, 128), latent_dim=16, batch_size=128,
        schedule=SCHEDULES["one_batch_each"], seed=1, snapshot_weight=5.0)
    for step in range(400):
        gan(step)
    with torch.no_grad():
        x = g(torch.randn(2000, 16))
    radius = x.norm(dim=1)
    assert ((radius - 2).abs() < 0.3).float().mean() > 0.5


def test_collapse_is_a_loss_of_diversity():
    from kexue.articles.vi_gan.evaluation import collapse_step

    def rows(*ratios):
        return [{"step": 10 * (i + 1), "diversity_ratio": r} for i, r in enumerate(ratios)]

    step, diverse = collapse_step(rows(0.1, 0.3, 0.8, 0.9), 0.5)  # learning, then diverse
    assert math.isnan(step) and diverse  # no collapse
    assert collapse_step(rows(0.2, 0.9, 0.7, 0.4, 0.8), 0.5) == (40.0, True)
    assert collapse_step(rows(0.2, 0.3, 0.1), 0.5) == (10.0, False)  # never diverse
