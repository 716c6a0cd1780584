"""Flow building blocks (kexue.nn.flows): inverses, log-determinants against autograd, the LU
parametrisation, squeeze order, zero/data-dependent init, the conditional split prior, bpd."""

import math

import pytest
import torch
from torch import nn

from kexue.articles.glow.config import GlowModel, RunConfig
from kexue.articles.glow.model import Glow, build_model
from kexue.metrics.likelihood import bits_per_dim
from kexue.nn import parameter_count
from kexue.nn.flows import (
    ActNorm,
    AdditiveCoupling,
    AffineCoupling,
    ConditionalSplit,
    Deinterleave,
    ExpScale,
    FlowSequential,
    InvConvLU,
    Reverse,
    Shuffle,
    Squeeze,
    coupling_net,
    data_dependent_init,
    gaussian_log_prob,
    mlp,
)

IMAGE = (4, 4, 4)  # C, H, W: D = 64


def _cfg(**model) -> RunConfig:
    return RunConfig(model=GlowModel(**model))


def _randomise(module: nn.Module, std: float = 0.2, seed: int = 0) -> nn.Module:
    """Non-trivial weights everywhere (zero-init layers would make the tests vacuous)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=g, dtype=p.dtype) * std)
    return module


def _blocks():
    """(name, module, input shape without batch), float64."""
    c = IMAGE[0]
    blocks = {
        "reverse": (Reverse(), IMAGE),
        "shuffle": (Shuffle(c, seed=3), IMAGE),
        "actnorm": (ActNorm(c), IMAGE),
        "invconv_lu": (InvConvLU(c, seed=1), IMAGE),
        "additive_coupling": (AdditiveCoupling(coupling_net(c // 2, c // 2, 8)), IMAGE),
        "affine_coupling": (AffineCoupling(coupling_net(c // 2, c, 8)), IMAGE),
        "squeeze": (Squeeze(), IMAGE),
        "conditional_split": (ConditionalSplit(c), IMAGE),
        # openai/glow's variants: log-scales stored / 3, actnorm inside the net, output gain
        "actnorm_logscale_factor_3": (ActNorm(c, "data", 3.0), IMAGE),
        "affine_coupling_openai_net": (AffineCoupling(coupling_net(
            c // 2, c, 8, "openai", actnorm=True, gain=True, logscale_factor=3.0)), IMAGE),
        "conditional_split_gain": (ConditionalSplit(c, gain=True), IMAGE),
        "exp_scale": (ExpScale(c, init_std=0.3), IMAGE),
        # NICE's vector blocks
        "nice_coupling_interleave": (AdditiveCoupling(mlp(8, 8, 16, 2, out_act=True),
                                                      "interleave", sign=-1.0), (16,)),
        "nice_reverse": (Reverse(), (16,)),
        "nice_deinterleave": (Deinterleave(), (16,)),
        "nice_exp_scale": (ExpScale(16, init_std=0.3), (16,)),
        "vector_invconv": (InvConvLU(16, seed=2), (16,)),
        "vector_actnorm": (ActNorm(16), (16,)),
        "sequential": (FlowSequential(ActNorm(c), InvConvLU(c, seed=5),
                                      AffineCoupling(coupling_net(c // 2, c, 8)), Shuffle(c),
                                      AdditiveCoupling(coupling_net(c // 2, c // 2, 8))), IMAGE),
    }
    return {k: (_randomise(m).double(), s) for k, (m, s) in blocks.items()}


BLOCKS = _blocks()


@pytest.mark.parametrize("name", list(BLOCKS))
def test_block_inverts(name):
    block, shape = BLOCKS[name]
    x = torch.randn(3, *shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    y, logdet = block(x)
    assert logdet.shape == (3,)
    assert y.shape != x.shape or not torch.allclose(y, x)  # an identity would pass vacuously
    assert torch.allclose(block.reverse(y), x, atol=1e-5)


@pytest.mark.parametrize("name", list(BLOCKS))
def test_block_logdet_matches_autograd(name):
    block, shape = BLOCKS[name]
    x = torch.randn(1, *shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    _, logdet = block(x)
    jac = torch.autograd.functional.jacobian(lambda v: block(v.view(1, *shape))[0].flatten(),
                                             x.flatten(), vectorize=True)
    sign, logabs = torch.linalg.slogdet(jac)
    assert sign != 0
    assert logdet[0].item() == pytest.approx(logabs.item(), abs=1e-8)


def test_deinterleave_turns_even_odd_into_halves_and_commutes_with_reverse():
    x = torch.arange(12.0).view(1, 12)
    y, _ = Deinterleave()(x)
    assert y[0].tolist() == [0, 2, 4, 6, 8, 10, 1, 3, 5, 7, 9, 11]
    assert torch.equal(Deinterleave()(x.flip(1))[0], y.flip(1))


def test_lu_logdet_matches_slogdet_and_starts_orthogonal():
    conv = InvConvLU(12, seed=0).double()
    w0 = conv.weight()
    # orthogonal up to its fp32 storage
    assert torch.allclose(w0 @ w0.T, torch.eye(12, dtype=torch.float64), atol=1e-6)
    _randomise(conv, 0.3)
    w = conv.weight()
    _sign, logabs = torch.linalg.slogdet(w)
    assert conv.log_s.sum().item() == pytest.approx(logabs.item(), abs=1e-10)
    # P and sign(diag U) are fixed buffers, not parameters
    names = {n for n, _ in conv.named_parameters()}
    assert names == {"lower", "upper", "log_s"}
    x = torch.randn(2, 12, 3, 5, dtype=torch.float64)
    _, logdet = conv(x)
    assert torch.allclose(logdet, torch.full((2,), 15 * logabs.item(), dtype=torch.float64))
    # the 1x1 conv is the matrix W applied at every pixel
    assert torch.allclose(conv(x)[0], torch.einsum("ij,bjhw->bihw", w, x))


def test_squeeze_matches_reference_reshape_and_round_trips():
    x = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).view(2, 3, 4, 6)
    y, logdet = Squeeze()(x)
    b, c, h, w = x.shape
    ref = x.view(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(b, 4 * c, h // 2,
                                                                              w // 2)
    assert torch.equal(y, ref)
    assert torch.equal(logdet, torch.zeros(2))
    # output channel c*4 + 2*dy + dx holds pixel (2i + dy, 2j + dx) of input channel c
    assert y[0, 1 * 4 + 2 * 1 + 0, 1, 2] == x[0, 1, 3, 4]
    assert torch.equal(Squeeze().reverse(y), x)


def test_zero_initialised_couplings_at_step_0():
    x = torch.randn(4, *IMAGE)
    y, logdet = AdditiveCoupling(coupling_net(2, 2, 16))(x)
    assert torch.equal(y, x) and torch.equal(logdet, torch.zeros(4))  # exactly the identity
    y, logdet = ConditionalSplit(4)(x)
    assert torch.equal(y, x) and torch.equal(logdet, torch.zeros(4))
    # Glow's affine coupling scales by sigmoid(h + 2): at h = 0 a fixed scaling, not identity
    y, logdet = AffineCoupling(coupling_net(2, 4, 16))(x)
    s = torch.sigmoid(torch.tensor(2.0))
    assert torch.equal(y[:, :2], x[:, :2])
    assert torch.allclose(y[:, 2:], s * x[:, 2:])
    assert torch.allclose(logdet, torch.full((4,), 2 * 16 * math.log(s)))


def test_data_dependent_actnorm_init_once():
    torch.manual_seed(0)
    layer = ActNorm(5, init="data")
    x = torch.randn(64, 5, 6, 6) * torch.arange(1, 6).view(1, 5, 1, 1) + 3.0
    assert data_dependent_init(layer, x) == 1
    y, _ = layer(x)
    assert torch.allclose(y.mean((0, 2, 3)), torch.zeros(5), atol=1e-5)
    assert torch.allclose(y.std((0, 2, 3), unbiased=False), torch.ones(5), atol=1e-4)
    # a loaded layer (as on resume) is already initialised: a second init changes nothing
    fresh = ActNorm(5, init="data")
    fresh.load_state_dict(layer.state_dict())
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    assert data_dependent_init(fresh, x * 10 - 4) == 0
    for k, v in fresh.state_dict().items():
        assert torch.equal(v, before[k])
    # zero init is the identity and never data-initialised
    assert data_dependent_init(ActNorm(5), x) == 0


def test_data_dependent_init_of_a_whole_model_goes_layer_by_layer():
    cfg = _cfg(levels=2, depth=2, width=8, actnorm="data", permutation="invconv")
    model = build_model(cfg, (1, 8, 8))
    x = torch.rand(128, 1, 8, 8) - 0.5
    n = data_dependent_init(model, x)
    assert n == 4  # the 4 flow-step actnorms; the learned top is zero-init
    # the last step's actnorm sees the output of the already-initialised earlier layers
    level = model.levels[1]
    h = x
    h = model.levels[0](h)[0].chunk(2, 1)[0]
    for layer in list(level)[:4]:
        h = layer(h)[0]
    assert torch.allclose(h.mean((0, 2, 3)), torch.zeros(8), atol=1e-4)


def test_conditional_split_prior_is_a_proper_density():
    """p(x_drop | x_kept) integrates to 1 over x_drop for any kept half (spec §9: not the
    unnormalised density of rosinality/glow-pytorch #29, because it conditions on the kept
    half only)."""
    split = _randomise(ConditionalSplit(2), 0.5).double()
    grid = torch.linspace(-200, 200, 400001, dtype=torch.float64)  # scales up to ~11
    for kept in (-1.3, 0.0, 2.1):
        x = torch.stack([torch.full_like(grid, kept), grid], 1).view(-1, 2, 1, 1)
        y, logdet = split(x)
        density = torch.exp(gaussian_log_prob(y[:, 1:]) + logdet)
        assert (density.sum() * (grid[1] - grid[0])).item() == pytest.approx(1.0, abs=1e-6)


def test_multiscale_log_likelihood_is_change_of_variables():
    cfg = _cfg(levels=2, depth=1, width=8, coupling="affine", permutation="invconv")
    model = _randomise(build_model(cfg, (1, 4, 4)), 0.2).double()
    x = torch.rand(1, 1, 4, 4, dtype=torch.float64) - 0.5

    def z_flat(v):
        return torch.cat([z.flatten() for z in model(v.view(1, 1, 4, 4))[0]])

    jac = torch.autograd.functional.jacobian(z_flat, x.flatten(), vectorize=True)
    z = z_flat(x)
    expected = -0.5 * (z**2).sum() - 0.5 * z.numel() * math.log(2 * math.pi)
    expected = expected + torch.linalg.slogdet(jac)[1]
    assert model.log_prob(x).item() == pytest.approx(expected.item(), abs=1e-8)
    zs, _ = model(x)
    assert [tuple(z.shape[1:]) for z in zs] == model.z_shapes == [(2, 2, 2), (8, 1, 1)]
    assert torch.allclose(model.reverse(zs), x, atol=1e-10)


def test_identity_flow_bits_per_dim_closed_form():
    # A fresh su model is a pixel permutation (zero-init everything): log p(x) = log N(x; 0, I).
    model = build_model(_cfg(levels=2, depth=2, width=8), (3, 8, 8))
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4000, 3, 8, 8, generator=g) - 0.5
    with torch.no_grad():
        nll = -model.log_prob(x)
    d = 3 * 8 * 8
    exact = 0.5 * (x**2).flatten(1).sum(1) + 0.5 * d * math.log(2 * math.pi)
    assert torch.allclose(nll, exact, rtol=1e-5)
    # E||x||^2 / D = 1/12 for x ~ U[-0.5, 0.5): bpd = (1/24 + ln(2 pi)/2) / ln 2 + 8
    closed = (1 / 24 + 0.5 * math.log(2 * math.pi)) / math.log(2) + 8
    assert bits_per_dim(nll.mean().item(), d, 256) == pytest.approx(closed, abs=2e-4)


def test_su_model_parameter_counts_match_the_spec():
    # spec §3.1 [derived]: 7.06M at 32x32 L3 K6, 11.77M at 64x64 L3 K10
    assert parameter_count(build_model(RunConfig(), (3, 32, 32))) == 7_064_088
    assert parameter_count(Glow((3, 64, 64), GlowModel(depth=10), seed=0)) == 11_771_232


@pytest.mark.parametrize("perm", ["reverse", "shuffle", "invconv"])
@pytest.mark.parametrize("coupling", ["additive", "affine"])
def test_glow_samples_invert(perm, coupling):
    cfg = _cfg(levels=2, depth=2, width=8, permutation=perm, coupling=coupling)
    model = _randomise(build_model(cfg, (3, 8, 8)), 0.05)
    x = model.sample(5, 0.7, torch.Generator().manual_seed(0))
    assert x.shape == (5, 3, 8, 8)
    zs, _ = model(x)
    assert torch.allclose(model.reverse(zs), x, atol=1e-5)
