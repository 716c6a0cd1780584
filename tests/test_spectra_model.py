"""spectra_conv1d: the network of spec §3, the soft-F1 loss and macro-F1 of §4/§6."""

import math
import warnings

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score

from kexue.articles.spectra_conv1d.model import (
    Block,
    SplitSumConv,
    TimestepDropout,
    build_model,
    score_loss,
)
from kexue.metrics.classification import confusion, macro_f1


def test_parameter_count_is_the_articles():
    assert sum(p.numel() for p in build_model("spectra").parameters()) == 748_324


def test_shapes_after_every_block_and_pool():
    outs = build_model("spectra").features(torch.randn(2, 1, 2600))
    assert [tuple(o.shape[1:]) for o in outs] == [
        (16, 1300), (16, 650), (32, 325), (32, 162), (64, 81), (64, 40), (128, 20), (128, 20)]
    assert build_model("spectra")(torch.randn(2, 1, 2600)).shape == (2, 4)


def test_mnist1d_adaptation_pools_after_blocks_2_4_6():
    model = build_model("mnist1d")
    outs = model.features(torch.randn(3, 1, 40))
    assert [o.shape[2] for o in outs] == [40, 20, 20, 10, 10, 5, 5, 5]
    assert [o.shape[1] for o in outs] == [16, 16, 32, 32, 64, 64, 128, 128]
    assert model(torch.randn(3, 1, 40)).shape == (3, 10)


def test_split_sum_is_relu_then_sum_not_concat():
    torch.manual_seed(0)
    layer = SplitSumConv(3, 4, dilation=2)
    x = torch.randn(2, 3, 17)
    h = torch.nn.functional.conv1d(x, layer.conv.weight, layer.conv.bias, padding=2, dilation=2)
    assert torch.allclose(layer(x), h[:, :4].relu() + h[:, 4:].relu())
    assert layer.conv.out_channels == 8 and layer.conv.kernel_size == (3,)


def test_block_shortcut_and_dilations():
    block = Block(16, 32)
    assert [c.conv.dilation[0] for c in block.convs] == [1, 2, 4]
    assert [c.conv.padding[0] for c in block.convs] == [1, 2, 4]
    assert block.shortcut.kernel_size == (1,)
    assert isinstance(Block(32, 32).shortcut, torch.nn.Identity)
    x = torch.randn(2, 32, 25)
    same = Block(32, 32)
    assert torch.allclose(same(x), x + same.convs(x))  # no activation after the add


def test_keras_init_glorot_uniform_zero_bias():
    model = build_model("spectra")
    conv = model.blocks[7].convs[1].conv  # (256, 128, 3)
    bound = math.sqrt(6 / (128 * 3 + 256 * 3))
    assert conv.weight.abs().max() <= bound
    assert conv.weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.02)
    assert all((m.bias == 0).all() for m in model.modules() if hasattr(m, "bias")
               and isinstance(m.bias, torch.Tensor))


def test_timestep_dropout_mask_is_shared_by_channels_and_only_in_training():
    drop = TimestepDropout(0.5)
    x = torch.ones(4, 128, 20)
    y = drop(x, torch.Generator().manual_seed(0))
    assert set(y.unique().tolist()) == {0.0, 2.0}  # kept steps scaled by 1/(1-p)
    assert (y == y[:, :1, :]).all()  # one (B, 1, T) mask for every channel
    assert 0 < (y[:, 0] == 0).float().mean() < 1
    again = drop(x, torch.Generator().manual_seed(0))
    assert torch.equal(y, again)  # the step generator fixes the mask: resumable
    drop.eval()
    assert torch.equal(drop(x), x)


def test_score_loss_against_hand_computed_value():
    p = torch.tensor([[0.7, 0.1, 0.1, 0.1], [0.2, 0.6, 0.1, 0.1], [0.1, 0.2, 0.3, 0.4]])
    y = torch.tensor([0, 1, 1])
    # class 0: 0.7 / (1 + 1.0); class 1: (0.6 + 0.2) / (2 + 0.9); classes 2, 3: 0
    # L = -log(½ (0.35 + 0.8/2.9)) = 1.16177245
    assert score_loss(torch.log(p), y).item() == pytest.approx(1.16177245, abs=1e-5)


def test_score_loss_puts_epsilon_on_every_element_of_the_masked_batch():
    y = torch.tensor([0, 1, 2, 3, 0, 0])  # B = 6, class counts 3, 1, 1, 1
    loss = score_loss(60 * torch.nn.functional.one_hot(y, 4).float(), y).item()
    # Su's Keras sums (y_c + p_c + ε) over the whole masked (B, 4) tensor: 4·B·ε per class,
    # so at p = y the loss is (B·ε/2)·Σ_c 1/n_c − ε = 3e-7·(1/3 + 3) − 1e-7 = 9e-7 (spec §4);
    # one ε per row (B·ε) would give 1.5e-7
    per_class = [n / (2 * n + 4 * 6 * 1e-7) for n in (3, 1, 1, 1)]
    assert loss == pytest.approx(-math.log(0.5 * sum(per_class) + 1e-7), abs=5e-8)
    assert loss == pytest.approx(9e-7, abs=5e-8)


def test_score_loss_has_finite_gradients():
    logits = torch.randn(16, 4, requires_grad=True)
    score_loss(logits, torch.randint(0, 4, (16,))).backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


@pytest.mark.parametrize("seed", range(5))
def test_macro_f1_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.choice(4, 300, p=[0.7, 0.15, 0.1, 0.05])
    p = np.where(rng.random(300) < 0.6, y, rng.integers(0, 4, 300))  # partly right
    ref = f1_score(y, p, average="macro", labels=[0, 1, 2, 3], zero_division=0)
    assert macro_f1(y, p) == pytest.approx(ref, abs=1e-12)


def test_macro_f1_absent_class_counts_zero_and_warns():
    y, p = np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2])  # qso neither true nor predicted
    with pytest.warns(UserWarning, match="neither true nor predicted"):
        score = macro_f1(y, p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = f1_score(y, p, average="macro", labels=[0, 1, 2, 3], zero_division=0)
    assert score == pytest.approx(ref) == pytest.approx((2 / 3 + 2 / 3 + 1 + 0) / 4)
    assert confusion(y, p).tolist() == [[1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]


def test_macro_f1_with_ten_classes_matches_sklearn():
    # MNIST-1D (the external check) has 10 classes: n_classes is not fixed at 4
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 500)
    p = np.where(rng.random(500) < 0.5, y, rng.integers(0, 10, 500))
    ref = f1_score(y, p, average="macro", labels=list(range(10)), zero_division=0)
    assert macro_f1(y, p, n_classes=10) == pytest.approx(ref, abs=1e-12)
    assert confusion(y, p, n_classes=10).sum() == 500
