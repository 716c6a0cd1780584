"""The 2018 variant (E2) where it differs from 2019: the model (inputs, block stack, heads, gate
noise; padding never changes an output), the 8 hand features, the half-width synonym labels and
the 10-"word" span limit; and that it learns the synthetic task."""

import numpy as np
import pytest
import torch

from kexue.articles.dgcnn_qa.config import ModelConfig, RunConfig
from kexue.articles.dgcnn_qa.decoding import passage_candidates, span_weights
from kexue.articles.dgcnn_qa.engine import (
    Corpus,
    training_batch,
)
from kexue.articles.dgcnn_qa.features import N_FEATURES, passage_features, unit_features
from kexue.articles.dgcnn_qa.model import DGCNN2018, GLU, GatedDilatedBlock, SinusoidalPosition
from kexue.articles.dgcnn_qa.train import build_model, build_optimiser
from kexue.data.qa import Passage, Question
from kexue.text import Vocabulary

torch.set_num_threads(1)


def _ids(rows, pad_to):
    return torch.tensor([r + [0] * (pad_to - len(r)) for r in rows])


def _features(rows, pad_to, fill):
    """Random features on the real positions, ``fill`` on the padding."""
    g = torch.Generator().manual_seed(1)
    out = torch.full((len(rows), pad_to, N_FEATURES), fill)
    for i, r in enumerate(rows):
        out[i, :len(r)] = torch.rand(len(r), N_FEATURES, generator=g)
    return out


# --- the model ----------------------------------------------------------------------------------


def test_dgcnn2018_outputs_do_not_depend_on_padding():
    """Longer padding, and garbage in the padded feature positions, change nothing."""
    torch.manual_seed(0)
    model = DGCNN2018(vocab_size=30, width=16).eval()
    q = [[3, 4, 5], [6, 7]]
    p = [[8, 9, 10, 11, 12, 13], [14, 15, 16]]
    s1, e1, g1 = model(_ids(q, 3), _ids(p, 6), _features(p, 6, 0.0))
    s2, e2, g2 = model(_ids(q, 9), _ids(p, 20), _features(p, 20, 7.0))
    torch.testing.assert_close(g1, g2)
    torch.testing.assert_close(s1[0], s2[0, :6])
    torch.testing.assert_close(e1[1, :3], e2[1, :3])
    s3, _, g3 = model(_ids(q[1:], 2), _ids(p[1:], 3), _features(p, 6, 0.0)[1:, :3])
    torch.testing.assert_close(s3[0], s1[1, :3])
    torch.testing.assert_close(g3, g1[1:])


def test_dgcnn2018_layout_and_receptive_field():
    model = DGCNN2018(vocab_size=10, width=8).eval()
    assert [b.conv.dilation[0] for b in model.question_blocks] == [1]
    assert [b.conv.dilation[0] for b in model.passage_blocks] == [1, 2, 4]
    # fusion: embedding + tiled q + position (3 x width) + 8 features -> width, kernel 1
    assert model.fuse.conv.in_channels == 3 * 8 + N_FEATURES and model.fuse.conv.kernel_size == (1,)
    assert model.passage_pool.proj.weight.shape == (8, 8)  # pooled over the block output
    assert model.start_head.hidden.bias is not None  # αᵀ tanh(W x + b) + β
    question, passage = torch.tensor([[2]]), torch.full((1, 30), 3)
    features = torch.zeros(1, 30, N_FEATURES)
    base = model(question, passage, features)[0][0, 0]
    for pos, changes in ((7, True), (8, False)):  # receptive field 15: radius 1 + 2 + 4
        other = passage.clone()
        other[0, pos] = 4
        assert (model(question, other, features)[0][0, 0] != base).item() is changes


def test_glu_fusion_has_no_residual():
    torch.manual_seed(0)
    glu = GLU(5, 3).eval()
    x, mask = torch.randn(2, 4, 5), torch.ones(2, 4, 1)
    mask[1, 2:] = 0
    h, g = glu.conv((x * mask).transpose(1, 2)).transpose(1, 2).chunk(2, dim=-1)
    torch.testing.assert_close(glu(x, mask), h * torch.sigmoid(g) * mask)


def test_gate_noise_multiplies_the_gate_in_training_only():
    torch.manual_seed(0)
    block = GatedDilatedBlock(4, gate_noise=0.1)
    g = (torch.rand(3, 5, 4) + 0.5) * torch.where(torch.rand(3, 5, 4) < 0.5, -1.0, 1.0)
    block.eval()
    torch.testing.assert_close(block.gate(g), torch.sigmoid(g))
    block.train()
    noisy = torch.logit(block.gate(g), eps=0) / g  # = 1 + ε
    assert not torch.allclose(noisy, torch.ones_like(noisy))
    assert ((noisy - 1).abs() <= 0.1 + 1e-4).all()


