"""Flow building blocks shared by NICE and Glow.

Every invertible layer has ``forward(x) -> (y, logdet)`` (data -> latent, logdet per sample,
shape (B,)) and ``reverse(y) -> x``. Layers work on vectors (B, D) and on images (B, C, H, W);
"channels" means dim 1 in both cases.

Permutations: ``Reverse``, ``Shuffle`` (fixed random), ``Deinterleave`` (even, then odd
channels), ``InvConvLU`` (Glow's 1x1 conv).
Couplings: ``AdditiveCoupling`` (NICE), ``AffineCoupling`` (RealNVP/Glow), with ``mlp`` or
``coupling_net`` (zero-initialised last conv; Keras/openai init, openai's inner actnorm
(``Values``) and output gain (``ZeroConvGain``) as switches). Scalings: ``ExpScale`` (NICE),
``ActNorm`` (zero or data-dependent init, see ``data_dependent_init``; openai's log-scale
factor). Multi-scale: ``Squeeze`` and
``ConditionalSplit`` (the split with the conditional prior). Densities and units:
``gaussian_log_prob``, ``logistic_log_prob`` (bits/dim: ``kexue.metrics.likelihood``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from kexue.nn import keras_init


def _spatial(x: torch.Tensor) -> int:
    """Number of positions sharing one per-channel parameter (1 for vectors, H*W for images)."""
    return x[0, 0].numel()


class FlowSequential(nn.Sequential):
    def forward(self, x):
        logdet = x.new_zeros(x.shape[0])
        for layer in self:
            x, ld = layer(x)
            logdet = logdet + ld
        return x, logdet

    def reverse(self, z):
        for layer in reversed(self):
            z = layer.reverse(z)
        return z


class Reverse(nn.Module):
    """Reverse the channel order (NICE, RealNVP): a permutation, so logdet 0."""

    def forward(self, x):
        return x.flip(1), x.new_zeros(x.shape[0])

    def reverse(self, y):
        return y.flip(1)


class Shuffle(nn.Module):
    """A fixed random channel permutation, drawn once from ``seed`` and saved as a buffer."""

    def __init__(self, channels: int, seed: int = 0):
        super().__init__()
        perm = torch.randperm(channels, generator=torch.Generator().manual_seed(seed))
        self.register_buffer("perm", perm)
        self.register_buffer("inverse", torch.argsort(perm))

    def forward(self, x):
        return x[:, self.perm], x.new_zeros(x.shape[0])

    def reverse(self, y):
        return y[:, self.inverse]


def split_channels(x: torch.Tensor, mode: str):
    """``half``: first/second half of the channels; ``interleave``: even/odd channels."""
    if mode == "half":
        return x.chunk(2, dim=1)
    if mode == "interleave":
        return x[:, 0::2], x[:, 1::2]
    raise ValueError(f"unknown split mode {mode!r}")


def merge_channels(a: torch.Tensor, b: torch.Tensor, mode: str) -> torch.Tensor:
    if mode == "half":
        return torch.cat([a, b], dim=1)
    # interleave: stack along a new last axis of the channel dim, then flatten it back
    return torch.stack([a, b], dim=2).flatten(1, 2)


class Deinterleave(nn.Module):
    """The even channels, then the odd ones: (x0, x1, x2, x3, ...) -> (x0, x2, ..., x1, x3, ...);
    an even channel count.

    A fixed permutation (logdet 0). After it an ``interleave`` split is a ``half`` split of
    contiguous halves, and for an even channel count it commutes with :class:`Reverse`: a chain
    of reverse + interleaved couplings equals deinterleave, the same chain with halves, and the
    inverse at the end, without the strided copies of every split and merge (NICE)."""

    def forward(self, x):
        return torch.cat(split_channels(x, "interleave"), dim=1), x.new_zeros(x.shape[0])

    def reverse(self, y):
        return merge_channels(*y.chunk(2, dim=1), "interleave")


class AdditiveCoupling(nn.Module):
    """x = (x1, x2) -> (x1, x2 + sign * net(x1)); unit Jacobian, so logdet 0.

    NICE as Su wrote it uses ``sign=-1`` in the encoder direction (the generator then adds the
    net's ReLU output, which biases samples towards positive pixels); the paper uses +1.
    """

    def __init__(self, net: nn.Module, split: str = "half", sign: float = 1.0):
        super().__init__()
        self.net, self.split, self.sign = net, split, sign

    def forward(self, x):
        x1, x2 = split_channels(x, self.split)
        y2 = x2 + self.sign * self.net(x1)
        return merge_channels(x1, y2, self.split), x.new_zeros(x.shape[0])

    def reverse(self, y):
        y1, y2 = split_channels(y, self.split)
        x2 = y2 - self.sign * self.net(y1)
        return merge_channels(y1, x2, self.split)


class ExpScale(nn.Module):
    """NICE's final diagonal scaling z = exp(s) * h, one s per channel: logdet = sum(s)."""

    def __init__(self, channels: int, init_std: float = 0.0):
        super().__init__()
        self.log_scale = nn.Parameter(torch.randn(channels) * init_std)

    def _shape(self, x):
        return self.log_scale.view(1, -1, *([1] * (x.dim() - 2)))

    def forward(self, x):
        logdet = self.log_scale.sum() * _spatial(x)
        return x * torch.exp(self._shape(x)), logdet.expand(x.shape[0])

    def reverse(self, y):
        return y * torch.exp(-self._shape(y))


def mlp(d_in: int, d_out: int, hidden: int, depth: int, out_act: bool) -> nn.Sequential:
    """``depth`` hidden ReLU layers of width ``hidden``; optional ReLU on the output."""
    layers, d = [], d_in
    for _ in range(depth):
        layers += [nn.Linear(d, hidden), nn.ReLU()]
        d = hidden
    layers.append(nn.Linear(d, d_out))
    if out_act:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


LOG_2PI = math.log(2 * math.pi)


def gaussian_log_prob(z: torch.Tensor, mean=None, log_std=None) -> torch.Tensor:
    """log N(z; mean, exp(log_std)^2), summed over all non-batch dims."""
    if mean is not None:
        z = (z - mean) * torch.exp(-log_std)
    lp = -0.5 * (z**2 + LOG_2PI)
    if log_std is not None:
        lp = lp - log_std
    return lp.flatten(1).sum(1)


def logistic_log_prob(z: torch.Tensor) -> torch.Tensor:
    """Standard logistic density, in the softplus form that cannot overflow."""
    return -(F.softplus(z) + F.softplus(-z)).flatten(1).sum(1)


# ---------------------------------------------------------------- Glow / RealNVP blocks


class ActNorm(nn.Module):
    """Per-channel affine y = (x + bias) * exp(log_scale): logdet = H*W*sum(log_scale).

    ``init="zero"`` starts as the identity (Su's code). ``init="data"`` is Glow's data-dependent
    init: :func:`data_dependent_init` sets bias/scale so that the init batch leaves with mean 0
    and std 1 per channel. ``initialized`` is a buffer, so a loaded model is never re-initialised.
    """

    def __init__(self, channels: int, init: str = "zero", logscale_factor: float = 1.0):
        super().__init__()
        if init not in ("zero", "data"):
            raise ValueError(f"actnorm init must be 'zero' or 'data', not {init!r}")
        self.bias = nn.Parameter(torch.zeros(channels))
        # the parameter is log-scale / logscale_factor (openai's 3: a 3x larger step for it)
        self.log_scale = nn.Parameter(torch.zeros(channels))
        self.logscale_factor = logscale_factor
        self.register_buffer("initialized", torch.tensor(init == "zero"))
        self._pending = False  # set only inside data_dependent_init

    def _view(self, v, x):
        return v.view(1, -1, *([1] * (x.dim() - 2)))

    def _log_s(self):
        return self.log_scale * self.logscale_factor

    @torch.no_grad()
    def _init_from(self, x):
        dims = [d for d in range(x.dim()) if d != 1]
        mean, std = x.mean(dims), x.std(dims, unbiased=False)
        self.bias.copy_(-mean)
        self.log_scale.copy_(-torch.log(std + 1e-6) / self.logscale_factor)
        self.initialized.fill_(True)
        self._pending = False

    def forward(self, x):
        if self._pending:
            self._init_from(x)
        log_s = self._log_s()
        y = (x + self._view(self.bias, x)) * torch.exp(self._view(log_s, x))
        return y, (log_s.sum() * _spatial(x)).expand(x.shape[0])

    def reverse(self, y):
        return y * torch.exp(-self._view(self._log_s(), y)) - self._view(self.bias, y)


class Values(nn.Module):
    """A flow layer used as a plain layer (its logdet dropped): the actnorm inside openai's
    coupling networks, which need not be invertible."""

    def __init__(self, flow: nn.Module):
        super().__init__()
        self.flow = flow

    def forward(self, x):
        return self.flow(x)[0]


@torch.no_grad()
def data_dependent_init(model: nn.Module, x: torch.Tensor) -> int:
    """Initialise every not-yet-initialised data-init ActNorm of ``model`` from one forward pass
    of ``x`` (in order, so each layer sees the output of already-initialised layers).

    Returns how many layers were initialised (0 for a loaded or zero-init model)."""
    pending = [m for m in model.modules() if isinstance(m, ActNorm) and not bool(m.initialized)]
    for m in pending:
        m._pending = True
    try:
        if pending:
            model(x)
    finally:
        for m in pending:
            m._pending = False
    return len(pending)


def _channel_matmul(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """y[:, i] = sum_j w[i, j] x[:, j]: a 1x1 convolution on images, a matmul on vectors.

    A matmul rather than ``conv2d``: cuDNN convolutions may run in TF32 on GPUs, and the
    log-det sum(log_s) is exact only for the matrix that is actually applied."""
    if x.dim() == 2:
        return F.linear(x, w)
    return torch.einsum("ij,bj...->bi...", w, x)


class InvConvLU(nn.Module):
    """Glow's invertible 1x1 convolution, W = P L (U + diag(sign_s * exp(log_s))).

    W starts as a random orthogonal matrix (QR of a Gaussian, drawn from ``seed``). P and
    sign_s are fixed buffers; L is unit lower-triangular and U strictly upper-triangular, so
    log|det W| = sum(log_s) is exact and costs nothing: logdet = H*W*sum(log_s).
    """

    def __init__(self, channels: int, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        w0 = torch.linalg.qr(torch.randn(channels, channels, generator=g, dtype=torch.float64))[0]
        p, lower, upper = torch.linalg.lu(w0)
        s = torch.diagonal(upper)
        eye = torch.eye(channels, dtype=torch.float64)
        self.register_buffer("p", p.float())
        self.register_buffer("sign_s", torch.sign(s).float())
        self.register_buffer("l_mask", torch.tril(torch.ones_like(eye), -1).float())
        self.register_buffer("eye", eye.float())
        self.lower = nn.Parameter(lower.float())
        self.upper = nn.Parameter(torch.triu(upper, 1).float())
        self.log_s = nn.Parameter(torch.log(torch.abs(s)).float())

    def weight(self) -> torch.Tensor:
        lower = self.lower * self.l_mask + self.eye
        upper = self.upper * self.l_mask.T + torch.diag(self.sign_s * torch.exp(self.log_s))
        return self.p @ lower @ upper

    def forward(self, x):
        logdet = self.log_s.sum() * _spatial(x)
        return _channel_matmul(self.weight(), x), logdet.expand(x.shape[0])

    def reverse(self, y):
        # An explicit inverse (not the triangular factors) keeps this a single 1x1 conv.
        return _channel_matmul(torch.linalg.inv(self.weight()), y)


class AffineCoupling(nn.Module):
    """RealNVP/Glow affine coupling: y2 = (x2 + t(x1)) * sigmoid(h(x1) + 2), y1 = x1.

    ``net`` maps x1 (C/2 channels) to 2 * C/2 channels, split into (t, h). The sigmoid bounds
    the scale in (0, 1) (openai/glow), which avoids the exploding scales that make exp(h) NaN;
    with a zero-initialised net the layer starts as the fixed scaling y2 = sigmoid(2) * x2.
    """

    def __init__(self, net: nn.Module, split: str = "half"):
        super().__init__()
        self.net, self.split = net, split

    def _shift_logscale(self, x1):
        shift, h = self.net(x1).chunk(2, dim=1)
        return shift, F.logsigmoid(h + 2.0)

    def forward(self, x):
        x1, x2 = split_channels(x, self.split)
        shift, log_scale = self._shift_logscale(x1)
        y2 = (x2 + shift) * torch.exp(log_scale)
        return merge_channels(x1, y2, self.split), log_scale.flatten(1).sum(1)

    def reverse(self, y):
        y1, y2 = split_channels(y, self.split)
        shift, log_scale = self._shift_logscale(y1)
        return merge_channels(y1, y2 * torch.exp(-log_scale) - shift, self.split)


def zero_conv(c_in: int, c_out: int, kernel: int = 3) -> nn.Conv2d:
    """A 'same' convolution whose weights and bias start at zero."""
    conv = nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


class ZeroConvGain(nn.Module):
    """openai/glow's ``conv2d_zeros``: a zero-initialised 'same' conv whose output is multiplied
    by a learned per-channel gain exp(logscale_factor * logs), logs starting at 0 (gain 1)."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 3, logscale_factor: float = 3.0):
        super().__init__()
        self.conv = zero_conv(c_in, c_out, kernel)
        self.logs = nn.Parameter(torch.zeros(c_out))
        self.logscale_factor = logscale_factor

    def forward(self, x):
        return self.conv(x) * torch.exp(self.logs * self.logscale_factor).view(1, -1, 1, 1)


def last_conv(c_in: int, c_out: int, gain: bool, logscale_factor: float = 3.0) -> nn.Module:
    """The zero-initialised output conv of a coupling net or a split prior (openai's gain on)."""
    return ZeroConvGain(c_in, c_out, 3, logscale_factor) if gain else zero_conv(c_in, c_out, 3)


def _hidden_conv(c_in: int, c_out: int, kernel: int, init: str, actnorm: bool,
                 logscale_factor: float) -> list[nn.Module]:
    conv = nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=not actnorm)
    if init == "keras":
        keras_init(conv)
    elif init == "openai":  # tfops.default_initializer
        nn.init.normal_(conv.weight, std=0.05)
        if conv.bias is not None:
            nn.init.zeros_(conv.bias)
    elif init != "torch":
        raise ValueError(f"unknown coupling-net init {init!r} (torch | keras | openai)")
    return [conv, Values(ActNorm(c_out, "data", logscale_factor))] if actnorm else [conv]


def coupling_net(c_in: int, c_out: int, width: int, init: str = "torch", actnorm: bool = False,
                 gain: bool = False, logscale_factor: float = 1.0) -> nn.Sequential:
    """Glow's NN(): conv 3x3 -> ReLU -> conv 1x1 -> ReLU -> zero-initialised conv 3x3.

    The zero last layer makes every coupling start as the identity (additive) or a constant
    scaling (affine), so a deep flow starts well conditioned. ``init`` of the hidden convs:
    PyTorch's default, ``keras`` (Glorot-uniform, zero bias: Su's Conv2D) or ``openai``
    (N(0, 0.05^2)). openai/glow's own NN has ``actnorm`` (each hidden conv, without bias, followed
    by a data-initialised actnorm) and ``gain`` (:class:`ZeroConvGain` last), with
    ``logscale_factor`` 3 for both.
    """
    return nn.Sequential(
        *_hidden_conv(c_in, width, 3, init, actnorm, logscale_factor), nn.ReLU(),
        *_hidden_conv(width, width, 1, init, actnorm, logscale_factor), nn.ReLU(),
        last_conv(width, c_out, gain, logscale_factor),
    )


class Squeeze(nn.Module):
    """2x2xC -> 1x1x4C (RealNVP); output channel c*4 + 2*dy + dx, as ``pixel_unshuffle``."""

    def forward(self, x):
        return F.pixel_unshuffle(x, 2), x.new_zeros(x.shape[0])

    def reverse(self, y):
        return F.pixel_shuffle(y, 2)


class ConditionalSplit(nn.Module):
    """Multi-scale split with the conditional prior p(z_drop | z_kept) (Su's CondActnorm).

    Keeps the first half of the channels; the second (dropped) half is normalised by a shift
    and log-scale predicted from the *kept* half by a zero-initialised 3x3 conv:
    z = (x_drop - shift) * exp(-log_scale), logdet = -sum(log_scale). Under a standard normal
    on z this is N(x_drop; shift, exp(log_scale)^2) conditioned on the kept half only, hence a
    proper density (a conditional affine coupling). The model then factors out z.
    """

    def __init__(self, channels: int, gain: bool = False, logscale_factor: float = 3.0):
        super().__init__()
        self.conv = last_conv(channels // 2, channels, gain, logscale_factor)

    def _shift_logscale(self, kept):
        return self.conv(kept).chunk(2, dim=1)

    def forward(self, x):
        kept, drop = x.chunk(2, dim=1)
        shift, log_scale = self._shift_logscale(kept)
        z = (drop - shift) * torch.exp(-log_scale)
        return torch.cat([kept, z], 1), -log_scale.flatten(1).sum(1)

    def reverse(self, y):
        kept, z = y.chunk(2, dim=1)
        shift, log_scale = self._shift_logscale(kept)
        return torch.cat([kept, z * torch.exp(log_scale) + shift], 1)
