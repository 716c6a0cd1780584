import math

import pytest
import torch

from kexue.metrics.retrieval import (
    duplicated_rows,
    ranked_neighbours,
    retrieval_metrics,
    unhittable_queries,
)

torch.set_num_threads(1)


def on_circle(degrees):
    rad = torch.tensor(degrees, dtype=torch.float64) * math.pi / 180
    return torch.stack([rad.cos(), rad.sin()], dim=1)


# Group A: 0°, 20°; group B: 30°, 120°; group C: 260° alone. Neighbours by angle, self excluded:
#   s0 (A): s1 20°, s2 30°, s4 100°, s3 120°      hit at rank 1
#   s1 (A): s2 10°, s0 20°, ...                   hit at rank 2
#   s2 (B): s1 10°, s0 30°, s3 90°, ...           hit at rank 3
#   s3 (B): s2 90°, ...                           hit at rank 1
#   s4 (C): no other member                       never hits
ANGLES = [0, 20, 30, 120, 260]
GROUPS = [0, 0, 1, 1, 2]


def test_hand_made_case():
    m = retrieval_metrics(on_circle(ANGLES), torch.tensor(GROUPS), ks=(1, 2, 3))
    assert m["top1"] == pytest.approx(2 / 5)
    assert m["top2"] == pytest.approx(3 / 5)
    assert m["top3"] == pytest.approx(4 / 5)
    for k in (1, 2, 3):  # no duplicates: both rules agree
        assert m[f"top{k}_own_group"] == m[f"top{k}"]
    assert m["queries"] == 5 and m["unhittable"] == 1


def test_duplicate_in_another_group_breaks_su_rule_only():
    # s5 is an exact copy of s2 (30°, group B) but belongs to group A. For the query s5 the
    # tie at score 1 goes to the lower index, s2, so Su's rule compares with group B: s5 itself
    # (A) at rank 2 misses, s1 and s0 (A) miss, s3 (B) hits at rank 5 -> a top-4 hit. Excluding
    # the query by index: s2 (B) misses, s1 (A) hits at rank 2.
    enc = on_circle(ANGLES + [30])
    groups = torch.tensor(GROUPS + [0])
    assert ranked_neighbours(enc, 2)[5].tolist() == [2, 5]
    su = retrieval_metrics(enc, groups, ks=(1, 2, 3, 4))
    # Other queries: s0 still hits at 1, s1 now has s2 and s5 at 10° (ranks 1-2, B then A):
    # hit at 2; s2's copy s5 (A) takes rank 2 after s2 itself -> s1, s0 miss, s3 hits at 4;
    # s3 hits at 1; s4 never.
    per_query_su = {0: 1, 1: 2, 2: 4, 3: 1, 5: 4}
    per_query_own = {0: 1, 1: 2, 2: 4, 3: 1, 5: 2}
    for k in (1, 2, 3, 4):
        assert su[f"top{k}"] == pytest.approx(sum(r <= k for r in per_query_su.values()) / 6)
        assert su[f"top{k}_own_group"] == pytest.approx(
            sum(r <= k for r in per_query_own.values()) / 6)
    assert su["top2"] != su["top2_own_group"]
    assert duplicated_rows(torch.tensor([[1, 2], [3, 4], [1, 2], [5, 6]])) == 2


def reference(enc, groups, ks):
    """One query at a time, as in Su's loop: sort by (-score, index)."""
    n = len(groups)
    scores = (enc @ enc.T).tolist()
    su = {k: 0 for k in ks}
    own = {k: 0 for k in ks}
    for q in range(n):
        order = sorted(range(n), key=lambda j: (-scores[q][j], j))
        others = [j for j in order if j != q]
        for k in ks:
            su[k] += any(groups[j] == groups[order[0]] for j in order[1:k + 1])
            own[k] += any(groups[j] == groups[q] for j in others[:k])
    return {k: v / n for k, v in su.items()}, {k: v / n for k, v in own.items()}


def test_batched_equals_a_loop_over_queries_with_ties_and_blocks():
    g = torch.Generator().manual_seed(1)
    # Few distinct vectors, so exact ties and duplicates (within and across groups) abound.
    pool = torch.nn.functional.normalize(torch.randn(12, 4, generator=g, dtype=torch.float64),
                                         dim=1)
    enc = pool[torch.randint(12, (60,), generator=g)]
    groups = torch.randint(15, (60,), generator=g)
    ks = (1, 5, 10)
    m = retrieval_metrics(enc, groups, ks=ks, block=7)
    su, own = reference(enc, groups.tolist(), ks)
    for k in ks:
        assert m[f"top{k}"] == pytest.approx(su[k])
        assert m[f"top{k}_own_group"] == pytest.approx(own[k])


def test_unhittable_counts_singleton_groups():
    assert unhittable_queries(torch.tensor([4, 4, 7, 9, 9, 9, 2])) == 2


def test_group_separation_by_hand():
    from kexue.metrics.retrieval import group_separation

    # s0 (A): same 20°, other 30°; s1 (A): same 20°, other 10°; s2 (B): same 90°, other 10°;
    # s3 (B): same 90°, other 100°; s4 (C) cannot hit and is left out.
    sep = group_separation(on_circle(ANGLES), torch.tensor(GROUPS), block=2)
    c = lambda d: math.cos(math.radians(d))
    assert sep["same"] == pytest.approx((c(20) * 2 + c(90) * 2) / 4)
    assert sep["other"] == pytest.approx((c(30) + c(10) + c(10) + c(100)) / 4)
    assert sep["gap"] == pytest.approx(sep["same"] - sep["other"])


def test_neighbours_of_chosen_queries_equal_those_of_all():
    enc = on_circle(ANGLES + [30])
    every = ranked_neighbours(enc, 3, exclude_self=True, block=2)
    some = ranked_neighbours(enc, 3, exclude_self=True, queries=torch.tensor([5, 1]), block=1)
    assert torch.equal(some, every[[5, 1]])
