"""The stacks are K independent networks, and the VDM losses and steps do what they claim."""

import copy

import pytest
import torch
import torch.nn.functional as F

from kexue.articles.fgan.config import PAPER_DIVERGENCES, SU_DIVERGENCES, RunConfig
from kexue.articles.fgan.losses import (
    SimultaneousStep,
    critic_loss,
    generator_loss,
    generator_terms,
    member_values,
)
from kexue.articles.fgan.mixture import TARGET
from kexue.articles.fgan.model import (
    Critic,
    GaussianGenerator,
    MLPGenerator,
    StackedBatchNorm,
    StackedLinear,
)
from kexue.articles.fgan.train import ONE_EACH, linear_decay
from kexue.errors import ConfigError
from kexue.gan.step import AlternatingGAN, SampledBatches
from kexue.nn.divergences import PAPER, SU

torch.set_num_threads(1)


def test_stacked_linear_is_k_linear_layers():
    torch.manual_seed(0)
    layer = StackedLinear(3, 5, 4)
    x = torch.randn(7, 5)
    shared, per_member = layer(x), layer(torch.randn(3, 7, 5))
    assert shared.shape == per_member.shape == (3, 7, 4)
    for k in range(3):
        expected = F.linear(x, layer.weight[k].T, layer.bias[k, 0])
        assert torch.allclose(shared[k], expected, atol=1e-6)


def test_stacked_batch_norm_uses_per_member_statistics():
    torch.manual_seed(1)
    bn = StackedBatchNorm(2, 3)
    x = torch.randn(2, 50, 3) * torch.tensor([1.0, 5.0])[:, None, None] + 3
    y = bn(x)
    for k in range(2):
        ref = torch.nn.BatchNorm1d(3)
        assert torch.allclose(y[k], ref(x[k]), atol=1e-5)
        assert torch.allclose(bn.running_mean.view(2, 3)[k], ref.running_mean, atol=1e-6)


def test_critic_and_generators_shapes():
    critic = Critic(4, (1, 8, 8), (16, 16), "elu")
    assert critic(torch.rand(10, 1, 8, 8)).shape == (4, 10)
    assert critic(torch.rand(4, 10, 1, 8, 8)).shape == (4, 10)
    g = MLPGenerator(4, 12, 32, (1, 8, 8))
    x = g(torch.randn(10, 12))
    assert x.shape == (4, 10, 1, 8, 8) and 0 <= x.min() and x.max() <= 1
    gauss = GaussianGenerator(3, mu=1.0, sigma=2.0)
    assert torch.allclose(gauss(torch.zeros(5, 1)), torch.ones(3, 5, 1))


def test_mlp_generator_latent_is_uniform():
    """erf(z / sqrt 2) maps N(0, 1) onto U[-1, 1] (the paper's latent)."""
    z = torch.randn(200_000, generator=torch.Generator().manual_seed(0))
    u = torch.erf(z / 2**0.5)
    assert u.min() >= -1 and u.max() <= 1
    assert u.mean().item() == pytest.approx(0, abs=0.01)
    assert u.var().item() == pytest.approx(1 / 3, abs=0.01)


def test_member_values_is_the_variational_objective():
    g = torch.Generator().manual_seed(2)
    v_real, v_fake = torch.randn(2, 100, generator=g), torch.randn(2, 100, generator=g)
    divs = [PAPER["kl"], PAPER["gan"]]
    values = member_values(divs, v_real, v_fake)
    kl = v_real[0].mean() - torch.exp(v_fake[0] - 1).mean()
    assert values[0].item() == pytest.approx(kl.item())
    gan = (-F.softplus(-v_real[1])).mean() - F.softplus(v_fake[1]).mean()
    assert values[1].item() == pytest.approx(gan.item())
    saddle = generator_terms(divs, "saddle", v_fake)
    tricky = generator_terms(divs, "tricky", v_fake)
    assert saddle.item() == pytest.approx(-(torch.exp(v_fake[0] - 1).mean()
                                            + F.softplus(v_fake[1]).mean()).item())
    expected = -(v_fake[0].mean() - F.softplus(-v_fake[1]).mean())
    assert tricky.item() == pytest.approx(expected.item())


def _mixture_stack(keys, recipe, seed=0):
    torch.manual_seed(seed)
    divs = [(SU if recipe == "su" else PAPER)[k] for k in keys]
    return divs, GaussianGenerator(len(keys)), Critic(len(keys), (1,), (16, 16), "tanh")


