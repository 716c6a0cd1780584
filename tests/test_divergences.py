"""E1 of fgan: every row of Su's table and of the f-GAN paper's table, checked numerically."""

import math

import numpy as np
import pytest
import torch
from scipy.special import lambertw

from kexue.nn.divergences import PAPER, SU, Interval, get_divergence, lambert_w_exp

ROWS = [pytest.param(d, id=f"su-{k}") for k, d in SU.items()] + [
    pytest.param(d, id=f"paper-{k}") for k, d in PAPER.items()]
U = torch.logspace(math.log10(0.05), math.log10(20.0), 60, dtype=torch.float64)


def f_prime(d, u):
    u = u.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(d.f(u).sum(), u)
    return g


def test_tables_hold_the_trained_divergences():
    assert sorted(SU) == sorted(["tv", "kl", "reverse_kl", "chi2_over_u", "chi2",
                                 "squared_hellinger", "jeffrey", "js_half"])
    assert sorted(PAPER) == sorted(["kl", "reverse_kl", "chi2", "chi2_over_u",
                                    "squared_hellinger", "jeffrey", "js", "gan"])
    with pytest.raises(KeyError, match="no divergence 'gan'"):
        get_divergence("su", "gan")


@pytest.mark.parametrize("d", ROWS)
def test_f_at_one(d):
    one = torch.tensor(1.0, dtype=torch.float64)
    assert d.f(one).item() == pytest.approx(d.f_at_one, abs=1e-15)


def test_gan_f_at_one_is_minus_log4_and_related_to_js():
    assert PAPER["gan"].f_at_one == pytest.approx(-math.log(4))
    # D_GAN = D_JS(paper) - log 4 = 2 JS - log 4; the paper's JS f is twice Su's
    assert torch.allclose(PAPER["gan"].f(U), PAPER["js"].f(U) - (U + 1) * math.log(2))
    assert torch.allclose(PAPER["js"].f(U), 2 * SU["js_half"].f(U))


@pytest.mark.parametrize("d", ROWS)
def test_f_is_convex(d):
    u = torch.linspace(0.02, 30.0, 3001, dtype=torch.float64)
    fu = d.f(u)
    second = fu[2:] - 2 * fu[1:-1] + fu[:-2]
    assert (second >= -1e-12).all()
    if d.key != "tv":  # strictly convex everywhere but TV
        assert (second > 0).all()


@pytest.mark.parametrize("d", ROWS)
def test_critical_value_is_f_prime_at_one(d):
    assert f_prime(d, torch.tensor([1.0], dtype=torch.float64)).item() == pytest.approx(
        d.critical, abs=1e-12) or d.key == "tv"  # TV has a kink at 1 (f'(1) taken as 0)
    assert d.domain.contains(torch.tensor(d.critical)) or d.key == "tv"


@pytest.mark.parametrize("d", ROWS)
def test_f_is_the_max_over_the_activation_range(d):
    """f(u) = max_t {tu - f*(t)} with t = activation(v), v on a dense grid (the t whose f*
    rounds to Inf in float64, next to an open end of the domain, left out)."""
    t = d.activation(torch.linspace(-40, 40, 80001, dtype=torch.float64))
    conj = d.conjugate(t)
    t, conj = t[torch.isfinite(conj)], conj[torch.isfinite(conj)]
    values = U[:, None] * t[None, :] - conj[None, :]
    best = values.max(dim=1).values
    assert torch.allclose(best, d.f(U), rtol=1e-5, atol=1e-5)


def _sup_over_positive_u(d, t):
    u = torch.logspace(-7, 5, 240001, dtype=torch.float64)
    return (t[:, None] * u[None, :] - d.f(u)[None, :]).max(dim=1).values


@pytest.mark.parametrize("d", ROWS)
def test_conjugate_is_the_sup_over_positive_u(d):
    t = d.activation(torch.linspace(-3, 3, 25, dtype=torch.float64))
    if d is PAPER["chi2"]:
        t = t[t >= -2]  # the paper's Pearson conjugate is the sup over all of R, see below
    assert torch.allclose(_sup_over_positive_u(d, t), d.conjugate(t), rtol=1e-6, atol=1e-6)


