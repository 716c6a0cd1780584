"""Our Glow and NICE against normflows (pip install normflows==1.7.3) at identical configuration.

    python benchmarks/peers.py                       # small Glow + NICE, train and log-likelihood
    python benchmarks/peers.py --cases glow-big --pairs 8
    python benchmarks/peers.py --device cuda --pairs 50

Both models live in one process and see the same batch of random 8-bit images (dequantised to
[-0.5, 0.5)), the same optimiser (Adam, lr 1e-3, torch's defaults) and the same thread count.
After warm-up steps, steps are timed alternately (ours, peer, ours, peer, ...), and the figure
is the median of the per-pair ratios ours/peer: on a shared machine absolute times drift by tens
of percent between minutes, while a ratio of neighbouring steps stays within a few percent.

Rows per case: the training step with the same optimiser on both sides; the same with our fused
Adam (one kernel over all parameters instead of ~140 small ones; the peer keeps its default);
log-likelihood evaluation (under ``torch.inference_mode`` on both sides, as the articles
evaluate) of ``--eval-images`` images, with half as many pairs; ``--compile`` adds our
torch.compile'd step and log-likelihood (compile times are printed: they only pay on long
runs).

Where the time goes: each row also gives both sides' rate in GFLOP/s (matrix products and
convolutions, forward and backward, counted by torch's FlopCounterMode) and a *floor*, the ratio
ours/peer that our step would reach if it did its counted products at the device's fp32
matrix-product peak (measured at the start: the faster of a 2048^3 matmul and the same product
as a 1x1 convolution) and nothing else. A row whose floor is near its ratio is bound by
arithmetic both sides share: only other arithmetic (another precision) would take it lower.

Matching the models: Glow = L levels of K x (actnorm, LU 1x1 conv, affine coupling with
sigmoid(h + 2) scale, net conv3x3-ReLU-conv1x1-ReLU-zero conv3x3) on both sides; ours adds a
conditional split prior and a learned top (normflows: a per-channel GlowBase per level). NICE =
4 additive couplings with 5 x 1000 ReLU MLPs and a Gaussian prior (ours: Su's reverse + even/odd
split, run on contiguous halves after one deinterleave; the peer: halves); ours has a diagonal
exp-scale (784 parameters), the peer a trainable diagonal Gaussian (2 x 784). Parameter counts
are printed.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from kexue.articles.glow.config import GlowModel
from kexue.articles.glow.model import Glow
from kexue.articles.glow.train import MEMORY_FORMAT
from kexue.articles.nice.model import Nice
from kexue.nn import parameter_count
from kexue.nn.flows import data_dependent_init

try:
    import normflows as nf
except ImportError:  # pragma: no cover - a benchmark-only dependency
    raise SystemExit("benchmarks/peers.py needs normflows: pip install normflows==1.7.3") from None


@dataclass
class Case:
    name: str
    shape: tuple[int, ...]  # one example
    batch: int
    ours: Callable[[], torch.nn.Module]  # with .log_prob(x)
    peer: Callable[[], torch.nn.Module]  # normflows: .log_prob(x)


def our_glow(levels: int, depth: int, width: int, shape) -> torch.nn.Module:
    cfg = GlowModel(levels=levels, depth=depth, width=width, coupling="affine",
                    permutation="invconv", actnorm="data")
    return Glow(shape, cfg, seed=0).to(memory_format=MEMORY_FORMAT)  # as the article's setup()


class UnconditionalMultiscaleFlow(nf.MultiscaleFlow):
    """normflows' multi-scale flow; its log_prob takes class labels, unused here."""

    def log_prob(self, x, y=None):
        return super().log_prob(x, y)


