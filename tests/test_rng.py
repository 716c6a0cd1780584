"""Named random streams: pure functions of (seed, name), independent of each other."""

import torch

from kexue.rng import derive_seed, epoch_permutation, named_generator, step_generator


def test_derive_seed_is_pure():
    assert derive_seed(3, "evaluation") == derive_seed(3, "evaluation")
    torch.manual_seed(123)  # the global RNG state plays no part
    a = torch.rand(4, generator=named_generator(3, "samples"))
    torch.manual_seed(456)
    torch.rand(10)
    assert torch.equal(a, torch.rand(4, generator=named_generator(3, "samples")))


def test_derived_seeds_differ_across_names_and_seeds():
    names = ["evaluation", "samples", "init", "split", "noise"]
    seeds = [derive_seed(s, n) for s in range(5) for n in names]
    assert len(set(seeds)) == len(seeds)
    assert all(0 <= s < 2**63 for s in seeds)


def test_named_streams_are_not_offsets_of_each_other():
    # seed + k schemes make (seed=1, "a") collide with (seed=0, "b"); a hash does not
    for s in range(20):
        assert derive_seed(s, "evaluation") not in {derive_seed(t, "samples") for t in range(20)}


def test_named_streams_draw_uncorrelated_numbers():
    a = torch.randn(20000, generator=named_generator(0, "evaluation"))
    b = torch.randn(20000, generator=named_generator(0, "samples"))
    c = torch.randn(20000, generator=named_generator(1, "evaluation"))
    for x, y in [(a, b), (a, c)]:
        r = torch.corrcoef(torch.stack([x, y]))[0, 1]
        assert abs(r) < 0.03  # 4+ standard errors (1/sqrt(20000) ~ 0.007)


def test_step_and_epoch_streams_are_pure_and_distinct():
    assert torch.equal(torch.rand(3, generator=step_generator(5, 7)),
                       torch.rand(3, generator=step_generator(5, 7)))
    assert not torch.equal(torch.rand(3, generator=step_generator(5, 7)),
                           torch.rand(3, generator=step_generator(5, 8)))
    assert not torch.equal(torch.rand(3, generator=step_generator(5, 7)),
                           torch.rand(3, generator=step_generator(6, 7)))
    p = epoch_permutation(50, 1, 2)
    assert torch.equal(p, epoch_permutation(50, 1, 2))
    assert torch.equal(p.sort().values, torch.arange(50))
    assert not torch.equal(p, epoch_permutation(50, 1, 3))
    assert not torch.equal(p, epoch_permutation(50, 2, 2))
