"""model.pt holds several models (one per batch size, or a critic and a generator per dataset)
as one flat dict of tensors: ``"<group>/<parameter>"``."""

from __future__ import annotations

import torch


def flatten(groups: dict[str, dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {f"{g}/{k}": v for g, state in groups.items() for k, v in state.items()}


def group(weights: dict[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    prefix = f"{name}/"
    return {k.removeprefix(prefix): v for k, v in weights.items() if k.startswith(prefix)}
