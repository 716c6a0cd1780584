from collections import Counter

import pytest

from kexue.data.sentence_groups import (
    drop_shared,
    positive_components,
    read_lcqmc,
    read_tongyiju,
    write_tongyiju,
)
from kexue.errors import DataError


def test_tongyiju_round_trip_and_order(tmp_path):
    path = tmp_path / "tongyiju.csv"
    path.write_text("7\t沙发多高\n2\t怎么去机场\n7\t沙发一般多高\n", encoding="utf-8")
    assert read_tongyiju(path) == [["怎么去机场"], ["沙发多高", "沙发一般多高"]]
    write_tongyiju(tmp_path / "out.csv", [["a", "b"], ["c"]])
    assert (tmp_path / "out.csv").read_text(encoding="utf-8") == "0\ta\n0\tb\n1\tc\n"


@pytest.mark.parametrize("text", ["x\t沙发\n", "沙发多高\n", "3\t\n"])
def test_tongyiju_format_errors_name_the_line(tmp_path, text):
    path = tmp_path / "tongyiju.csv"
    path.write_text("1\tok\n" + text, encoding="utf-8")
    with pytest.raises(DataError, match=r"tongyiju.csv:2: expected 'group_id<TAB>sentence'"):
        read_tongyiju(path)


def test_lcqmc_errors(tmp_path):
    path = tmp_path / "dev.txt"
    path.write_text("a\tb\t2\n", encoding="utf-8")
    with pytest.raises(DataError, match="dev.txt:1: expected 's1<TAB>s2<TAB>label'"):
        read_lcqmc(path)
    path.write_bytes("a\tb\t1\n".encode("gbk") + b"\xff\xfe\n")
    with pytest.raises(DataError, match="not UTF-8"):
        read_lcqmc(path)


def test_components_by_hand():
    pairs = [("a", "b", 1), ("c", "d", 1), ("b", "c", 1), ("e", "f", 0), ("e", "g", 1),
             ("h", "h", 1), ("x", "y", 0)]
    assert positive_components(pairs) == [["a", "b", "c", "d"], ["e", "g"], ["h"]]
    kept, dropped = drop_shared([["a", "z"], ["q", "r"], ["g"]], [["a", "b"], ["e", "g"]])
    assert kept == [["q", "r"]] and dropped == 2


def test_lcqmc_mirror_components_match_the_spec(shared_datasets):
    dev = positive_components(read_lcqmc(shared_datasets / "lcqmc" / "dev.txt"))
    test = positive_components(read_lcqmc(shared_datasets / "lcqmc" / "test.txt"))

    def sizes(groups):
        return dict(Counter(min(len(g), 5) for g in groups))

    assert (len(dev), sum(map(len, dev))) == (3186, 7570)
    assert sizes(dev) == {2: 2254, 3: 689, 4: 225, 5: 18}
    assert (len(test), sum(map(len, test))) == (5878, 12119)
    assert sizes(test) == {1: 3, 2: 5542, 3: 303, 4: 27, 5: 3}
    kept, dropped = drop_shared(dev, test)
    assert (dropped, len(kept), sum(map(len, kept))) == (114, 3072, 7281)


def test_lcqmc_is_fetched_and_verified_from_the_mirror(shared_datasets, tmp_path):
    from kexue.data.fetch import fetch_dataset

    fetch_dataset("lcqmc", tmp_path / "lcqmc", mirror=str(shared_datasets), progress=False)
    assert len(read_lcqmc(tmp_path / "lcqmc" / "dev.txt")) == 8802