def test_paper_pearson_conjugate_holds_over_the_reals_only():
    """For f = (u-1)^2 the paper's f* = t^2/4 + t is sup over u in R; over u > 0 the sup is
    f(0+) * -1 = -1 for t < -2, and the identity activation reaches those t."""
    d = PAPER["chi2"]
    t = torch.tensor([-6.0, -4.0, -3.0, -2.5], dtype=torch.float64)
    over_positive = _sup_over_positive_u(d, t)
    assert torch.allclose(over_positive, torch.full_like(t, -1.0), atol=1e-6)
    assert (d.conjugate(t) > over_positive + 0.05).all()
    u_real = torch.linspace(-20, 20, 400001, dtype=torch.float64)
    over_reals = (t[:, None] * u_real[None, :] - d.f(u_real)[None, :]).max(dim=1).values
    assert torch.allclose(over_reals, d.conjugate(t), atol=1e-6)
    # identity activation: onto dom f* = R, not into f'(R+) = (-2, inf) as Su's e^x - 2 is
    f_prime_range = Interval(low=-2.0)
    assert not f_prime_range.contains(d.activation(torch.tensor(-5.0)))
    v = torch.linspace(-20, 20, 101, dtype=torch.float64)
    assert f_prime_range.contains(SU["chi2"].activation(v)).all()


@pytest.mark.parametrize("d", ROWS)
def test_fenchel_young(d):
    g = torch.Generator().manual_seed(0)
    u = torch.exp(3 * torch.randn(2000, generator=g, dtype=torch.float64))
    t = d.activation(4 * torch.randn(2000, generator=g, dtype=torch.float64))
    assert (d.f(u) + d.conjugate(t) - u * t >= -1e-10).all()
    if d.key != "tv":  # equality exactly at t = f'(u)
        t_star = f_prime(d, U)
        gap = d.f(U) + d.conjugate(t_star) - U * t_star
        assert torch.allclose(gap, torch.zeros_like(gap), atol=1e-9)


@pytest.mark.parametrize("d", ROWS)
def test_activation_maps_into_the_domain(d):
    v = torch.linspace(-20, 20, 4001, dtype=torch.float64)
    assert d.domain.contains(d.activation(v)).all()


@pytest.mark.parametrize("d", [pytest.param(d, id=k) for k, d in SU.items()])
def test_su_domain_is_the_range_of_f_prime(d):
    fp = f_prime(d, torch.logspace(-10, 7, 171, dtype=torch.float64))
    if d.key == "tv":
        fp = fp[fp != 0]  # the kink at u = 1
    assert d.domain.contains(fp).all()
    if math.isfinite(d.domain.low):
        assert fp.min().item() == pytest.approx(d.domain.low, abs=1e-3)
    if math.isfinite(d.domain.high):
        assert fp.max().item() == pytest.approx(d.domain.high, abs=1e-3)


@pytest.mark.parametrize("d", [pytest.param(d, id=k) for k, d in PAPER.items()])
def test_paper_domain_is_where_the_conjugate_is_finite(d):
    """Just inside the upper end of dom f* the sup over u > 0 is finite and equals f*; just
    outside it grows without bound (every paper row is unbounded below: only upper ends)."""
    assert d.domain.low == -math.inf
    if math.isinf(d.domain.high):
        return
    u = torch.logspace(-7, 8, 300001, dtype=torch.float64)
    t = torch.tensor([d.domain.high - 1e-3, d.domain.high + 1e-3], dtype=torch.float64)
    sup = (t[:, None] * u[None, :] - d.f(u)[None, :]).max(dim=1).values
    assert sup[0].item() == pytest.approx(d.conjugate(t[:1]).item(), rel=1e-4)
    assert sup[1].item() > 1e4


