import math

import pytest
import torch

from kexue.data.toy2d import grid, ring, toy_target
from kexue.metrics.modes import class_coverage, mode_coverage

torch.set_num_threads(1)


def test_targets_have_the_specified_geometry():
    r = ring()
    c = r.centre_tensor()
    assert c.shape == (8, 2) and r.sigma == 0.02
    assert torch.allclose(c.norm(dim=1), torch.full((8,), 2.0))
    assert torch.allclose(c[2], torch.tensor([0.0, 2.0]), atol=1e-6)
    g = grid().centre_tensor()
    assert g.shape == (25, 2) and g.min() == -4 and g.max() == 4
    with pytest.raises(KeyError):
        toy_target("ring9")


def test_sampler_is_deterministic_in_the_generator():
    a = ring().sample(100, torch.Generator().manual_seed(3))
    b = ring().sample(100, torch.Generator().manual_seed(3))
    c = ring().sample(100, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("target", [ring(), grid()])
def test_true_samples_cover_every_mode_evenly(target):
    x = target.sample(20000, torch.Generator().manual_seed(0))
    cov = mode_coverage(x, target.centre_tensor(), target.sigma)
    k = len(target.centres)
    assert cov.modes_covered == k
    # within 3σ of a 2-D Gaussian: chi²₂ CDF at 9 = 1 − e^(−4.5) ≈ 0.9889
    assert cov.high_quality == pytest.approx(1 - math.exp(-4.5), abs=0.005)
    assert cov.kl_to_uniform < 0.01


def test_a_collapsed_generator_covers_one_mode():
    target = ring()
    x = target.centre_tensor()[3] + 0.01 * torch.randn(1000, 2,
                                                        generator=torch.Generator().manual_seed(0))
    cov = mode_coverage(x, target.centre_tensor(), target.sigma)
    assert cov.modes_covered == 1 and cov.counts[3] == 1000
    assert cov.kl_to_uniform == pytest.approx(math.log(8))


def test_known_mixture_of_good_and_bad_samples():
    target = ring()
    centres = target.centre_tensor()
    good = centres[[0, 0, 1, 2]]  # 3 modes hit, exactly on centre
    bad = torch.zeros(4, 2)  # the ring's centre is 2 away from every mode
    cov = mode_coverage(torch.cat([good, bad]), centres, target.sigma, min_share=0.1)
    assert cov.high_quality == 0.5
    assert cov.modes_covered == 3  # each has ≥ 1 of 8 samples
    p = torch.tensor([0.5, 0.25, 0.25])
    assert cov.kl_to_uniform == pytest.approx(float((p * torch.log(p * 8)).sum()))
    assert mode_coverage(bad, centres, target.sigma).modes_covered == 0
    assert math.isnan(mode_coverage(bad, centres, target.sigma).kl_to_uniform)


def test_min_share_decides_coverage():
    centres = ring().centre_tensor()
    x = torch.cat([centres[:1].repeat(995, 1), centres[1:2].repeat(5, 1)])
    assert mode_coverage(x, centres, 0.02, min_share=0.01).modes_covered == 1
    assert mode_coverage(x, centres, 0.02, min_share=0.005).modes_covered == 2


def test_class_coverage():
    cov = class_coverage(torch.tensor([0, 0, 1, 1]), n_classes=4)
    assert cov.modes_covered == 2 and cov.kl_to_uniform == pytest.approx(math.log(2))
    assert class_coverage(torch.arange(10), 10).kl_to_uniform == pytest.approx(0.0)