def _member(module, k):
    """A one-member copy of member k of a stack."""
    one = copy.deepcopy(module)
    for name, p in one.named_parameters():
        p.data = p.data[k:k + 1].clone()
    return one


@pytest.mark.parametrize("update", ["alternating", "simultaneous"])
def test_a_stack_trains_exactly_like_its_members_alone(update):
    """Members share no parameter and Adam is elementwise: member k of a stack follows the
    same trajectory as a one-member stack started from its weights, on the same batches."""
    recipe = "su" if update == "alternating" else "original"
    divs, g, c = _mixture_stack(("kl", "reverse_kl"), recipe)
    g1, c1 = _member(g, 1), _member(c, 1)
    runs = []
    for gen, critic, ds in ((g, c, divs), (g1, c1, divs[1:])):
        opt_g, opt_c = (torch.optim.Adam(m.parameters(), lr=1e-2) for m in (gen, critic))
        real = SampledBatches(TARGET.sample, 64)
        if update == "alternating":
            step = AlternatingGAN(generator=gen, discriminator=critic, opt_g=opt_g, opt_d=opt_c,
                                  real=real, latent_dim=1, batch_size=64, schedule=ONE_EACH,
                                  seed=3, d_loss=critic_loss(ds),
                                  g_loss=generator_loss(ds, "saddle"))
        else:
            step = SimultaneousStep(generator=gen, critic=critic, opt_g=opt_g, opt_c=opt_c,
                                    real=real, latent_dim=1, batch_size=64, seed=3,
                                    divergences=ds, g_loss="saddle")
        for s in range(20):
            step(s)
        runs.append((gen, critic))
    (g, c), (g1, c1) = runs
    assert torch.allclose(g.mu[1:], g1.mu, atol=1e-5)
    assert torch.allclose(g.log_sigma[1:], g1.log_sigma, atol=1e-5)
    assert not torch.allclose(g.mu[:1], g1.mu, atol=1e-3)  # member 0 went its own way
    for p, p1 in zip(c.parameters(), c1.parameters()):
        assert torch.allclose(p[1:], p1, atol=1e-5)


def test_simultaneous_step_takes_both_gradients_at_the_same_point():
    """Critic: ascend F; generator: descend F (saddle), both from the same parameters."""
    divs, g, c = _mixture_stack(("kl",), "original")
    g0, c0 = copy.deepcopy(g), copy.deepcopy(c)
    opt_g, opt_c = (torch.optim.SGD(m.parameters(), lr=0.1) for m in (g, c))
    step = SimultaneousStep(generator=g, critic=c, opt_g=opt_g, opt_c=opt_c,
                            real=SampledBatches(TARGET.sample, 128), latent_dim=1,
                            batch_size=128, seed=5, divergences=divs, g_loss="saddle")
    step(0)
    from kexue.rng import step_generator
    rng = step_generator(5, 0)
    real = TARGET.sample(128, rng)
    z = torch.randn(128, 1, generator=rng)
    value = member_values(divs, c0(real), c0(g0(z))).sum()
    grads_c = torch.autograd.grad(value, list(c0.parameters()), retain_graph=True)
    grads_g = torch.autograd.grad(value, list(g0.parameters()))
    for p, p0, gr in zip(c.parameters(), c0.parameters(), grads_c):
        assert torch.allclose(p, p0 + 0.1 * gr, atol=1e-6)  # ascent
    for p, p0, gr in zip(g.parameters(), g0.parameters(), grads_g):
        assert torch.allclose(p, p0 - 0.1 * gr, atol=1e-6)  # descent


def test_linear_decay():
    f = linear_decay(100, 0.5)
    assert [f(0), f(49), f(50), f(75), f(100)] == [1.0, 1.0, 1.0, 0.5, 0.0]


def test_run_config_rules():
    assert RunConfig(recipe="su").divergence_keys == SU_DIVERGENCES
    assert RunConfig(recipe="original").divergence_keys == PAPER_DIVERGENCES
    assert RunConfig(recipe="su").update == "alternating"
    assert RunConfig(recipe="original", experiment="images").generator_loss == "tricky"
    assert RunConfig(recipe="original", experiment="mixture").generator_loss == "saddle"
    with pytest.raises(ConfigError, match="not in the 'su' table"):
        RunConfig(recipe="su", divergences=("gan",)).check()
    with pytest.raises(ConfigError, match="twice"):
        RunConfig(recipe="su", divergences=("kl", "kl")).check()
