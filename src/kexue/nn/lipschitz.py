"""Lipschitz constraints: spectral normalisation (two recipes), the spectral-norm penalty (SNR),
gradient penalties, and measured Lipschitz quantities of a network.

* ``spectral_norm(module, "original")`` is PyTorch's own parametrisation (Miyato et al. 2018:
  one power iteration per call, persistent u, no gradient through u and v).
* ``spectral_norm(module, "su")`` is Su's recipe (kexue.fm/archives/6051): five power iterations
  from a vector of ones on every forward pass, differentiable, no state; on a 1-D weight (BN's
  γ) it gives exactly γ/‖γ‖₂.
* ``SpectralPenalty``: (λ/2)·Σ σ(W)², one persistent power iteration per call (Yoshida & Miyato).
* ``gradient_penalty``: WGAN-GP's two-sided λ(‖∇f‖−1)² or Su's one-sided λ·relu(‖∇f‖−1)².
* ``lipschitz_bound``: Π of the layers' exact operator norms (convolutions by power iteration
  on the conv operator itself) and, separately, the reshaped-kernel *proxy*, which is not a
  bound; ``input_gradient_norms``: the empirical lower bound ‖∇ₓ f‖.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

Recipe = Literal["su", "original"]

# K.l2_normalize's epsilon in Su's Keras code: x / sqrt(max(Σx², 1e-12))
_NORMALISE_EPS = 1e-12


def _normalise(x: torch.Tensor) -> torch.Tensor:
    return x / torch.sqrt(torch.clamp((x * x).sum(), min=_NORMALISE_EPS))


def _as_matrix(weight: torch.Tensor, dim: int) -> torch.Tensor:
    """(out, everything else). A 1-D weight (BN's γ) is a (C, 1) matrix: Keras reshapes γ to
    (1, C) with C as its *output* side, so u (the input side) has length 1."""
    if weight.ndim == 1:
        return weight.reshape(-1, 1)
    if dim != 0:
        weight = weight.movedim(dim, 0)
    return weight.reshape(weight.shape[0], -1)


def su_sigma(weight: torch.Tensor, iterations: int = 5, dim: int = 0) -> torch.Tensor:
    """σ by Su's power iteration: u = ones on the input side, then ``iterations`` times
    v = normalise(W u), u = normalise(Wᵀ v); σ = vᵀ W u. Differentiable throughout."""
    w = _as_matrix(weight, dim)
    u = torch.ones(w.shape[1], dtype=w.dtype, device=w.device)
    for _ in range(iterations):
        v = _normalise(w @ u)
        u = _normalise(w.T @ v)
    return v @ w @ u


class SuSpectralNorm(nn.Module):
    """Parametrisation W -> W / σ(W), σ from :func:`su_sigma`. No buffers: nothing persists
    between forward passes."""

    def __init__(self, iterations: int = 5, dim: int = 0):
        super().__init__()
        self.iterations = iterations
        self.dim = dim

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight / su_sigma(weight, self.iterations, self.dim)


def _output_dim(module: nn.Module) -> int:
    return 1 if isinstance(module, (nn.ConvTranspose1d, nn.ConvTranspose2d,
                                    nn.ConvTranspose3d)) else 0


def spectral_norm(module: nn.Module, recipe: Recipe, name: str = "weight",
                  iterations: int | None = None) -> nn.Module:
    """Normalise ``module.<name>`` by its largest singular value, with the given recipe.

    ``iterations`` defaults to each recipe's own: 5 for ``su``, 1 for ``original``.
    """
    dim = _output_dim(module)
    if recipe == "original":
        return nn.utils.parametrizations.spectral_norm(
            module, name, n_power_iterations=iterations or 1, dim=dim)
    if recipe == "su":
        parametrize.register_parametrization(module, name, SuSpectralNorm(iterations or 5, dim))
        return module
    raise ValueError(f"unknown spectral-norm recipe {recipe!r}; choose 'su' or 'original'")


class SpectralPenalty(nn.Module):
    """SNR (Yoshida & Miyato 2017): (λ/2)·Σ_l σ(W_l)², conv kernels reshaped to (out, in·k·k).

    Each call runs one power iteration per weight from the persisted u (a buffer, so that it is
    checkpointed) without gradient; σ = uᵀ W v then has gradient u vᵀ with respect to W.
    """

    def __init__(self, weights: dict[str, torch.Tensor], generator: torch.Generator | None = None):
        super().__init__()
        self._weights = dict(weights)
        self._buffer_names = {}
        for i, (name, w) in enumerate(self._weights.items()):
            rows = _as_matrix(w.detach(), 0).shape[0]
            u = torch.randn(rows, generator=generator, dtype=w.dtype).to(w.device)
            buffer = f"u{i}"
            self.register_buffer(buffer, _normalise(u))
            self._buffer_names[name] = buffer

    @classmethod
    def for_model(cls, model: nn.Module, generator: torch.Generator | None = None):
        """Every conv and linear weight of ``model``."""
        weights = {n: m.weight for n, m in model.named_modules()
                   if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))}
        return cls(weights, generator)

    def sigmas(self) -> dict[str, torch.Tensor]:
        out = {}
        for name, w in self._weights.items():
            m = _as_matrix(w, 0)
            u_buf = getattr(self, self._buffer_names[name])
            with torch.no_grad():
                v = _normalise(m.T @ u_buf)
                u_buf.copy_(_normalise(m @ v))
            out[name] = u_buf @ m @ v
        return out

    def forward(self, lam: float) -> torch.Tensor:
        return 0.5 * lam * sum(s * s for s in self.sigmas().values())


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, weight: float = 10.0,
                     one_sided: bool = False,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """λ·mean((‖∇f(x̂)‖ − 1)²) (two-sided, Gulrajani et al.) or λ·mean(relu(‖∇f(x̂)‖ − 1)²)
    (Su's one-sided form), x̂ = εx_real + (1−ε)x_fake with ε ~ U[0, 1] per sample.

    ‖g‖ = √(Σg² + 1e-9) as in Su's script. The graph is kept (create_graph), so the penalty
    back-propagates into the critic (double back-propagation).
    """
    eps = torch.rand((real.shape[0],) + (1,) * (real.ndim - 1), generator=generator,
                     dtype=real.dtype).to(real.device)
    x = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    norm = torch.sqrt(grad.flatten(1).pow(2).sum(1) + 1e-9)
    excess = F.relu(norm - 1) if one_sided else norm - 1
    return weight * excess.pow(2).mean()


def input_gradient_norms(f, x: torch.Tensor, labels: torch.Tensor | None = None,
                         batch_size: int = 256) -> torch.Tensor:
    """‖∇ₓ f(x)‖₂ per sample: of the scalar output (a critic), or of the logit of ``labels``.
    Its maximum over inputs is a lower bound on f's Lipschitz constant."""
    norms = []
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size].detach().clone().requires_grad_(True)
        out = f(xb)
        if labels is not None:
            out = out.gather(1, labels[start:start + batch_size].view(-1, 1))
        (grad,) = torch.autograd.grad(out.sum(), xb)
        norms.append(grad.flatten(1).norm(dim=1))
    return torch.cat(norms)


def reshaped_sigma(weight: torch.Tensor, dim: int = 0) -> float:
    """σ of the kernel reshaped to (out, in·k·k): exact for a dense layer; for a convolution
    only a proxy (the conv operator's norm can be larger, by up to √(patches per input))."""
    return float(torch.linalg.matrix_norm(_as_matrix(weight.detach(), dim), ord=2))


def _conv_functions(conv: nn.Module):
    if isinstance(conv, nn.Conv1d):
        return F.conv1d, F.conv_transpose1d
    if isinstance(conv, nn.Conv2d):
        return F.conv2d, F.conv_transpose2d
    raise TypeError(f"conv_operator_norm takes a Conv1d or Conv2d, not {type(conv).__name__}")


def conv_operator_norm(conv: nn.Conv1d | nn.Conv2d, input_shape: tuple[int, ...],
                       max_iterations: int = 5000, tol: float = 1e-6,
                       generator: torch.Generator | None = None) -> float:
    """The operator norm of the linear map x ↦ conv(x) (bias dropped) on inputs of shape
    ``input_shape`` (C, L) or (C, H, W), with the layer's padding and stride: power iteration on
    AᵀA (the conv, then its transpose) in float64, stopped when the Rayleigh quotient λ's
    residual ‖AᵀAx − λx‖ is below ``tol``·λ; returns √λ."""
    fwd, bwd = _conv_functions(conv)
    if conv.padding_mode != "zeros":
        raise ValueError("conv_operator_norm supports zero padding only")
    kw = {"stride": conv.stride, "padding": conv.padding, "dilation": conv.dilation,
          "groups": conv.groups}
    w = conv.weight.detach().double()
    x = torch.randn((1, *input_shape), generator=generator, dtype=torch.float64).to(w.device)
    x = x / x.norm()
    with torch.no_grad():
        pad = _output_padding(x.shape, fwd(x, w, **kw).shape, conv)
        for _ in range(max_iterations):
            y = bwd(fwd(x, w, **kw), w, output_padding=pad, **kw)
            lam = float((x * y).sum())
            if float((y - lam * x).norm()) <= tol * lam:
                break
            x = y / y.norm()
    return math.sqrt(lam)


def _output_padding(in_shape, out_shape, conv) -> tuple[int, ...]:
    """The transpose conv's output_padding that gives back exactly ``in_shape``."""
    pads = []
    for i, (n_in, n_out) in enumerate(zip(in_shape[2:], out_shape[2:])):
        s, p, d, k = conv.stride[i], conv.padding[i], conv.dilation[i], conv.kernel_size[i]
        pads.append(n_in - ((n_out - 1) * s - 2 * p + d * (k - 1) + 1))
    return tuple(pads)


def layer_inputs(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """The input shape (without batch) of every conv and linear layer on one dummy input."""
    shapes: dict[str, tuple[int, ...]] = {}

    def recorder(name):
        def hook(module, inputs, output):
            shapes.setdefault(name, tuple(inputs[0].shape[1:]))
        return hook

    hooks = [m.register_forward_hook(recorder(name)) for name, m in model.named_modules()
             if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))]
    try:
        with torch.no_grad():
            p = next(model.parameters())
            model(torch.zeros((1, *input_shape), dtype=p.dtype, device=p.device))
    finally:
        for h in hooks:
            h.remove()
    return shapes


