import math

import pytest
import torch

from kexue.articles.amsoftmax_sim.model import GroupClassifier, SentenceEncoder
from kexue.nn import parameter_count

torch.set_num_threads(1)


def test_parameter_counts_match_the_spec_table():
    model = GroupClassifier(n_tokens=3000 + 2, groups=90_000)
    assert parameter_count(model.encoder.gru) == 99_072
    assert parameter_count(model.classifier) == 11_520_000
    assert parameter_count(model.encoder.embedding) == (3000 + 2) * 128
    assert model.encoder.embedding.padding_idx is None  # row 0 is trainable, no masking


def test_keras_initialisation():
    torch.manual_seed(0)
    model = GroupClassifier(n_tokens=500, groups=2000, embedding=128, hidden=128)
    gru = model.encoder.gru
    w_hh = gru.weight_hh_l0  # (3h, h): orthonormal columns
    assert torch.allclose(w_hh.T @ w_hh, torch.eye(128), atol=1e-5)
    limit = math.sqrt(6 / (128 + 3 * 128))
    assert gru.weight_ih_l0.abs().max() <= limit
    assert gru.weight_ih_l0.std().item() == pytest.approx(limit / math.sqrt(3), rel=0.02)
    assert (gru.bias_ih_l0 == 0).all() and (gru.bias_hh_l0 == 0).all()
    emb = model.encoder.embedding.weight
    assert emb.abs().max() <= 0.05 and emb.std().item() == pytest.approx(0.05 / math.sqrt(3),
                                                                          rel=0.05)
    # Class vectors are not normalised at init: Glorot over (128, N) gives norms of about
    # sqrt(128 * 2 / (128 + N)).
    norms = model.classifier.weight.norm(dim=1)
    assert norms.mean().item() == pytest.approx(math.sqrt(256 / 2128), rel=0.05)


def test_encoding_is_the_unit_norm_state_after_all_steps_padding_included():
    torch.manual_seed(0)
    enc = SentenceEncoder(20, embedding=8, hidden=6)
    ids = torch.tensor([[5, 6, 7, 0, 0], [5, 6, 7, 8, 9]])
    e = enc(ids)
    assert torch.allclose(e.norm(dim=1), torch.ones(2))
    _, state = enc.gru(enc.embedding(ids))
    assert torch.allclose(e, torch.nn.functional.normalize(state[0], dim=1))
    # Trailing padding changes the encoding (no masking) ...
    assert not torch.allclose(enc(ids[:1, :3]), e[:1])
    # ... unless the masked deviation is asked for.
    masked = SentenceEncoder(20, embedding=8, hidden=6, masked=True)
    masked.load_state_dict(enc.state_dict())
    assert torch.allclose(masked(ids[:1]), enc(ids[:1, :3]), atol=1e-6)


def test_logits_are_cosines_once_the_class_vectors_are_projected():
    from kexue.nn.margin import project_unit_norm_

    torch.manual_seed(0)
    model = GroupClassifier(n_tokens=30, groups=40, embedding=8, hidden=8)
    ids = torch.randint(30, (16, 10))
    assert model(ids).abs().max() < 0.9
    project_unit_norm_(model.classifier.weight)
    e = model.encoder(ids)
    cos = torch.nn.functional.cosine_similarity(e[:, None], model.classifier.weight[None], dim=2)
    assert torch.allclose(model(ids), cos, atol=1e-6)
