import math

import pytest
import torch
import torch.nn.functional as F

from kexue.nn.margin import (
    am_softmax,
    margin_loss,
    project_unit_norm_,
    scaled_cosine_softmax,
    simpler_a_psi,
    simpler_a_softmax,
)

torch.set_num_threads(1)


def random_cosines(b=16, n=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    cos = torch.rand(b, n, generator=g, dtype=torch.float64) * 2 - 1
    return cos, torch.randint(n, (b,), generator=g)


def test_am_softmax_without_margin_is_the_scaled_cosine_softmax():
    cos, target = random_cosines()
    plain = scaled_cosine_softmax(cos, target, s=30)
    assert torch.allclose(am_softmax(cos, target, s=30, m=0.0), plain)
    assert not torch.allclose(am_softmax(cos, target, s=30, m=0.35), plain)


def test_losses_against_hand_computed_values():
    cos = torch.tensor([[0.8, 0.1, -0.2], [0.3, 0.2, 0.5]], dtype=torch.float64)
    target = torch.tensor([0, 1])
    s, m = 30.0, 0.35

    def nll(target_logit, others):
        return math.log(math.exp(target_logit) + sum(math.exp(o) for o in others)) - target_logit

    softmax = (nll(s * 0.8, [s * 0.1, s * -0.2]) + nll(s * 0.2, [s * 0.3, s * 0.5])) / 2
    am = (nll(s * (0.8 - m), [s * 0.1, s * -0.2]) + nll(s * (0.2 - m), [s * 0.3, s * 0.5])) / 2
    # cos θ = 0.8: cos 4θ = 1 - 8·0.64 + 8·0.4096 = -0.8432 < 0.8, so ψ = -0.8432;
    # cos θ = 0.2: cos 4θ = 0.6928 > 0.2, so ψ = 0.2 (the plain softmax term).
    simpler = (nll(s * -0.8432, [s * 0.1, s * -0.2]) + nll(s * 0.2, [s * 0.3, s * 0.5])) / 2
    assert scaled_cosine_softmax(cos, target, s).item() == pytest.approx(softmax, rel=1e-12)
    assert am_softmax(cos, target, s, m).item() == pytest.approx(am, rel=1e-12)
    assert simpler_a_softmax(cos, target, s).item() == pytest.approx(simpler, rel=1e-12)


def test_psi_is_the_closed_form_below_cos_and_continuous():
    theta = torch.linspace(0, math.pi, 200_001, dtype=torch.float64)
    psi = simpler_a_psi(torch.cos(theta))
    assert torch.allclose(psi, torch.minimum(torch.cos(4 * theta), torch.cos(theta)), atol=1e-12)
    assert (psi <= torch.cos(theta) + 1e-12).all()
    # Continuous: |ψ'| ≤ 4 where it exists, so no step on the grid jumps by more than 4·Δθ.
    step = theta[1] - theta[0]
    assert psi.diff().abs().max() <= 4 * step * (1 + 1e-6)
    # And it really switches branch: strictly below cos θ somewhere, equal elsewhere.
    assert (psi < torch.cos(theta) - 0.1).any() and (psi == torch.cos(theta)).any()


def test_margin_penalises_the_target_only():
    cos, target = random_cosines()
    cos.requires_grad_(True)
    is_target = F.one_hot(target, cos.shape[1]).bool()
    for name in ("softmax", "am_softmax", "simpler_a_softmax"):
        (grad,) = torch.autograd.grad(margin_loss(name, cos, target), cos)
        # Cross-entropy gradient: positive on every non-target cosine.
        assert (grad[~is_target] > 0).all(), name
        if name != "simpler_a_softmax":  # ψ is not monotone in cos θ, so its sign varies
            assert (grad[is_target] <= 0).all(), name
    # A margin makes the loss larger than the plain softmax on the same cosines.
    plain = margin_loss("softmax", cos, target)
    assert margin_loss("am_softmax", cos, target) > plain
    assert margin_loss("simpler_a_softmax", cos, target) >= plain


def test_losses_stay_finite_when_the_target_dominates():
    cos = torch.tensor([[1.0, -1.0, -1.0]])
    target = torch.tensor([0])
    for name in ("softmax", "am_softmax", "simpler_a_softmax"):
        cos_ = cos.clone().requires_grad_(True)
        loss = margin_loss(name, cos_, target)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(cos_.grad).all(), name


def test_unknown_loss_is_rejected():
    cos, target = random_cosines()
    with pytest.raises(ValueError, match="unknown margin loss"):
        margin_loss("arcface", cos, target)


def test_class_vectors_have_unit_norm_after_every_step():
    torch.manual_seed(0)
    weight = torch.nn.Parameter(torch.empty(1000, 16))
    torch.nn.init.xavier_uniform_(weight)
    assert weight.norm(dim=1).max() < 0.3  # not normalised at init, as in Keras
    opt = torch.optim.Adam([weight], lr=1e-2, eps=1e-7)
    for _ in range(20):
        e = F.normalize(torch.randn(32, 16), dim=1)
        loss = am_softmax(e @ weight.T, torch.randint(1000, (32,)))
        opt.zero_grad()
        loss.backward()
        opt.step()
        project_unit_norm_(weight)
        assert torch.allclose(weight.norm(dim=1), torch.ones(1000), atol=1e-6)


def test_simpler_a_is_the_plain_softmax_while_target_angles_exceed_72_degrees():
    # cos 4θ ≥ cos θ for θ in [72°, 120°], so ψ = cos θ there: early in training, when target
    # cosines are near 0, simpler-A-Softmax and the scaled softmax give the same loss.
    cos, target = random_cosines()
    cos = cos * math.cos(math.radians(72))  # every |cos| ≤ cos 72°: θ in [72°, 108°]
    assert torch.equal(simpler_a_softmax(cos, target), scaled_cosine_softmax(cos, target))
    higher = cos.clone()
    higher[torch.arange(len(target)), target] = 0.8  # θ ≈ 37°: ψ = cos 4θ < cos θ
    assert simpler_a_softmax(higher, target) > scaled_cosine_softmax(higher, target)