def test_sinusoidal_positions():
    pe = SinusoidalPosition(6)(5)
    assert pe.shape == (5, 6)
    torch.testing.assert_close(pe[0], torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0, 1.0]))
    torch.testing.assert_close(pe[3, :2], torch.tensor([np.sin(3.0), np.cos(3.0)]).float())
    assert len(list(SinusoidalPosition(6).parameters())) == 0  # fixed, not trained


def test_variant_switch_builds_the_model_and_the_optimiser():
    cfg = RunConfig(variant="2018", optimizer="adam")
    assert isinstance(build_model(20, ModelConfig(width=8), "2018"), DGCNN2018)
    assert not isinstance(build_model(20, ModelConfig(width=8)), DGCNN2018)
    assert isinstance(build_optimiser(build_model(20, ModelConfig(width=8), "2018"), cfg),
                      torch.optim.Adam)


# --- the hand features --------------------------------------------------------------------------


def _units(text):
    return np.array([ord(c) for c in text], dtype=np.int64)


def test_co_occurrence_counts_the_other_passages_over_all_passages():
    # the article's example: a word in 4 of the other 9 passages -> 4/10
    passages = ["甲"] * 5 + ["乙"] * 5
    values = unit_features(_units("丙"), [_units(p) for p in passages])
    assert values[0][0, 1] == pytest.approx(4 / 10)
    assert values[9][0, 1] == pytest.approx(4 / 10)


def test_exact_match_and_soft_match_windows():
    question, passage = "ab", "xaby"
    values = unit_features(_units(question), [_units(passage)])[0]
    assert values[:, 0].tolist() == [0, 1, 1, 0]  # exact match
    # w = 2: each unit at offset 1, so its window is (previous, itself): _x, xa, ab, by
    assert values[:, 2].tolist() == pytest.approx([0.0, 1 / 3, 1.0, 1 / 3])  # Jaccard
    assert values[:, 3].tolist() == pytest.approx([1.0, 1.0, 0.0, 1.0])  # edit distance / w


def test_passage_features_combine_characters_and_bigrams():
    features = passage_features("ab", ["xab", "c"])
    assert [f.shape for f in features] == [(3, N_FEATURES), (1, N_FEATURES)]
    # bigram level: xa, ab; the question's one bigram is ab. Char x: only xa (0); a: mean of
    # xa (0) and ab (1); b: ab (1)
    assert features[0][:, 4].tolist() == pytest.approx([0.0, 0.5, 1.0])
    assert features[0][:, 0].tolist() == [0, 1, 1]
    assert features[1][:, 4:].sum() == 0  # one character: no bigram


# --- labels and decoding ------------------------------------------------------------------------


def test_2018_labels_mark_every_synonym_on_the_half_width_text():
    q = Question("q1", "谁", (Passage("ＡＢ和林含英，还有AB", "林含英"), Passage("无关", "")))
    vocab = Vocabulary.build([q.question] + [p.text for p in q.passages])
    corpus = Corpus.encode([q], vocab, "2018", {"q1": ("林含英", "AB")})
    assert corpus.forms == [("AB", "林含英")]
    g = torch.Generator().manual_seed(0)
    for _ in range(10):  # whichever passage is drawn
        b = training_batch(corpus, [0], g, RunConfig(variant="2018"))
        if b["passage"].shape[1] > 2:
            break
    assert b["start"][0].nonzero().flatten().tolist() == [0, 3, 9]  # ＡＢ, 林含英, AB
    assert b["end"][0].nonzero().flatten().tolist() == [1, 5, 10]
    assert b["features"].shape == (1, b["passage"].shape[1], N_FEATURES)
    # 2019: the passage's own answer only, on the raw text
    corpus2019 = Corpus.encode([q], vocab)
    assert corpus2019.label_forms(0, 0) == ("林含英",) and corpus2019.features is None


def test_2018_span_limit_counts_letters_and_digits_as_half():
    assert span_weights("林ab１", "word2018") == [1.0, 0.5, 0.5, 0.5]
    assert span_weights("林ab") == [1.0, 1.0, 1.0]
    text = "x" * 20 + "y"
    start, end = [0.9] + [0.0] * 20, [0.0] * 19 + [0.9, 0.9]
    got = passage_candidates(text, start, end, max_span=10, unit="word2018")
    assert set(got) == {"x" * 20}  # 20 letters = 10 words; 21 are too long
    assert passage_candidates(text, start, end, max_span=10) == {}  # 2019: characters