@pytest.mark.parametrize("d", ROWS)
def test_closed_form_equals_the_composition(d):
    v = torch.linspace(-12, 12, 2401, dtype=torch.float64)
    assert torch.allclose(d.conjugate_of_activation(v), d.conjugate(d.activation(v)),
                          rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("d", ROWS)
def test_closed_form_finite_in_float32(d):
    v = torch.linspace(-20, 20, 4001, dtype=torch.float32, requires_grad=True)
    t, conj = d.activation(v), d.conjugate_of_activation(v)
    assert torch.isfinite(t).all() and torch.isfinite(conj).all()
    (grad,) = torch.autograd.grad((t - conj).sum(), v)
    assert torch.isfinite(grad).all()


NAIVE_OVERFLOWS = [("su", "squared_hellinger"), ("paper", "squared_hellinger"), ("su", "js_half"),
                   ("paper", "js"), ("paper", "gan")]


@pytest.mark.parametrize("table,key", NAIVE_OVERFLOWS)
def test_naive_composition_is_not_finite_in_float32(table, key):
    d = (SU if table == "su" else PAPER)[key]
    v = torch.tensor([-20.0, 20.0])
    assert not torch.isfinite(d.conjugate(d.activation(v))).all()
    assert torch.isfinite(d.conjugate_of_activation(v)).all()


def test_lambert_w_matches_scipy():
    y = torch.linspace(-50, 80, 1301, dtype=torch.float64)
    expected = lambertw(np.exp(y.numpy())).real
    assert np.allclose(lambert_w_exp(y).numpy(), expected, rtol=1e-12)
    big = lambert_w_exp(torch.tensor([100.0, 300.0]))  # e^y overflows float32 here
    assert torch.isfinite(big).all()
    assert big.double().numpy() == pytest.approx(lambertw(np.exp([100.0, 300.0])).real, rel=1e-6)


def test_lambert_w_gradient():
    y = torch.linspace(-5, 10, 31, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambert_w_exp, (y,))


@pytest.mark.parametrize("d", ROWS)
def test_perspective_is_q_f_of_p_over_q(d):
    g = torch.Generator().manual_seed(1)
    log_p = -3 * torch.rand(500, generator=g, dtype=torch.float64)
    log_q = -3 * torch.rand(500, generator=g, dtype=torch.float64)
    expected = log_q.exp() * d.f((log_p - log_q).exp())
    assert torch.allclose(d.perspective(log_p, log_q), expected, rtol=1e-10, atol=1e-12)


def test_pearson_and_neyman_are_swapped_between_tables():
    """The same name, two different f: Su's Pearson is (1-u)^2/u, whose integral is Su's
    int (q-p)^2/p; the paper's Pearson is (u-1)^2, int (p-q)^2/q."""
    assert SU["chi2_over_u"].name == PAPER["chi2"].name == "Pearson χ²"
    assert SU["chi2"].name == PAPER["chi2_over_u"].name == "Neyman χ²"
    log_p = torch.tensor([-0.3, -2.0], dtype=torch.float64)
    log_q = torch.tensor([-1.0, -0.1], dtype=torch.float64)
    p, q = log_p.exp(), log_q.exp()
    assert torch.allclose(SU["chi2_over_u"].perspective(log_p, log_q), (q - p) ** 2 / p)
    assert torch.allclose(PAPER["chi2"].perspective(log_p, log_q), (p - q) ** 2 / q)


def test_su_worked_examples():
    """JS with a sigmoid critic is half the original GAN value plus log 2; squared Hellinger
    with Su's activation is -E_p e^D - E_q e^-D plus the dropped constant 2."""
    g = torch.Generator().manual_seed(2)
    x_real, x_fake = torch.randn(1000, generator=g), torch.randn(1000, generator=g) + 1
    js = SU["js_half"]
    t_real, conj_fake = js.critic_terms(x_real, x_fake)
    value = t_real.mean() - conj_fake.mean()
    gan = torch.log(torch.sigmoid(x_real)).mean() + torch.log(1 - torch.sigmoid(x_fake)).mean()
    assert value.item() == pytest.approx(0.5 * gan.item() + math.log(2), abs=1e-5)
    h = SU["squared_hellinger"]
    t_real, conj_fake = h.critic_terms(x_real, x_fake)
    value = t_real.mean() - conj_fake.mean()
    su_form = -torch.exp(x_real).mean() - torch.exp(-x_fake).mean()
    assert value.item() == pytest.approx(su_form.item() + 2, abs=1e-5)