def peer_glow(levels: int, depth: int, width: int, shape) -> torch.nn.Module:
    """normflows' own Glow recipe (its README / examples), unconditional."""
    c, h, w = shape
    q0, merges, flows = [], [], []
    for i in range(levels):
        channels = c * 2 ** (levels + 1 - i)
        flows.append([nf.flows.GlowBlock(channels, width, split_mode="channel", scale=True)
                      for _ in range(depth)] + [nf.flows.Squeeze()])
        if i > 0:
            merges.append(nf.flows.Merge())
            latent = (c * 2 ** (levels - i), h // 2 ** (levels - i), w // 2 ** (levels - i))
        else:
            latent = (c * 2 ** (levels + 1), h // 2**levels, w // 2**levels)
        q0.append(nf.distributions.GlowBase(latent))
    return UnconditionalMultiscaleFlow(q0, flows, merges, class_cond=False)


def our_nice(dims: int, hidden: int, depth: int) -> torch.nn.Module:
    return Nice(dims, couplings=4, hidden=hidden, depth=depth, recipe="su", scale_init_std=0.05)


def peer_nice(dims: int, hidden: int, depth: int, couplings: int = 4) -> torch.nn.Module:
    flows = []
    for _ in range(couplings):
        net = nf.nets.MLP([dims // 2] + [hidden] * depth + [dims // 2], output_fn="relu")
        flows += [nf.flows.AffineCouplingBlock(net, scale=False), nf.flows.Permute(dims, "swap")]
    return nf.NormalizingFlow(nf.distributions.DiagGaussian(dims), flows)


CASES = {
    "glow-small": Case("Glow L3 K4 W128, 3x16x16", (3, 16, 16), 32,
                       lambda: our_glow(3, 4, 128, (3, 16, 16)),
                       lambda: peer_glow(3, 4, 128, (3, 16, 16))),
    "glow-big": Case("Glow L3 K6 W512, 3x32x32 (Su's size)", (3, 32, 32), 32,
                     lambda: our_glow(3, 6, 512, (3, 32, 32)),
                     lambda: peer_glow(3, 6, 512, (3, 32, 32))),
    "nice": Case("NICE 4 couplings, 5x1000, 784 dims (the article's)", (784,), 128,
                 lambda: our_nice(784, 1000, 5), lambda: peer_nice(784, 1000, 5)),
}


def images(n: int, shape, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    k = torch.randint(0, 256, (n, *shape), generator=g)
    return (k + torch.rand(k.shape, generator=g)) / 256 - 0.5


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_step(model, x, fused: bool = False, compile_: bool = False) -> Callable[[], float]:
    kw = {"fused": True} if fused else {}
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, **kw)

    def loss_and_grad():
        loss = -model.log_prob(x).mean()
        loss.backward()
        return loss

    # Static shapes: a second case in the same process would otherwise make dynamo recompile
    # this code with symbolic shapes (which failed in inductor for Glow at Su's size).
    step_fn = torch.compile(loss_and_grad, dynamic=False) if compile_ else loss_and_grad

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        loss = step_fn()
        opt.step()
        return loss

    return step


def eval_step(log_prob: Callable, x, batch: int) -> Callable[[], None]:
    @torch.inference_mode()  # as the articles evaluate; the peer gets the same
    def step():
        for i in range(0, len(x), batch):
            log_prob(x[i: i + batch])

    return step


def flops(fn: Callable) -> int:
    """Floating-point operations of one call (matrix products and convolutions, forward and
    backward, as torch's FlopCounterMode counts them; elementwise work is not counted)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def gemm_peak(device, n: int = 2048, repeats: int = 10) -> float:
    """FLOP/s of the best fp32 n x n x n matrix product this device runs: torch's matmul (MKL on
    CPU) or a 1x1 convolution of n channels over n positions (oneDNN on CPU, which reaches
    AVX-512 rates where MKL does not), best of a few calls each. The ceiling for any step made
    of matrix products and convolutions."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    image = a.view(1, n, n, 1).to(memory_format=torch.channels_last)  # n positions, n channels
    weight = b.view(n, n, 1, 1)
    best = float("inf")
    for product in (lambda: a @ b, lambda: torch.nn.functional.conv2d(image, weight)):
        for _ in range(repeats + 1):
            sync(device)
            start = time.perf_counter()
            product()
            sync(device)
            best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def alternate(a: Callable, b: Callable, pairs: int, warmup: int, device) -> dict:
    """Time a and b alternately; per-pair ratios a/b and their median."""
    for _ in range(warmup):
        a(), b()
    ta, tb = [], []
    for i in range(pairs):
        # Alternate who goes first too, so that neither always follows the other's cache state.
        order = [(a, ta), (b, tb)] if i % 2 == 0 else [(b, tb), (a, ta)]
        for fn, times in order:
            sync(device)
            start = time.perf_counter()
            fn()
            sync(device)
            times.append(time.perf_counter() - start)
    ratios = sorted(x / y for x, y in zip(ta, tb))
    q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
    return {"ours": statistics.median(ta), "peer": statistics.median(tb),
            "ratio": statistics.median(ratios), "q1": q[0], "q3": q[2]}


def fmt_time(s: float) -> str:
    return f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s"


def with_flops(ours: int, peer: int) -> dict:
    return {"flops_ours": ours, "flops_peer": peer}


def run_case(case: Case, args, device) -> list[tuple[str, dict]]:
    torch.manual_seed(0)
    ours, peer = case.ours().to(device), case.peer().to(device)
    x = images(case.batch, case.shape, seed=1).to(device)
    data_dependent_init(ours, x)  # Glow's data init; the peer's ActNorm does it on first use
    with torch.no_grad():
        peer.log_prob(x)
    print(f"\n{case.name}, batch {case.batch}: parameters ours {parameter_count(ours):,}, "
          f"peer {parameter_count(peer):,}")
    rows = []
    train_flops = flops(train_step(ours, x)), flops(train_step(peer, x))
    same = alternate(train_step(ours, x), train_step(peer, x), args.pairs, args.warmup, device)
    rows.append(("train step, same Adam", same | with_flops(*train_flops)))
    fused = alternate(train_step(ours, x, fused=True), train_step(peer, x), args.pairs,
                      args.warmup, device)
    rows.append(("train step, ours fused Adam", fused | with_flops(*train_flops)))
    if args.compile:
        start = time.perf_counter()
        compiled = train_step(ours, x, compile_=True)
        compiled()
        sync(device)
        print(f"  torch.compile of our step: {time.perf_counter() - start:.1f} s")
        rows.append(("train step, ours compiled", alternate(
            compiled, train_step(peer, x), args.pairs, args.warmup, device)
            | with_flops(*train_flops)))
    x_eval = images(args.eval_images, case.shape, seed=2).to(device)
    ours.eval(), peer.eval()
    peer_eval = eval_step(peer.log_prob, x_eval, args.eval_batch)
    eval_flops = with_flops(flops(eval_step(ours.log_prob, x_eval, args.eval_batch)),
                            flops(peer_eval))
    eval_pairs = max(3, args.pairs // 2)
    rows.append((f"log-likelihood of {args.eval_images}",
                 alternate(eval_step(ours.log_prob, x_eval, args.eval_batch), peer_eval,
                           eval_pairs, 1, device) | eval_flops))
    if args.compile:
        start = time.perf_counter()
        compiled_eval = eval_step(torch.compile(ours.log_prob, dynamic=False), x_eval,
                                  args.eval_batch)
        compiled_eval()
        sync(device)
        print(f"  torch.compile of our log-likelihood: {time.perf_counter() - start:.1f} s")
        rows.append((f"log-likelihood of {args.eval_images}, ours compiled",
                     alternate(compiled_eval, peer_eval, eval_pairs, 1, device) | eval_flops))
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cases", nargs="+", choices=sorted(CASES), default=["glow-small", "nice"])
    p.add_argument("--pairs", type=int, default=20, help="timed A/B pairs per row")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--eval-images", type=int, default=512)
    p.add_argument("--eval-batch", type=int, default=128)
    p.add_argument("--compile", action="store_true", help="add our torch.compile'd step")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device {name}, {args.threads} threads, torch {torch.__version__}, "
          f"normflows {nf.__version__}, fp32; {args.pairs} alternating pairs per row")
    peak = gemm_peak(device)
    print(f"fp32 matrix-product peak (2048^3, matmul or 1x1 conv): {peak / 1e9:.0f} GFLOP/s")
    table = []
    for key in args.cases:
        table += [(CASES[key].name, *row) for row in run_case(CASES[key], args, device)]
    print("\n| model | measure | ours | peer | ours/peer (median of pairs) | IQR of ratios "
          "| GFLOP/s ours, peer | floor |")
    print("|---|---|---|---|---|---|---|---|")
    for model, measure, r in table:
        rates = r["flops_ours"] / r["ours"], r["flops_peer"] / r["peer"]
        print(f"| {model} | {measure} | {fmt_time(r['ours'])} | {fmt_time(r['peer'])} | "
              f"{r['ratio']:.2f} | {r['q1']:.2f}-{r['q3']:.2f} | "
              f"{rates[0] / 1e9:.0f}, {rates[1] / 1e9:.0f} | "
              f"{r['flops_ours'] / peak / r['peer']:.2f} |")
    print("\nfloor: the ratio ours/peer if our step did its counted matrix products and "
          "convolutions at the\npeak rate above and nothing else, against the peer's measured "
          "time.")


if __name__ == "__main__":
    main()
