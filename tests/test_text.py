import numpy as np
import pytest
import torch

from kexue.errors import DataError
from kexue.text import (
    PAD,
    UNK,
    Vocabulary,
    batch,
    bigrams,
    centred_windows,
    codepoints,
    edit_distances,
    encode_batch,
    halfwidth,
    pad,
)


def test_halfwidth_maps_fullwidth_ascii_and_ideographic_space_only():
    assert halfwidth("ＡＢＣ１２３！～") == "ABC123!~"
    assert halfwidth("中\u3000文") == "中 文"
    assert halfwidth("，？") == ",?"  # full-width comma/question mark are in U+FF01-U+FF5E
    # outside U+FF01-U+FF5E: unchanged (yen, macron, cent signs; CJK punctuation; NBSP)
    assert halfwidth("￥￣￠、。《》\u00a0") == "￥￣￠、。《》\u00a0"
    assert halfwidth("abc 林海音") == "abc 林海音"


def test_vocabulary_reserved_ids_min_count_and_order():
    v = Vocabulary.build(["aab", "abc", "a"], min_count=2)
    assert v.tokens[:2] == ("<pad>", "<unk>") and (PAD, UNK) == (0, 1)
    # a: 4, b: 2, c: 1 (dropped by min_count)
    assert v.tokens[2:] == ("a", "b")
    assert v.encode("abcz") == [2, 3, UNK, UNK]
    assert v.encode("abab", maxlen=3) == [2, 3, 2]
    assert len(v) == 4 and "a" in v and "c" not in v
    assert v.decode([2, 3, UNK, PAD, PAD]) == "ab<unk>"


def test_vocabulary_ties_are_broken_by_code_point_and_extra_reserved_follow():
    v = Vocabulary.build(["ba", "ab"], extra_reserved=("<s>",))
    assert v.tokens == ("<pad>", "<unk>", "<s>", "a", "b")
    assert v.encode("ab") == [3, 4]


def test_vocabulary_rejects_bad_arguments():
    with pytest.raises(ValueError):
        Vocabulary.build(["a"], min_count=0)
    with pytest.raises(ValueError):
        Vocabulary(["a"], reserved=("<unk>", "<pad>"))


def test_vocabulary_save_load_roundtrip(tmp_path):
    v = Vocabulary.build(["林海音林", "ＡＢ"], extra_reserved=("<s>",))
    v.save(tmp_path / "vocab.json")
    w = Vocabulary.load(tmp_path / "vocab.json")
    assert w.tokens == v.tokens and w.n_reserved == 3
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(DataError, match="bad.json"):
        Vocabulary.load(tmp_path / "bad.json")


def test_pad_post_and_pre_with_masks():
    seqs = [[5, 6, 7], [8], []]
    ids, mask = pad(seqs, maxlen=4)
    np.testing.assert_array_equal(ids, [[5, 6, 7, 0], [8, 0, 0, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(mask, ids != 0)
    ids, mask = pad(seqs, maxlen=4, padding="pre")
    np.testing.assert_array_equal(ids, [[0, 5, 6, 7], [0, 0, 0, 8], [0, 0, 0, 0]])
    np.testing.assert_array_equal(mask, ids != 0)
    assert ids.dtype == np.int64 and mask.dtype == bool


def test_pad_truncates_at_either_end_and_defaults_to_longest():
    ids, _ = pad([[1, 2, 3, 4, 5]], maxlen=3)
    np.testing.assert_array_equal(ids, [[1, 2, 3]])
    ids, _ = pad([[1, 2, 3, 4, 5]], maxlen=3, truncating="pre")
    np.testing.assert_array_equal(ids, [[3, 4, 5]])
    ids, mask = pad([[1, 2], [3]])
    assert ids.shape == (2, 2) and mask.tolist() == [[True, True], [True, False]]
    assert pad([], maxlen=None)[0].shape == (0, 0)
    with pytest.raises(ValueError):
        pad([[1]], padding="middle")


def test_mask_is_true_on_real_tokens_even_when_they_are_unknown():
    # UNK (1) is a real token: only padding is masked
    _, mask = pad([[UNK, UNK]], maxlen=3)
    assert mask.tolist() == [[True, True, False]]


def test_batch_and_encode_batch_give_torch_tensors():
    v = Vocabulary.build(["今天天气", "不错"])
    ids, mask = encode_batch(v, ["今天", "天气不错啊"], maxlen=4)
    assert ids.dtype == torch.int64 and mask.dtype == torch.bool and ids.shape == (2, 4)
    assert v.decode(ids[0]) == "今天" and v.decode(ids[1]) == "天气不错"
    assert mask.sum(1).tolist() == [2, 4]
    ids, mask = batch([[2, 3], [4]])
    assert ids.tolist() == [[2, 3], [4, 0]]


def _levenshtein(a, b):
    """The textbook recursion, as the reference."""
    d = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, d[0] = d[0], i
        for j, y in enumerate(b, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (x != y))
    return d[len(b)]


def test_edit_distances_match_the_textbook_recursion():
    rng = np.random.default_rng(0)
    query = rng.integers(0, 4, 6)
    rows = rng.integers(0, 4, (200, 5))
    got = edit_distances(rows, query)
    assert got.tolist() == [_levenshtein(r.tolist(), query.tolist()) for r in rows]
    assert edit_distances(np.array([[1, 2, 3]]), []).tolist() == [3]  # empty query: deletions
    assert edit_distances(codepoints("kitten")[None], codepoints("sitting")).tolist() == [3]


def test_centred_windows_put_each_unit_at_offset_half_the_width():
    w = centred_windows(np.arange(4), 6)
    assert w.shape == (4, 6)
    assert w[0].tolist() == [-1, -1, -1, 0, 1, 2]  # 3 before, 2 after (the spec's w = 6)
    assert w[3].tolist() == [0, 1, 2, 3, -1, -1]
    assert centred_windows(np.arange(3), 1).tolist() == [[0], [1], [2]]
    with pytest.raises(ValueError):
        centred_windows(np.arange(3), 0)


def test_codepoints_and_bigrams_are_distinct_units():
    assert codepoints("ab").tolist() == [97, 98]
    b = bigrams("abab")
    assert len(b) == 3 and b[0] == b[2] != b[1]
    assert len(bigrams("a")) == 0 and len(codepoints("")) == 0
