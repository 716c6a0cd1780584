"""E5 in the workflow: the ported Sogou metric (``kexue.metrics.sogou``) checked on the official
evaluation files before it scores anything (spec dgcnn_qa §2 E5, §6).

Run by ``prepare`` when the ``sogouqa-sample`` dataset (the mirror's or a user folder's copy of
Su's ``evaluate_tool/``) is among the article's datasets:

* the shipped self-test: ``test_input`` scored against ``qid_answer_expand`` must give the
  shipped ``test_out`` (all 8,000 rows, every column) and the summary [1.0, 1.0, 1.0];
* the spec's hand-made check cases, with the accuracy and F1 the Python-2 script gives; they
  exercise what ``test_out`` (gold answers only) does not.

A failure stops the workflow (``MetricPortError``): no score of a port that fails is reported.
"""

from __future__ import annotations

from pathlib import Path

from kexue.errors import DataError
from kexue.metrics.sogou import Reference, score_answer, score_file

# qid, answer, accuracy, F1: the Python-2 script's output on the official files (spec §6)
CHECK_CASES = (
    ("18966", "x/1", 1, 1.0),
    ("18300", "FÚ", 0, 0.5),
    ("36929", "ⅱ卷", 0, 0.5),
    ("12893", "电 雨 雾", 0, 1.0),
    ("10000", "林海音\u00a0", 0, 0.857143),
    ("10000", "林海音的", 0, 0.857143),
    ("10001", "巴西，俄罗斯，印度，中国，南非", 1, 1.0),
    ("10004", "未婚妻\u3000", 1, 1.0),
    ("10000", "ＬＩＮ", 0, 0.0),
    ("32511", "。", 1, 0.0),
    ("10000", "", 0, 0.0),
)


class MetricPortError(DataError):
    """The metric port does not reproduce the official script on its own files."""


def check_metric_port(tool: Path) -> dict:
    """Run both checks on the ``evaluate_tool`` folder ``tool``; the counts, or raise."""
    ref = Reference.load(tool / "qid_answer_expand", tool / "punctuation")
    result = score_file(ref, tool / "test_input")
    shipped = (tool / "test_out").read_text(encoding="utf-8").split("\n")
    if shipped and shipped[-1] == "":
        shipped.pop()
    mine = [row.line() for row in result.lines]
    equal_1_6 = sum(a.split("\t")[:6] == b.split("\t")[:6] for a, b in zip(mine, shipped))
    identical = sum(a == b for a, b in zip(mine, shipped))
    cases = [(qid, answer, acc, f1, score_answer(ref, qid, answer))
             for qid, answer, acc, f1 in CHECK_CASES]
    failed = [f"qid {qid} answer {answer!r}: accuracy {row.accurate} F1 {row.f1:f} (the script: "
              f"{acc}, {f1:f})" for qid, answer, acc, f1, row in cases
              if (row.accurate, f"{row.f1:f}") != (acc, f"{f1:f}")]
    check = {
        "self_test_rows": len(shipped),
        "self_test_rows_columns_1_6_equal": equal_1_6,
        "self_test_rows_identical": identical,
        "self_test_summary": result.summary(),
        "check_cases": len(CHECK_CASES),
        "check_cases_passed": len(CHECK_CASES) - len(failed),
    }
    if len(mine) != len(shipped) or equal_1_6 != len(shipped) or result.summary() != [1.0] * 3:
        raise MetricPortError(
            f"{tool}: the metric port does not reproduce test_out ({equal_1_6} of {len(shipped)} "
            f"rows equal in columns 1-6, summary {result.summary()})")
    if failed:
        raise MetricPortError(f"{tool}: the metric port fails the check cases: "
                              + "; ".join(failed))
    return check
