"""Random streams that are pure functions of (seed, position): a run resumed after a kill
replays exactly the draws it would have made, and two streams never share a seed by accident.

* ``step_generator(seed, step)``: every random draw of one training step;
* ``epoch_permutation(n, seed, epoch)``: the data order of one epoch;
* ``derive_seed(seed, name)`` / ``named_generator(seed, name)``: an independent stream per
  purpose ("evaluation", "samples", "init", ...) instead of magic offsets such as seed + 7.
"""

from __future__ import annotations

import hashlib

import torch

_MAX_SEED = 2**63 - 1


def step_generator(seed: int, step: int, device: str | torch.device = "cpu") -> torch.Generator:
    """The RNG for one training step: a pure function of (seed, step), hence resumable."""
    g = torch.Generator(device=device)
    g.manual_seed((seed * 1_000_003 + step) % _MAX_SEED)
    return g


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The data order of one epoch: a pure function of (seed, epoch), hence resumable."""
    g = torch.Generator()
    g.manual_seed((seed * 7_919 + epoch) % _MAX_SEED + 1)
    return torch.randperm(n, generator=g)


def derive_seed(seed: int, name: str) -> int:
    """A seed for the stream ``name`` of a run: a hash of both, so streams are independent."""
    digest = hashlib.sha256(f"kexue:{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % _MAX_SEED


def named_generator(seed: int, name: str) -> torch.Generator:
    return torch.Generator().manual_seed(derive_seed(seed, name))
