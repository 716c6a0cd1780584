"""Glow fidelity (issue 17): Su's Keras init, openai/glow's coupling net, Adamax and shift
augmentation, and the stripe diagnostic (the precision switch: test_glow.py)."""

import math

import pytest
import torch

import kexue.articles.glow.train as glow_train
from kexue.articles.glow.config import GlowModel, RunConfig
from kexue.articles.glow.model import build_model
from kexue.data.augment import random_shift
from kexue.metrics.images import alternation
from kexue.nn.flows import (
    ActNorm,
    AdditiveCoupling,
    Values,
    ZeroConvGain,
    coupling_net,
    data_dependent_init,
)

torch.set_num_threads(1)


def _convs(model):
    return [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]


def test_su_coupling_nets_start_as_keras_conv2d():
    """Su's Keras Conv2D: Glorot-uniform kernels, zero biases; the last conv zero (spec §3.1)."""
    model = build_model(RunConfig(), (3, 32, 32))  # Su's L3 K6 width 512
    net = model.levels[0][3].net  # level 0, first coupling: 6 -> 512 -> 512 -> 6 channels
    first, hidden, last = (m for m in net if isinstance(m, torch.nn.Conv2d))
    for conv, fan_in, fan_out in ((first, 9 * 6, 9 * 512), (hidden, 512, 512)):
        bound = math.sqrt(6 / (fan_in + fan_out))  # Keras's glorot_uniform limit
        assert conv.weight.abs().max().item() <= bound
        assert conv.weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.02)
        assert torch.count_nonzero(conv.bias) == 0
    assert first.weight.std().item() == pytest.approx(0.0207, abs=5e-4)  # issue 17: not 0.078
    assert torch.count_nonzero(last.weight) == 0 and torch.count_nonzero(last.bias) == 0
    # every hidden conv of the model, not only the first net
    hidden_convs = [c for c in _convs(model) if c.weight.abs().sum() > 0]
    assert len(hidden_convs) == 2 * 3 * 6 and all(torch.count_nonzero(c.bias) == 0
                                                  for c in hidden_convs)
    torch_init = build_model(RunConfig(model=GlowModel(net_init="torch")), (3, 32, 32))
    assert torch_init.levels[0][3].net[0].weight.std().item() == pytest.approx(0.078, abs=2e-3)


def test_openai_coupling_net_layers_and_init():
    net = coupling_net(6, 12, 64, "openai", actnorm=True, gain=True, logscale_factor=3.0)
    convs = _convs(net)
    assert all(c.bias is None for c in convs[:2])  # actnorm follows: no bias (tfops.conv2d)
    assert convs[0].weight.std().item() == pytest.approx(0.05, rel=0.05)  # N(0, 0.05^2)
    norms = [m.flow for m in net if isinstance(m, Values)]
    assert len(norms) == 2 and all(n.logscale_factor == 3.0 for n in norms)
    assert isinstance(net[-1], ZeroConvGain)
    # the net starts at zero output whatever its input, so the coupling is the identity
    x = torch.randn(16, 12, 8, 8)
    coupling = AdditiveCoupling(coupling_net(6, 6, 64, "openai", True, True, 3.0))
    assert data_dependent_init(coupling, x) == 2
    y, _ = coupling(x)
    assert torch.equal(y, x)
    # after the init each hidden actnorm hands on mean 0, std 1 per channel
    h = coupling.net[0](x[:, :6])
    h = coupling.net[1](h)
    assert torch.allclose(h.mean((0, 2, 3)), torch.zeros(64), atol=1e-5)
    assert torch.allclose(h.std((0, 2, 3), unbiased=False), torch.ones(64), atol=1e-3)


def test_logscale_factor_scales_the_stored_parameter_and_its_step():
    x = torch.randn(32, 4, 5, 5) * 3 + 1
    plain, scaled = ActNorm(4, "data"), ActNorm(4, "data", 3.0)
    data_dependent_init(plain, x)
    data_dependent_init(scaled, x)
    # the same function at init; the stored log-scale is a third, its gradient three times
    assert torch.allclose(plain(x)[0], scaled(x)[0], atol=1e-5)
    assert torch.allclose(scaled.log_scale * 3, plain.log_scale)
    for layer in (plain, scaled):
        layer(x)[1].sum().backward()
    assert torch.allclose(scaled.log_scale.grad, 3 * plain.log_scale.grad)
    gain = ZeroConvGain(2, 3, logscale_factor=3.0)
    with torch.no_grad():
        gain.conv.bias.fill_(1.0)
        gain.logs.fill_(0.1)
    out = gain(torch.zeros(1, 2, 4, 4))
    assert torch.allclose(out, torch.full_like(out, math.exp(0.3)))


