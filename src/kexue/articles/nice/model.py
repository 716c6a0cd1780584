"""The NICE flow: the model only (no I/O)."""

from __future__ import annotations

import torch

from kexue.nn import keras_init
from kexue.nn.flows import (
    AdditiveCoupling,
    Deinterleave,
    ExpScale,
    FlowSequential,
    Reverse,
    gaussian_log_prob,
    logistic_log_prob,
    mlp,
)


class Nice(torch.nn.Module):
    """``couplings`` additive couplings (MLP ``depth`` x ``hidden``) and a diagonal exp-scale.

    ``su`` (Su's Keras model): ReLU on the coupling net's output, h2 = x2 - m(x1), Gaussian
    prior, Keras initialisation. ``original`` (the paper): linear output, h2 = x2 + m(x1),
    logistic prior.

    Both reverse the dims and split them even/odd before each coupling. The same bijection runs
    here on contiguous halves: the dims are deinterleaved once at the input (which commutes with
    the reversals) and interleaved back before the scale, so no coupling copies strided halves.
    ``forward``/``reverse`` are the whole flow; ``flow`` holds its parameters (state-dict keys
    as when every coupling split even/odd itself)."""

    def __init__(self, dims: int, couplings: int, hidden: int, depth: int, recipe: str,
                 scale_init_std: float):
        super().__init__()
        if dims % 2:
            raise ValueError(f"NICE splits the dims in two halves: {dims} is odd")
        su = recipe == "su"
        layers = []
        for _ in range(couplings):
            net = mlp(dims // 2, dims // 2, hidden, depth, out_act=su)
            # Reverse then split: consecutive couplings update alternating halves.
            layers += [Reverse(), AdditiveCoupling(net, "half", sign=-1.0 if su else 1.0)]
        layers.append(ExpScale(dims, init_std=scale_init_std))
        self.flow = FlowSequential(*layers)
        self.layout = Deinterleave()
        keras_init(self)  # Su's Keras Dense layers
        self.prior = "gaussian" if su else "logistic"
        self.dims = dims

    def _couplings(self) -> list[torch.nn.Module]:
        """The reversals and couplings: every layer but the final scale."""
        return list(self.flow)[:-1]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x -> (z, logdet). Reversals and additive couplings have unit Jacobians: the log-det
        is the scale's alone."""
        h, _ = self.layout(x)
        for layer in self._couplings():
            h, _ = layer(h)
        return self.flow[-1](self.layout.reverse(h))

    def reverse(self, z: torch.Tensor) -> torch.Tensor:
        h, _ = self.layout(self.flow[-1].reverse(z))
        for layer in reversed(self._couplings()):
            h = layer.reverse(h)
        return self.layout.reverse(h)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        z, logdet = self(x)
        lp = gaussian_log_prob(z) if self.prior == "gaussian" else logistic_log_prob(z)
        return lp + logdet

    @torch.no_grad()
    def sample(self, n: int, temperature: float, generator: torch.Generator) -> torch.Tensor:
        device = next(self.parameters()).device
        if self.prior == "gaussian":
            z = torch.randn(n, self.dims, generator=generator)
        else:  # inverse CDF of the standard logistic
            u = torch.rand(n, self.dims, generator=generator).clamp(1e-6, 1 - 1e-6)
            z = torch.log(u) - torch.log1p(-u)
        # Temperature multiplies z before the inverse, on top of the learned scales.
        return self.reverse(z.to(device) * temperature)


def build_model(dims: int, cfg) -> Nice:
    """The model of a RunConfig, initialised from its seed."""
    torch.manual_seed(cfg.seed)
    m = cfg.model
    return Nice(dims, m.couplings, m.hidden, m.depth, cfg.recipe, m.scale_init_std)
