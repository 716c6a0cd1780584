"""The Python-3 port of the Sogou score: E5 (the shipped self-test pair, all 8,000 rows) and the
hand-made check cases of spec dgcnn_qa §6, whose expected values come from the Python-2 script."""

import pytest

from kexue.articles.dgcnn_qa.metric_check import CHECK_CASES  # the spec §6 cases, shared with E5
from kexue.errors import DataError
from kexue.metrics.sogou import (
    OFFICIAL_PUNCTUATION,
    Reference,
    char_f1,
    normalise,
    prediction_lines,
    py27_hash,
    py27_set_order,
    read_punctuation,
    score_file,
    score_lines,
    score_predictions,
    tokens,
)


@pytest.fixture(scope="module")
def tool(shared_datasets):
    return shared_datasets / "sogouqa-sample" / "evaluate_tool"


@pytest.fixture(scope="module")
def ref(tool):
    return Reference.load(tool / "qid_answer_expand", tool / "punctuation")


def test_embedded_punctuation_is_the_official_file(tool):
    marks = read_punctuation(tool / "punctuation")
    assert marks == OFFICIAL_PUNCTUATION
    assert len(marks) == 128 and "\u3000" in marks and "" not in marks


def test_reference_reads_all_30000_questions(ref):
    assert len(ref.expand) == 30_000
    assert ref.gold["12893"] == " 雾 雨 电"  # the gold is not stripped
    assert set(ref.expand["32511"]) == {"", "microns", "微米"}
    assert "巴西俄罗斯印度中国南非" in ref.expand["10001"]  # normalised forms are added


def test_reproduces_the_shipped_test_out_on_all_rows(ref, tool):
    """Byte for byte, column 7 included: the first maximising item in CPython 2.7's set order."""
    result = score_file(ref, tool / "test_input")
    assert result.summary() == [1.0, 1.0, 1.0]
    shipped = (tool / "test_out").read_text(encoding="utf-8").split("\n")[:-1]
    assert len(shipped) == len(result.lines) == 8000
    for mine, theirs in zip(result.lines, shipped, strict=True):
        assert mine.line() == theirs


def test_python27_set_order():
    # Python 2.7's well-known hash("a") (64-bit); slots 0 ("a") and 3 ("b") in a table of 8
    assert py27_hash(b"") == 0 and py27_hash(b"a") == 12416037344
    assert py27_set_order(["b", "a"]) == ("a", "b")
    assert py27_set_order(["x", "x", "y"]) in (("x", "y"), ("y", "x"))
    assert len(py27_set_order([str(i) for i in range(40)])) == 40  # survives two resizes




@pytest.mark.parametrize(("qid", "answer", "acc", "f1"), CHECK_CASES)
def test_check_cases_of_the_python2_script(ref, qid, answer, acc, f1):
    row = score_lines(ref, [f"{qid}\t{answer}"]).lines[0]
    assert row.accurate == acc
    assert f"{row.f1:f}" == f"{f1:f}"


def test_missing_qids_are_not_counted_and_duplicates_count_twice(ref):
    # the script's own semantics: two lines, one duplicated -> mean over the lines
    result = score_lines(ref, ["10000\t林海音", "10000\t林海音", "10001\t错"])
    assert result.accuracy == pytest.approx(2 / 3)
    # the pipeline: one line per evaluated question, empty when nothing was decoded
    result = score_predictions(ref, ["10000", "10001", "10002"], {"10000": "林海音"})
    assert result.accuracy == pytest.approx(1 / 3) and len(result.lines) == 3
    with pytest.raises(DataError, match="10000"):
        score_predictions(ref, ["10000", "10000"], {})
    with pytest.raises(DataError, match="outside"):
        score_predictions(ref, ["10000"], {"10001": "x"})


def test_fatal_inputs(ref):
    with pytest.raises(DataError, match="line 2"):
        score_lines(ref, ["10000\t林海音", "10001"])
    with pytest.raises(DataError, match="99"):
        score_lines(ref, ["99\tx"])


# --- without the mirror -----------------------------------------------------------------------


def test_normalisation_is_python2_byte_string_semantics():
    assert normalise("ＡＢｃ\u3000Ｄ") == "abcd"  # full-width, ASCII lower, U+3000 -> deleted
    assert normalise("É Ω Ⅱ") == "ÉΩⅡ"  # non-ASCII letters keep their case
    assert normalise("a\u00a0b") == "a\u00a0b"  # NBSP is not whitespace
    assert normalise("《书名》,x.y") == "书名xy"
    assert normalise("。") == ""


def test_token_rule_splits_after_punctuation_and_keeps_empty_tokens():
    assert tokens("x/1") == {"x", "1"} == tokens("1 x")
    assert tokens(" 雾 雨 电") == {"", "雾", "雨", "电"}
    assert tokens("A,B") == {"a", "b"}


def test_char_f1_counts_a_multiset():
    assert char_f1("aab", "ab") == (pytest.approx(0.8), pytest.approx(2 / 3), 1.0)
    assert char_f1("x", "y") == (0.0, 0.0, 0.0)


def test_written_reference_reads_back(tmp_path):
    ref = Reference.from_lines(["1\t北京\t北京|北京市", "2\tＡＢ\tＡＢ"])
    ref.write(tmp_path / "expand")
    again = Reference.load(tmp_path / "expand")
    assert again.gold == ref.gold
    assert {k: set(v) for k, v in again.expand.items()} == {k: set(v) for k, v in ref.expand.items()}
    assert set(again.expand["2"]) == {"ＡＢ", "ab"}
    lines = prediction_lines(["1", "2"], {"1": "北京\t市"})
    assert lines == ["1\t北京 市", "2\t"]
    assert score_lines(again, lines).summary() == score_predictions(
        again, ["1", "2"], {"1": "北京\t市"}).summary()