def test_openai_adamax_matches_openai_update_rule():
    """openai/glow optim.adamax: beta2 = 1 - 1/train_its, step lr sqrt(1 - beta2^t)/(1 -
    beta1^t) * m1 / (max(beta2 m2, |g|) + eps), with the linear warm-up on top."""
    assert glow_train.openai_beta2(50_000, 512) == pytest.approx(1 - 1 / 98)  # 8 GPUs x 64
    cfg = RunConfig(optimiser="adamax_openai", lr=1e-3, warmup_steps=3, batch_size=32)
    n_train = 3200  # 100 steps a pass: beta2 = 0.99
    w = torch.nn.Parameter(torch.zeros(5))
    opt = glow_train._optimiser(cfg, [w], n_train)
    grads = torch.randn(20, 5, generator=torch.Generator().manual_seed(0))
    ref, m1, m2 = torch.zeros(5, dtype=torch.float64), 0, 0
    beta1, beta2 = 0.9, 0.99
    for step, g in enumerate(grads):
        for group in opt.param_groups:
            group["lr"] = cfg.lr * glow_train._lr_factor(cfg, opt, step)
        w.grad = g.clone()
        opt.step()
        t = step + 1
        g = g.double()
        m1 = beta1 * m1 + (1 - beta1) * g
        m2 = torch.maximum(beta2 * torch.as_tensor(m2), g.abs())
        alpha = cfg.lr * min(1.0, t / 3) * math.sqrt(1 - beta2**t) / (1 - beta1**t)
        ref = ref - alpha * m1 / (m2 + 1e-8)
    assert torch.allclose(w.detach().double(), ref, rtol=1e-4, atol=1e-9)
    # PyTorch's own Adamax (beta2 0.999, no sqrt factor) takes visibly different steps
    assert glow_train._lr_factor(RunConfig(optimiser="adamax"), opt, 0) == 1.0


def test_random_shift_translates_each_image_within_ten_percent():
    ramp = (torch.arange(32) * 8).to(torch.uint8)
    k = torch.stack([ramp.view(1, 32).expand(32, 32), ramp.view(32, 1).expand(32, 32)])
    k = k.unsqueeze(0).expand(500, 2, 32, 32).contiguous()  # channel 0: columns, 1: rows
    g = torch.Generator().manual_seed(0)
    assert torch.equal(random_shift(k, 0.0, g), k)  # no shift: the images, exactly
    y = random_shift(k, 0.1, torch.Generator().manual_seed(1))
    assert y.dtype == torch.uint8 and y.shape == k.shape
    # away from the repeated edges a shift s moves the ramp by 8 s levels
    dx = (k[:, 0, :, 8:24].float() - y[:, 0, :, 8:24].float()).mean((1, 2)) / 8
    dy = (k[:, 1, 8:24, :].float() - y[:, 1, 8:24, :].float()).mean((1, 2)) / 8
    for d in (dx, dy):
        assert d.abs().max() <= 3.2 + 1 / 8 and d.abs().max() > 2.9  # +-10 % of 32 pixels
        assert abs(d.mean()) < 0.3
    assert (dx - dy).abs().max() > 1  # the two axes draw their own shifts
    # an integer shift by one column repeats the edge column (Keras fill_mode 'nearest')
    from kexue.data.augment import _shift_axis

    x = k[:2].double()
    one = _shift_axis(x, torch.tensor([1.0, -1.0], dtype=torch.float64), 3)
    assert torch.equal(one[0, :, :, 1:], x[0, :, :, :-1]) and torch.equal(one[0, ..., 0],
                                                                        x[0, ..., 0])
    assert torch.equal(one[1, :, :, :-1], x[1, :, :, 1:])
    # the same generator state gives the same augmentation (resumable runs)
    assert torch.equal(random_shift(k[:4], 0.1, torch.Generator().manual_seed(1)),
                       random_shift(k[:4], 0.1, torch.Generator().manual_seed(1)))


def test_alternation_measures_vertical_stripes():
    stripes = torch.tensor([0.3, -0.1] * 8).view(1, 1, 1, 16).expand(2, 3, 16, 16)
    assert alternation(stripes, -1) == pytest.approx(0.2)
    assert alternation(stripes, -2) == pytest.approx(0.0, abs=1e-7)
    smooth = torch.linspace(-0.5, 0.5, 16).view(1, 1, 1, 16).expand(2, 3, 16, 16)
    # a ramp alternates by half its step between columns (1/15 here): small, but not 0
    assert alternation(smooth, -1) == pytest.approx(1 / 30, rel=1e-5)
    with pytest.raises(ValueError):
        alternation(stripes, 1)

