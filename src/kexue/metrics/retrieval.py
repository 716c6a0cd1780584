"""Open-set top-k retrieval by cosine similarity (kexue.fm 5743, Su's ``evaluate``).

Every held-out sentence is a query against all held-out sentences, itself included. Two rules:

* ``su``, the reference: rank 1 is assumed to be the query itself; a hit at rank r (2..k+1)
  is a sentence of the *rank-1 sentence's* group. With duplicated sentences this misbehaves (a
  copy can take rank 1), which is why the data should be de-duplicated.
* ``own_group``: the query is excluded by index and ranks 1..k are compared with its own group.

Both keep queries that cannot hit (no other member of their group) in the denominator and
coincide on duplicate-free data. Everything runs batched on the encodings' device: queries are
scored in blocks, never one at a time. Equal scores rank the lower index first (TensorFlow's
``top_k``), so results are deterministic.
"""

from __future__ import annotations

import torch


def ranked_neighbours(encodings: torch.Tensor, k: int, exclude_self: bool = False,
                      block: int = 2048, queries: torch.Tensor | None = None) -> torch.Tensor:
    """(Q, k) indices of the k highest dot products of each query with all rows, ties to the
    lower index; ``exclude_self`` removes each query from its own ranking. The queries are all
    rows, or the row indices ``queries``."""
    n = encodings.shape[0]
    if queries is None:
        queries = torch.arange(n, device=encodings.device)
    k = min(k, n - 1 if exclude_self else n)
    out = []
    for chunk in queries.to(encodings.device).split(block):
        scores = encodings[chunk] @ encodings.T
        if exclude_self:
            scores[torch.arange(len(chunk), device=scores.device), chunk] = -torch.inf
        # A stable descending sort keeps equal scores in index order.
        order = torch.sort(scores, dim=1, descending=True, stable=True).indices
        out.append(order[:, :k])
    return torch.cat(out)


def su_topk_accuracy(neighbours: torch.Tensor, groups: torch.Tensor,
                     ks: tuple[int, ...]) -> dict[int, float]:
    """Su's rule on ``ranked_neighbours(..., exclude_self=False)``: ranks 2..k+1 against the
    group of rank 1."""
    reference = groups[neighbours[:, 0]]
    hits = groups[neighbours[:, 1:]] == reference[:, None]
    return {k: hits[:, :k].any(dim=1).float().mean().item() for k in ks}


def own_group_topk_accuracy(neighbours: torch.Tensor, groups: torch.Tensor,
                            ks: tuple[int, ...]) -> dict[int, float]:
    """Ranks 1..k of ``ranked_neighbours(..., exclude_self=True)`` against the query's group."""
    hits = groups[neighbours] == groups[:, None]
    return {k: hits[:, :k].any(dim=1).float().mean().item() for k in ks}


def unhittable_queries(groups: torch.Tensor) -> int:
    """Queries whose group has no other member in the set: misses under both rules."""
    _, inverse, counts = torch.unique(groups, return_inverse=True, return_counts=True)
    return int((counts[inverse] == 1).sum())


def duplicated_rows(ids: torch.Tensor) -> int:
    """Rows (id sequences) that equal at least one other row."""
    _, inverse, counts = torch.unique(ids, dim=0, return_inverse=True, return_counts=True)
    return int((counts[inverse] > 1).sum())


def retrieval_metrics(encodings: torch.Tensor, groups: torch.Tensor,
                      ks: tuple[int, ...] = (1, 5, 10), block: int = 2048) -> dict[str, float]:
    """``top{k}`` (Su's rule), ``top{k}_own_group``, ``queries`` and ``unhittable``."""
    groups = groups.to(encodings.device)
    kmax = max(ks)
    su = su_topk_accuracy(ranked_neighbours(encodings, kmax + 1, block=block), groups, ks)
    own = own_group_topk_accuracy(
        ranked_neighbours(encodings, kmax, exclude_self=True, block=block), groups, ks)
    metrics = {f"top{k}": v for k, v in su.items()}
    metrics |= {f"top{k}_own_group": v for k, v in own.items()}
    return metrics | {"queries": len(groups), "unhittable": unhittable_queries(groups)}


def group_separation(encodings: torch.Tensor, groups: torch.Tensor, block: int = 2048
                     ) -> dict[str, float]:
    """How far apart the groups sit, over the queries that can hit: the mean of each query's
    highest cosine to its own group (``same``) and to any other group (``other``); ``gap`` =
    same - other, positive when the nearest neighbour is usually a synonym."""
    groups = groups.to(encodings.device)
    same, other = [], []
    for start in range(0, len(groups), block):
        scores = encodings[start:start + block] @ encodings.T
        rows = torch.arange(scores.shape[0], device=scores.device)
        scores[rows, rows + start] = -torch.inf
        is_same = groups[start:start + block, None] == groups[None]
        same.append(scores.masked_fill(~is_same, -torch.inf).max(dim=1).values)
        other.append(scores.masked_fill(is_same, -torch.inf).max(dim=1).values)
    same, other = torch.cat(same), torch.cat(other)
    ok = torch.isfinite(same) & torch.isfinite(other)
    return {"same": same[ok].mean().item(), "other": other[ok].mean().item(),
            "gap": (same[ok] - other[ok]).mean().item()}
