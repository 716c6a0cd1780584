import re

import pytest

from kexue.data.paraphrase import (
    CONFUSABLE,
    INTENTS,
    SLOT_POOLS,
    ParaphraseNoise,
    generate,
    make_sentence,
)


@pytest.fixture(scope="module")
def corpus():
    return generate(600, heldout_fraction=0.1, seed=3)


def test_sizes_split_and_label(corpus):
    assert len(corpus.groups) == 600 and corpus.n_train == 540
    assert all(5 <= len(g) <= 10 for g in corpus.groups)
    assert all(len(set(g)) == len(g) for g in corpus.groups)  # distinct within a group
    assert "SYNTHETIC" in corpus.label
    assert corpus.settings["noise.typo"] == 0.03


def test_heldout_values_are_never_seen_in_training(corpus):
    train, heldout = set(corpus.values[:corpus.n_train]), set(corpus.values[corpus.n_train:])
    assert heldout and not train & heldout
    for group, value in zip(corpus.groups, corpus.values):  # the value is in (nearly) every
        assert sum(value in s for s in group) >= len(group) // 2  # sentence despite typos


def test_hard_negatives_exist_among_heldout_groups(corpus):
    pairs = list(zip(corpus.intents, corpus.values))[corpus.n_train:]
    assert len(set(pairs)) == len(pairs)  # a group is one (intent, value)
    values = [v for _, v in pairs]
    intents = [i for i, _ in pairs]
    assert len(set(values)) < len(values) and len(set(intents)) < len(intents)


def test_deterministic_by_seed():
    a, b, c = generate(50, seed=1), generate(50, seed=1), generate(50, seed=2)
    assert a.groups == b.groups and a.groups != c.groups


def test_intents_and_pools_as_specified():
    assert len(INTENTS) == 40
    assert all(4 <= len(templates) <= 8 for _, templates in INTENTS)
    assert all(t.count("{X}") == 1 for _, templates in INTENTS for t in templates)
    for modifiers, heads in SLOT_POOLS.values():
        assert len(modifiers) * len(heads) >= 300


def test_noise_operations():
    import random

    rng = random.Random(0)
    quiet = ParaphraseNoise(reorder=0, synonym=0, prefix=0, particle=0, typo=0)
    assert make_sentence("{X}一般有多高", ("布艺", "沙发"), quiet, rng) == "布艺沙发一般有多高"
    swapped = ParaphraseNoise(reorder=1, synonym=1, prefix=0, particle=0, typo=0)
    swapped_text = make_sentence("{X}有多高，一般来说", ("", "沙发"), swapped, rng)
    assert swapped_text == "通常来说，沙发有多高"
    loud = ParaphraseNoise(reorder=0, synonym=0, prefix=1, particle=1, typo=0)
    s = make_sentence("{X}多少钱", ("小米", "手机"), loud, rng)
    assert re.fullmatch(r"(请问|我想知道|想问一下|谁知道|问一下)小米手机多少钱[呢啊吗?？]", s)
    # Typos: about 3 % of the confusable characters change, always to a listed confusable.
    typo = ParaphraseNoise(reorder=0, synonym=0, prefix=0, particle=0, typo=0.03)
    text = "的在做哪几么高钱买是" * 10
    changed = 0
    for _ in range(300):
        out = make_sentence(text + "{X}", ("", ""), typo, rng)
        for a, b in zip(text, out):
            if a != b:
                assert b in CONFUSABLE[a]
                changed += 1
    assert 0.02 < changed / (300 * len(text)) < 0.04


def test_too_many_groups_is_an_error():
    with pytest.raises(ValueError, match="values_per_type"):
        generate(100_000, values_per_type=300)


def test_lexicon_round_trips_through_the_embedded_file(tmp_path):
    from kexue.data.paraphrase import LEXICON, read_lexicon, write_lexicon

    write_lexicon(tmp_path)
    first = (tmp_path / "lexicon.json").read_bytes()
    assert read_lexicon(tmp_path) == LEXICON
    write_lexicon(tmp_path)
    assert (tmp_path / "lexicon.json").read_bytes() == first
    lex = read_lexicon(tmp_path)
    assert generate(40, seed=5, lex=lex).groups == generate(40, seed=5).groups


def test_head_only_names_the_value_by_its_head():
    import random

    rng = random.Random(0)
    vague = ParaphraseNoise(reorder=0, synonym=0, prefix=0, particle=0, typo=0, head_only=1)
    assert make_sentence("{X}一般有多高", ("布艺", "沙发"), vague, rng) == "沙发一般有多高"


def test_bad_lexicon_is_a_data_error(tmp_path):
    from kexue.data.paraphrase import read_lexicon
    from kexue.errors import DataError

    (tmp_path / "lexicon.json").write_text("{}", encoding="utf-8")
    with pytest.raises(DataError, match="lexicon.json: not a paraphrase lexicon"):
        read_lexicon(tmp_path)


def test_the_embedded_dataset_is_generated_with_provenance(tmp_path):
    from kexue.data.fetch import generate_dataset
    from kexue.data.paraphrase import LEXICON, read_lexicon

    generate_dataset("paraphrase_lexicon", tmp_path / "raw")
    assert read_lexicon(tmp_path / "raw") == LEXICON
    assert (tmp_path / "raw" / "PROVENANCE.json").is_file()
