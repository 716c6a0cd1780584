"""f-divergences for variational divergence minimisation (f-GAN; kexue.fm/archives/6016).

D_f(P||Q) = int q f(p/q) = max_T E_P[T] - E_Q[f*(T)], with T = activation(V) keeping the critic
inside the conjugate's domain. Every row of Su's table (``SU``) and of the f-GAN paper's table
(``PAPER``, arXiv 1606.00709, Tables 1-2) is one ``Divergence``; a row is identified by its f(u)
(``key``), never by its name, because the two tables swap "Pearson" and "Neyman".

The losses use ``conjugate_of_activation``, the closed form of f*(activation(v)) of the spec
(§3.3): composing the two naively gives Inf in float32 at |v| ~ 17-20 for squared Hellinger, JS
and GAN, because 1 - e^{-20} rounds to 1.

All functions take and return torch tensors (any float dtype); ``perspective`` is q f(p/q)
written on log-densities, for quadrature.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

Fn = Callable[[torch.Tensor], torch.Tensor]
LOG2 = math.log(2.0)


def lambert_w_exp(y: torch.Tensor, iterations: int = 8) -> torch.Tensor:
    """W(e^y) for real y, without forming e^y (which overflows float32 for y > 88).

    Solves s + e^s = y for s = log W(e^y) by Newton's method. h(s) = e^s + s - y is increasing
    and convex, and the start (s = y for y < 1, log y otherwise) has h >= 0, so the iterates
    decrease monotonically to the root. Only the last step is recorded by autograd: at the root
    its derivative in y, 1 / (1 + e^s), is the exact d log W(e^y) / dy = 1 / (1 + W).
    """
    with torch.no_grad():
        s = torch.where(y < 1, y, torch.log(y.clamp(min=1)))
        for _ in range(iterations):
            s = s - (s.exp() + s - y) / (s.exp() + 1)
    s = s - (s.exp() + s - y) / (s.exp() + 1)
    return s.exp()


def _jeffrey_conjugate(t: torch.Tensor) -> torch.Tensor:
    """f*(t) = W(e^{1-t}) + 1/W(e^{1-t}) + t - 2 for f = (u-1) log u."""
    w = lambert_w_exp(1 - t)
    return w + 1 / w + t - 2


@dataclass(frozen=True)
class Interval:
    """A real interval; the ends are open unless marked closed (inf ends are always open)."""

    low: float = -math.inf
    high: float = math.inf
    closed_low: bool = False
    closed_high: bool = False

    def contains(self, t: torch.Tensor) -> torch.Tensor:
        above = t >= self.low if self.closed_low else t > self.low
        below = t <= self.high if self.closed_high else t < self.high
        return above & below

    def __str__(self) -> str:
        def end(x: float) -> str:
            return "∞" if x == math.inf else "-∞" if x == -math.inf else f"{x:.4g}"

        return (f"{'[' if self.closed_low else '('}{end(self.low)}, {end(self.high)}"
                f"{']' if self.closed_high else ')'}")


@dataclass(frozen=True)
class Divergence:
    """One row of a table: f, its conjugate, the critic's output activation and their composition.

    ``domain``: where the table's activation must land: f'(R+) for Su's table, dom f* for the
    paper's. ``f_at_one``: 0 for a divergence, -log 4 for the paper's GAN f. ``critical``:
    f'(1), the value of T where P = Q. The ``*_formula`` strings are for reports.
    """

    key: str  # identifies f(u): the same key means the same f in both tables
    name: str  # the name in its own table
    f: Fn
    conjugate: Fn
    activation: Fn
    conjugate_of_activation: Fn  # f*(activation(v)) in closed form, finite in float32
    perspective: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (log p, log q) -> q f(p/q)
    domain: Interval
    critical: float
    f_formula: str
    conjugate_formula: str
    activation_formula: str
    f_at_one: float = 0.0

    def critic_terms(self, v_real: torch.Tensor, v_fake: torch.Tensor):
        """T on real samples and f*(T) on generated ones; F = mean(T_real) - mean(f*(T_fake))."""
        return self.activation(v_real), self.conjugate_of_activation(v_fake)


def _xlogx(u):
    return torch.xlogy(u, u)


def _kl_persp(lp, lq):
    return lp.exp() * (lp - lq)


def _rkl_persp(lp, lq):
    return lq.exp() * (lq - lp)


def _chi2_persp(lp, lq):  # (u-1)^2: p^2/q - 2p + q
    return (2 * lp - lq).exp() - 2 * lp.exp() + lq.exp()


def _chi2_over_u_persp(lp, lq):  # (1-u)^2/u: q^2/p - 2q + p
    return (2 * lq - lp).exp() - 2 * lq.exp() + lp.exp()


def _hellinger_persp(lp, lq):
    return lp.exp() + lq.exp() - 2 * ((lp + lq) / 2).exp()


def _jeffrey_persp(lp, lq):
    return (lp.exp() - lq.exp()) * (lp - lq)


def _js_persp(lp, lq):  # the paper's (unscaled) JS: p log(2p/(p+q)) + q log(2q/(p+q))
    lm = torch.logaddexp(lp, lq) - LOG2
    return lp.exp() * (lp - lm) + lq.exp() * (lq - lm)


def _gan_persp(lp, lq):  # p log(p/(p+q)) + q log(q/(p+q))
    ls = torch.logaddexp(lp, lq)
    return lp.exp() * (lp - ls) + lq.exp() * (lq - ls)


def _tv_persp(lp, lq):
    return 0.5 * (lp.exp() - lq.exp()).abs()


def _f_js(u):
    return -(u + 1) * torch.log((1 + u) / 2) + _xlogx(u)


def _f_kl(u):
    return _xlogx(u)


def _f_rkl(u):
    return -torch.log(u)


def _f_chi2(u):
    return (u - 1) ** 2


def _f_chi2_over_u(u):
    return (1 - u) ** 2 / u


def _f_hellinger(u):
    return (u.sqrt() - 1) ** 2


def _f_jeffrey(u):
    return (u - 1) * torch.log(u)


REAL = Interval()
NEGATIVE = Interval(high=0.0)

# Su's table (kexue.fm/archives/6016), the critic T(x) = activation(x).
SU: dict[str, Divergence] = {d.key: d for d in [
    Divergence(
        "tv", "total variation", lambda u: 0.5 * (u - 1).abs(), lambda t: t,
        lambda x: 0.5 * torch.tanh(x), lambda x: 0.5 * torch.tanh(x), _tv_persp,
        Interval(-0.5, 0.5, True, True), 0.0, "½|u−1|", "t", "½ tanh x"),
    Divergence(
        "kl", "KL", _f_kl, lambda t: torch.exp(t - 1), lambda x: x, lambda x: torch.exp(x - 1),
        _kl_persp, REAL, 1.0, "u log u", "e^{t−1}", "x"),
    Divergence(
        "reverse_kl", "reverse KL", _f_rkl, lambda t: -1 - torch.log(-t), lambda x: -torch.exp(x),
        lambda x: -1 - x, _rkl_persp, NEGATIVE, -1.0, "−log u", "−1 − log(−t)", "−eˣ"),
    Divergence(
        "chi2_over_u", "Pearson χ²", _f_chi2_over_u, lambda t: 2 - 2 * torch.sqrt(1 - t),
        lambda x: -torch.expm1(x), lambda x: 2 - 2 * torch.exp(x / 2), _chi2_over_u_persp,
        Interval(high=1.0), 0.0, "(1−u)²/u", "2 − 2√(1−t)", "1 − eˣ"),
    Divergence(
        "chi2", "Neyman χ²", _f_chi2, lambda t: t**2 / 4 + t, lambda x: torch.exp(x) - 2,
        lambda x: torch.exp(2 * x) / 4 - 1, _chi2_persp, Interval(low=-2.0), 0.0,
        "(u−1)²", "t²/4 + t", "eˣ − 2"),
    Divergence(
        "squared_hellinger", "squared Hellinger", _f_hellinger, lambda t: t / (1 - t),
        lambda x: -torch.expm1(x), lambda x: torch.expm1(-x), _hellinger_persp,
        Interval(high=1.0), 0.0, "(√u − 1)²", "t/(1−t)", "1 − eˣ"),
    Divergence(
        "jeffrey", "Jeffrey", _f_jeffrey, _jeffrey_conjugate, lambda x: x, _jeffrey_conjugate,
        _jeffrey_persp, REAL, 0.0, "(u−1) log u", "W(e^{1−t}) + 1/W(e^{1−t}) + t − 2", "x"),
    Divergence(
        "js_half", "JS (½-scaled)", lambda u: _f_js(u) / 2,
        lambda t: -0.5 * torch.log(2 - torch.exp(2 * t)), lambda x: (LOG2 - F.softplus(-x)) / 2,
        lambda x: (F.softplus(x) - LOG2) / 2, lambda lp, lq: _js_persp(lp, lq) / 2,
        Interval(high=LOG2 / 2), 0.0,
        "−((u+1)/2) log((1+u)/2) + (u/2) log u", "−½ log(2 − e^{2t})",
        "(log 2)/2 − ½ log(1 + e^{−x})"),
]}

# The f-GAN paper's table: T = activation(V) with the paper's g_f.
PAPER: dict[str, Divergence] = {d.key: d for d in [
    Divergence(
        "kl", "KL", _f_kl, lambda t: torch.exp(t - 1), lambda v: v, lambda v: torch.exp(v - 1),
        _kl_persp, REAL, 1.0, "u log u", "exp(t−1)", "v"),
    Divergence(
        "reverse_kl", "reverse KL", _f_rkl, lambda t: -1 - torch.log(-t),
        lambda v: -torch.exp(-v), lambda v: v - 1, _rkl_persp, NEGATIVE, -1.0,
        "−log u", "−1 − log(−t)", "−exp(−v)"),
    Divergence(
        "chi2", "Pearson χ²", _f_chi2, lambda t: t**2 / 4 + t, lambda v: v,
        lambda v: v**2 / 4 + v, _chi2_persp, REAL, 0.0, "(u−1)²", "t²/4 + t", "v"),
    Divergence(
        "chi2_over_u", "Neyman χ²", _f_chi2_over_u, lambda t: 2 - 2 * torch.sqrt(1 - t),
        lambda v: -torch.expm1(-v), lambda v: 2 - 2 * torch.exp(-v / 2), _chi2_over_u_persp,
        Interval(high=1.0), 0.0, "(1−u)²/u", "2 − 2√(1−t)", "1 − exp(−v)"),
    Divergence(
        "squared_hellinger", "squared Hellinger", _f_hellinger, lambda t: t / (1 - t),
        lambda v: -torch.expm1(-v), lambda v: torch.expm1(v), _hellinger_persp,
        Interval(high=1.0), 0.0, "(√u − 1)²", "t/(1−t)", "1 − exp(−v)"),
    Divergence(
        "jeffrey", "Jeffrey", _f_jeffrey, _jeffrey_conjugate, lambda v: v, _jeffrey_conjugate,
        _jeffrey_persp, REAL, 0.0, "(u−1) log u", "W(e^{1−t}) + 1/W(e^{1−t}) + t − 2", "v"),
    Divergence(
        "js", "Jensen–Shannon", _f_js, lambda t: -torch.log(2 - torch.exp(t)),
        lambda v: LOG2 - F.softplus(-v), lambda v: F.softplus(v) - LOG2, _js_persp,
        Interval(high=LOG2), 0.0, "−(u+1) log((1+u)/2) + u log u", "−log(2 − eᵗ)",
        "log 2 − log(1 + exp(−v))"),
    Divergence(
        "gan", "GAN", lambda u: _xlogx(u) - (u + 1) * torch.log(u + 1),
        lambda t: -torch.log(1 - torch.exp(t)), lambda v: -F.softplus(-v), F.softplus,
        _gan_persp, NEGATIVE, -LOG2, "u log u − (u+1) log(u+1)", "−log(1 − eᵗ)",
        "−log(1 + exp(−v))", f_at_one=-math.log(4.0)),
]}

TABLES: dict[str, dict[str, Divergence]] = {"su": SU, "original": PAPER}


def get_divergence(recipe: str, key: str) -> Divergence:
    """The row ``key`` of the table of ``recipe`` (``su``: Su's, ``original``: the paper's)."""
    table = TABLES[recipe]
    if key not in table:
        raise KeyError(f"recipe {recipe!r} has no divergence {key!r}; "
                       f"choose one of {sorted(table)}")
    return table[key]
