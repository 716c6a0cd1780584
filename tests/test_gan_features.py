import itertools

import numpy as np
import pytest
import scipy.linalg
import torch
from sklearn.datasets import load_digits
from torchmetrics.image.kid import poly_mmd

from kexue.metrics.features import (
    FID_LABEL,
    FeatureNet,
    FeatureNetConfig,
    FeatureTraining,
    accuracy,
    build_feature_net,
    diversity,
    embed,
    feature_fid,
    feature_kid,
    load_feature_net,
    reconstruction_mse,
    save_feature_net,
    to_signed,
    train_feature_net,
)

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    x = to_signed(torch.from_numpy(d.images.astype(np.uint8))[:, None], n_levels=17)
    y = torch.from_numpy(d.target).long()
    return x[:1400], y[:1400], x[1400:], y[1400:]


@pytest.fixture(scope="module")
def net(digits):
    x, y, _, _ = digits
    return train_feature_net(x, y, 10, FeatureTraining(steps=180))


def test_to_signed_maps_levels_onto_minus_one_one():
    assert to_signed(torch.tensor([0, 8, 16]), 17).tolist() == [-1.0, 0.0, 1.0]


def test_the_classifier_learns(net, digits):
    _, _, x_test, y_test = digits
    assert accuracy(net, x_test, y_test) > 0.9


def test_training_is_deterministic(digits):
    x, y, _, _ = digits
    a = train_feature_net(x[:200], y[:200], 10, FeatureTraining(steps=4, seed=3))
    b = train_feature_net(x[:200], y[:200], 10, FeatureTraining(steps=4, seed=3))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def scipy_fid(f1, f2):
    f1, f2 = f1.double().numpy(), f2.double().numpy()
    m1, m2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    root = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((m1 - m2) ** 2).sum() + np.trace(s1 + s2 - 2 * root))


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_a_shift(net, digits):
    x, _, x_test, _ = digits
    assert abs(feature_fid(net, x_test, x_test)) < 1e-3 * feature_fid(net, x, x_test) + 1e-6
    fids = [feature_fid(net, x_test, (x_test + s).clamp(-1, 1)) for s in (0.0, 0.2, 0.5, 1.0)]
    assert fids[0] < 1e-3 and all(a < b for a, b in itertools.pairwise(fids))


def test_fid_is_the_frechet_formula(net, digits):
    x, _, x_test, _ = digits
    expected = scipy_fid(embed(net, x), embed(net, x_test))
    assert feature_fid(net, x, x_test) == pytest.approx(expected, rel=1e-3)


def cubic_kernel(u, v):
    return (u @ v.T / u.shape[1] + 1) ** 3


def test_kid_is_unbiased_on_two_draws_of_one_distribution():
    torch.manual_seed(0)
    net = FeatureNet(FeatureNetConfig(channels=1, n_classes=10)).eval()  # any fixed features
    kids, biased = [], []
    for seed in range(30):
        g = torch.Generator().manual_seed(seed)
        a, b = torch.randn(2, 150, 1, 8, 8, generator=g)
        kids.append(feature_kid(net, a, b, seed=seed, subsets=1, subset_size=150)[0])
        fa, fb = embed(net, a).double(), embed(net, b).double()
        biased.append(float(cubic_kernel(fa, fa).mean() + cubic_kernel(fb, fb).mean()
                            - 2 * cubic_kernel(fa, fb).mean()))
        assert kids[-1] == pytest.approx(float(poly_mmd(fa, fb)), rel=1e-4, abs=1e-9)
    kids, biased = np.array(kids), np.array(biased)
    se = kids.std(ddof=1) / np.sqrt(len(kids))
    assert abs(kids.mean()) < 3 * se
    assert biased.mean() > 3 * se  # the V-statistic would fail: the test can tell


def test_kid_grows_with_a_shift_and_is_seeded(net, digits):
    x, _, x_test, _ = digits
    same = feature_kid(net, x, x_test, seed=0, subset_size=300)
    assert same == feature_kid(net, x, x_test, seed=0, subset_size=300)
    shifted = feature_kid(net, x, (x_test + 0.5).clamp(-1, 1), seed=0, subset_size=300)
    assert shifted[0] > same[0] + 5 * shifted[1]


def test_diversity_flags_a_collapsed_sample_set(net, digits):
    x, _, x_test, _ = digits
    real = embed(net, x)
    healthy = diversity(embed(net, x_test), real)
    assert 0.8 < healthy.ratio < 1.25 and healthy.near_duplicates < 0.1
    one = x_test[:1].repeat(300, 1, 1, 1) + 0.01 * torch.randn(300, 1, 8, 8)
    collapsed = diversity(embed(net, one), real)
    assert collapsed.ratio < 0.5 and collapsed.near_duplicates > 0.9


def test_save_and_load_roundtrip(tmp_path, net, digits):
    _, _, x_test, _ = digits
    save_feature_net(tmp_path / "f.pt", net, {"dataset": "digits"})
    loaded, info = load_feature_net(tmp_path / "f.pt")
    assert info == {"dataset": "digits"}
    assert torch.equal(embed(loaded, x_test), embed(net, x_test))


def test_without_labels_it_trains_an_autoencoder(digits):
    x, _, x_test, _ = digits
    untrained = train_feature_net(x, None, 0, FeatureTraining(steps=0))
    trained = train_feature_net(x, None, 0, FeatureTraining(steps=150))
    assert trained.head.out_features == 64
    assert reconstruction_mse(trained, x_test) < 0.5 * reconstruction_mse(untrained, x_test)
    assert feature_fid(trained, x_test, (x_test + 0.5).clamp(-1, 1)) > feature_fid(
        trained, x_test, x[:360])


def test_larger_inputs_are_resized_to_the_training_size(net, digits):
    _, _, x_test, _ = digits
    big = x_test.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)  # 16x16 copies
    assert torch.allclose(embed(net, big), embed(net, x_test), atol=1e-5)


def test_build_feature_net_writes_the_stage_outputs(tmp_path):
    d = load_digits()
    images = torch.from_numpy(d.images.astype(np.uint8))[:, None]
    labels = torch.from_numpy(d.target).long()
    info = build_feature_net(tmp_path, images[:1000], labels[:1000], images[1000:],
                             labels[1000:], 17, FeatureTraining(steps=60), {"dataset": "digits"})
    assert info["kind"] == "classifier" and info["fid_label"] == FID_LABEL
    assert info["test_accuracy"] > 0.5
    _, saved = load_feature_net(tmp_path / "model.pt")
    assert saved == info and (tmp_path / "info.json").is_file()
