"""DGCNN maths: the gated block's residual form, masks (padding never changes an output),
attention pooling, the focal loss from logits, decoding and voting on hand-made cases."""

import math

import pytest
import torch

from kexue.articles.dgcnn_qa.decoding import decode_question, passage_candidates, vote
from kexue.articles.dgcnn_qa.model import DGCNN2019, AttentionPooling, GatedDilatedBlock
from kexue.nn.losses import binary_focal_loss, log_sigmoid_product, masked_mean

torch.set_num_threads(1)


def _ids(rows, pad_to):
    return torch.tensor([r + [0] * (pad_to - len(r)) for r in rows])


# --- the block ----------------------------------------------------------------------------------


def test_block_is_the_highway_residual_with_masks_before_and_after():
    torch.manual_seed(0)
    block = GatedDilatedBlock(4, dilation=2).eval()
    x = torch.randn(2, 7, 4)
    mask = torch.ones(2, 7, 1)
    mask[1, 5:] = 0
    h, g = block.conv((x * mask).transpose(1, 2)).transpose(1, 2).chunk(2, dim=-1)
    s = torch.sigmoid(g)
    expected = (x * (1 - s) + h * s) * mask  # X is the block input before masking
    torch.testing.assert_close(block(x, mask), expected)
    assert block(x, mask)[1, 5:].abs().max() == 0


def test_block_conv_is_dilated_same_padding_with_bias():
    block = GatedDilatedBlock(3, dilation=4)
    assert block.conv.dilation == (4,) and block.conv.padding == (4,)
    assert block.conv.bias is not None and block.conv.out_channels == 6
    assert block(torch.randn(1, 9, 3), torch.ones(1, 9, 1)).shape == (1, 9, 3)


def test_gate_dropout_acts_in_training_only():
    torch.manual_seed(0)
    x, mask = torch.randn(2, 6, 4), torch.ones(2, 6, 1)
    block = GatedDilatedBlock(4, gate_dropout=0.5).eval()
    assert torch.equal(block(x, mask), block(x, mask))
    block.train()
    assert not torch.equal(block(x, mask), block(x, mask))


# --- attention pooling --------------------------------------------------------------------------


def test_attention_pooling_is_a_masked_softmax_average():
    torch.manual_seed(0)
    pool = AttentionPooling(3)
    x = torch.randn(1, 4, 3)
    mask = torch.tensor([[[1.0], [1.0], [0.0], [0.0]]])
    logits = pool.score(torch.tanh(pool.proj(x[:, :2])))
    expected = (torch.softmax(logits, dim=1) * x[:, :2]).sum(1)
    torch.testing.assert_close(pool(x, mask), expected)
    assert pool.proj.bias is None and pool.score.bias is None
    # an all-padding row stays finite (a uniform average), no NaN
    assert torch.isfinite(pool(x, torch.zeros(1, 4, 1))).all()


# --- padding invariance of the whole models -----------------------------------------------------


def test_dgcnn2019_outputs_do_not_depend_on_padding():
    torch.manual_seed(0)
    model = DGCNN2019(vocab_size=30, width=16).eval()
    q = [[3, 4, 5], [6, 7]]
    p = [[8, 9, 10, 11, 12, 13], [14, 15, 16]]
    s1, e1, g1 = model(_ids(q, 3), _ids(p, 6))
    s2, e2, g2 = model(_ids(q, 9), _ids(p, 20))
    torch.testing.assert_close(g1, g2)
    torch.testing.assert_close(s1[0], s2[0, :6])
    torch.testing.assert_close(e1[1, :3], e2[1, :3])
    # and a row alone gives the same outputs as in the batch
    s3, _, g3 = model(_ids(q[1:], 2), _ids(p[1:], 3))
    torch.testing.assert_close(s3[0], s1[1, :3])
    torch.testing.assert_close(g3, g1[1:])


def test_dgcnn2019_shape_and_receptive_field():
    model = DGCNN2019(vocab_size=10, width=8).eval()
    assert [b.conv.dilation[0] for b in model.passage_blocks] == [1, 2, 4, 8, 16, 1]
    assert [b.conv.dilation[0] for b in model.question_blocks] == [1, 2, 1]
    assert model.passage_pool.proj.weight.shape == (16, 16)
    assert model.fuse.bias is None and model.global_head.bias is not None
    # receptive field 65: position 0's output depends on position 32, not on 33
    passage = torch.full((1, 80), 3)
    base = model(torch.tensor([[2]]), passage)[0][0, 0]
    for pos, changes in ((32, True), (33, False)):
        other = passage.clone()
        other[0, pos] = 4
        # the global score (attention over all positions) changes the head inputs only via
        # concat(q): the start logit at 0 depends on position pos only through the convs
        assert (model(torch.tensor([[2]]), other)[0][0, 0] != base).item() is changes