def lipschitz_bound(model: nn.Module, input_shape: tuple[int, ...]) -> dict:
    """Per-layer σ and their products, for a chain of conv/linear layers joined by 1-Lipschitz
    maps (ReLU, max-pooling without overlap, average pooling): the caller vouches for that.

    ``bound``: Π exact operator norms (dense: matrix 2-norm; conv: :func:`conv_operator_norm`),
    an upper bound on the Lipschitz constant of the logit vector. ``proxy``: Π σ of the
    reshaped kernels, which is *not* a bound. Uses the effective (possibly normalised) weights;
    call in eval mode, so that PyTorch's spectral norm does not advance its u.
    """
    was_training = model.training
    model.eval()
    try:
        shapes = layer_inputs(model, input_shape)
        modules = dict(model.named_modules())
        layers = []
        for name, shape in shapes.items():
            m = modules[name]
            with torch.no_grad():
                weight = m.weight.detach()
            exact = (reshaped_sigma(weight) if isinstance(m, nn.Linear)
                     else conv_operator_norm(m, shape))
            layers.append({"layer": name, "exact": exact, "reshaped": reshaped_sigma(weight)})
    finally:
        model.train(was_training)
    return {"bound": math.prod(x["exact"] for x in layers),
            "proxy": math.prod(x["reshaped"] for x in layers), "layers": layers}