# --- focal loss ---------------------------------------------------------------------------------


def test_focal_loss_matches_the_formula_on_a_product_of_sigmoids():
    a, b = torch.tensor([0.3, -1.2, 2.0]), torch.tensor([1.0, 0.5, -0.7])
    y = torch.tensor([1.0, 0.0, 1.0])
    p = torch.sigmoid(a) * torch.sigmoid(b)
    expected = -0.25 * y * (1 - p) ** 2 * p.log() - 0.75 * (1 - y) * p ** 2 * (1 - p).log()
    got = binary_focal_loss(log_sigmoid_product(a, b), y)
    torch.testing.assert_close(got, expected)


def test_focal_loss_is_finite_and_clipped_at_the_extremes():
    a = torch.tensor([60.0, -60.0], requires_grad=True)
    b = torch.tensor([60.0, -60.0])
    loss = binary_focal_loss(log_sigmoid_product(a, b), torch.tensor([0.0, 1.0]))
    # p clipped to 1 - 1e-8 and 1e-8: the loss of a confident mistake is bounded
    clip = 1e-8
    assert loss[0].item() == pytest.approx(-0.75 * (1 - clip) ** 2 * math.log(clip), rel=1e-4)
    assert loss[1].item() == pytest.approx(-0.25 * (1 - clip) ** 2 * math.log(clip), rel=1e-4)
    loss.sum().backward()
    assert torch.isfinite(a.grad).all()


def test_masked_mean_counts_only_real_positions():
    values = torch.tensor([[1.0, 3.0, 100.0]])
    assert masked_mean(values, torch.tensor([[True, True, False]])).item() == 2.0


# --- decoding -----------------------------------------------------------------------------------


def test_candidates_thresholds_span_limit_and_best_per_string():
    text = "北京是首都北京"
    start = [0.9, 0.0, 0.0, 0.0, 0.0, 0.5, 0.0]
    end = [0.0, 0.8, 0.0, 0.0, 0.0, 0.0, 0.6]
    got = passage_candidates(text, start, end)
    # 北京 at 0-1 (0.72) and at 5-6 (0.30): the best is kept; 北京是首都北 (0..6 ends at 6)
    assert got["北京"] == pytest.approx(0.72)
    assert got["北京是首都北京"] == pytest.approx(0.54)
    assert set(got) == {"北京", "北京是首都北京"}
    assert passage_candidates(text, start, end, max_span=6) == {"北京": pytest.approx(0.72)}
    # strict threshold
    assert passage_candidates("ab", [0.1, 0.0], [0.0, 0.5]) == {}
    assert passage_candidates("ab", [0.9, 0.0], [0.0, 0.5], scoring="sqrt") == {
        "ab": pytest.approx(math.sqrt(0.45))}


def test_vote_sums_squares_over_one_plus_sum():
    # A: one passage at 0.9 -> 0.81/1.9 = 0.426; B: three at 0.5 -> 0.75/2.5 = 0.3
    assert vote([{"A": 0.9}, {"B": 0.5}, {"B": 0.5}, {"B": 0.5}]) == ("A", pytest.approx(0.81 / 1.9))
    # B: five at 0.6 -> 1.8/4 = 0.45 beats A
    answer, _ = vote([{"A": 0.9}] + [{"B": 0.6}] * 5)
    assert answer == "B"
    assert vote([{}, {}]) == ("", 0.0)


def test_product_and_sqrt_can_vote_differently():
    # E3: both rank spans identically inside a passage; the vote across passages differs
    passages = ["甲", "乙", "乙"]
    start = [[0.9], [0.6], [0.6]]
    end = [[0.9], [0.6], [0.6]]
    # product: 甲 0.81 -> 0.6561/1.81 = 0.362; 乙 0.36 x2 -> 0.2592/1.72 = 0.151
    assert decode_question(passages, start, end) == "甲"
    # sqrt: 甲 0.9 -> 0.81/1.9 = 0.426; 乙 0.6 x2 -> 0.72/2.2 = 0.327 ... still 甲; add passages
    more = passages + ["乙"] * 3
    start, end = start + [[0.6]] * 3, end + [[0.6]] * 3
    assert decode_question(more, start, end, scoring="product") == "甲"
    assert decode_question(more, start, end, scoring="sqrt") == "乙"
