"""Passage-QA data in Su's JSON format: SogouQA, WebQA, their samples and the synthetic KB-QA.

Su's format is a list of ``{id, question, passages: [{passage, answer}]}``; ``answer`` is per
passage: ``""`` when the passage has no answer, otherwise the form that occurs in it.

* ``load_su_json(path)``: the questions; incomplete records (the mirror samples end with a
  truncated fragment without ``id``/``question``) are skipped and counted, anything else
  malformed raises ``DataError`` naming the file and the record;
* ``read_webqa_annotated_xlsx(path)``: WebQA v1.0's annotated sets as converted in the mirror
  (one positive evidence per question) -> questions with one passage each; rows whose answer does
  not occur in the evidence are dropped and counted;
* ``read_webqa_v1_zip(path, member)``: a file of the official WebQA v1.0 zip (read in memory,
  never extracted; the archive is checked first, see ``kexue.data.archives``) -> Su's format;
* ``answer_spans(passage, answer)``: every exact, non-overlapping occurrence, left to right
  (the 2019 labelling).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from kexue.data.archives import check_zip, read_zip_member
from kexue.errors import DataError
from kexue.io import atomic_path


@dataclass(frozen=True)
class Passage:
    text: str
    answer: str  # the answer form occurring in this passage, "" if none


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    passages: tuple[Passage, ...]

    def to_json(self) -> dict:
        return {"id": self.id, "question": self.question,
                "passages": [{"passage": p.text, "answer": p.answer} for p in self.passages]}


@dataclass(frozen=True)
class QASet:
    questions: tuple[Question, ...]
    skipped: int = 0  # incomplete records left out (mirror samples: a truncated last record)


def _question(record: object, where: str) -> Question | None:
    if not isinstance(record, dict) or not isinstance(record.get("passages"), list):
        raise DataError(f"{where}: not a {{id, question, passages: [...]}} record")
    if "id" not in record or "question" not in record:
        return None
    passages = []
    for k, p in enumerate(record["passages"]):
        if not (isinstance(p, dict) and isinstance(p.get("passage"), str)
                and isinstance(p.get("answer", ""), str)):
            raise DataError(f"{where}, passage {k}: expected {{passage: str, answer: str}}")
        passages.append(Passage(p["passage"], p.get("answer", "")))
    if not isinstance(record["question"], str):
        raise DataError(f"{where}: question is not a string")
    return Question(str(record["id"]), record["question"], tuple(passages))


def parse_su_records(records: object, source: str) -> QASet:
    if not isinstance(records, list):
        raise DataError(f"{source}: expected a JSON list of questions")
    questions, skipped = [], 0
    for i, record in enumerate(records):
        q = _question(record, f"{source}, record {i}")
        if q is None:
            skipped += 1
        else:
            questions.append(q)
    ids = [q.id for q in questions]
    if len(set(ids)) != len(ids):
        raise DataError(f"{source}: duplicate question ids")
    return QASet(tuple(questions), skipped)


def load_su_json(path: Path) -> QASet:
    try:
        records = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    except ValueError as e:
        raise DataError(f"{path}: not valid JSON ({e})") from None
    return parse_su_records(records, str(path))


def save_su_json(path: Path, questions: Iterable[Question]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps([q.to_json() for q in questions], ensure_ascii=False),
                       encoding="utf-8")


def answer_spans(passage: str, answer: str) -> list[tuple[int, int]]:
    """(start, end) of every exact, non-overlapping occurrence of ``answer``, left to right;
    ``end`` is the index of the last character. No occurrence for an empty answer."""
    spans: list[tuple[int, int]] = []
    if not answer:
        return spans
    i = passage.find(answer)
    while i >= 0:
        spans.append((i, i + len(answer) - 1))
        i = passage.find(answer, i + len(answer))
    return spans


# --- WebQA ----------------------------------------------------------------------------------------

_XLSX_COLUMNS = (0, 1, 2, 3, 4, 5)  # evidence, question, answer, label, start, end


@dataclass(frozen=True)
class AnnotatedSet:
    qa: QASet
    dropped: int  # rows whose answer does not occur in the evidence


MAX_XLSX_BYTES = 256 << 20  # uncompressed; each annotated set is a few MB


def read_webqa_annotated_xlsx(path: Path, id_prefix: str) -> AnnotatedSet:
    """The mirror's ``test_ann.xlsx`` / ``validation_ann.xlsx``: one positive evidence per row;
    the row's answer is the passage's answer (and, for the metric, the only expand variant).
    The workbook (a zip of XML files) is checked as an untrusted archive before openpyxl opens
    it; openpyxl parses through defusedxml, which refuses entity expansion."""
    import openpyxl  # only this reader needs it

    try:
        with zipfile.ZipFile(path) as zf:
            check_zip(zf, str(path), max_total=MAX_XLSX_BYTES)
        wb = openpyxl.load_workbook(path, read_only=True)
        try:
            if wb.active is None:
                raise DataError(f"{path}: no worksheet in the workbook")
            rows = list(wb.active.iter_rows(values_only=True))
        finally:
            wb.close()
    except DataError:
        raise
    except (OSError, ValueError, KeyError, SyntaxError, zipfile.BadZipFile) as e:
        if isinstance(e, FileNotFoundError):
            raise DataError(f"{path}: missing xlsx workbook") from None
        raise DataError(f"{path}: not a readable xlsx workbook ({_root_cause(e)})") from None
    if not rows or tuple(rows[0][:6]) != _XLSX_COLUMNS:
        raise DataError(f"{path}: expected a header row 0..5 (evidence, question, answer, label, "
                        f"start, end)")
    questions, dropped = [], 0
    for n, row in enumerate(rows[1:], 2):
        if len(row) < 3 or not all(isinstance(v, (str, int, float)) for v in row[:3]):
            raise DataError(f"{path}, row {n}: missing evidence, question or answer")
        evidence, question, answer = (str(v) for v in row[:3])
        if not answer or answer not in evidence:
            dropped += 1
            continue
        questions.append(Question(f"{id_prefix}{n - 1:05d}", question,
                                  (Passage(evidence, answer),)))
    return AnnotatedSet(QASet(tuple(questions)), dropped)


def _root_cause(e: BaseException) -> str:
    """The innermost exception on one line (openpyxl wraps the XML error in a vaguer one)."""
    while e.__cause__ or e.__context__:
        e = e.__cause__ or e.__context__
    return " ".join(f"{type(e).__name__}: {e}".split())


def webqa_v1_records(data: object, source: str) -> list[dict]:
    """An official WebQA v1.0 JSON (``{qid: {question, evidences: {eid: {evidence, answer}}}}``,
    answers a list whose ``"no_answer"`` marks a negative evidence) -> Su's records; an evidence
    keeps its first answer form that occurs in it [assumption: Su's conversion is unpublished]."""
    if not isinstance(data, dict):
        raise DataError(f"{source}: expected a JSON object keyed by question id")
    records = []
    for qid, item in data.items():
        try:
            evidences = item["evidences"].values()
            passages = []
            for ev in evidences:
                text, answers = ev["evidence"], ev["answer"]
                found = [a for a in answers if a != "no_answer" and a and a in text]
                passages.append({"passage": text, "answer": found[0] if found else ""})
            records.append({"id": qid, "question": item["question"], "passages": passages})
        except (KeyError, TypeError, AttributeError) as e:
            raise DataError(f"{source}, question {qid}: not in the WebQA v1.0 format ({e})") from None
    return records


def read_webqa_v1_zip(path: Path, member: str) -> QASet:
    """One JSON file (``member``) of the official zip, checked and read in memory."""
    raw = read_zip_member(path, member)
    try:
        data = json.loads(raw.decode("utf-8"))
    except ValueError as e:
        raise DataError(f"{path}:{member}: not UTF-8 JSON ({e})") from None
    return parse_su_records(webqa_v1_records(data, f"{path}:{member}"), f"{path}:{member}")


def sogou_split(n: int, order: Sequence[int]) -> tuple[list[int], list[int]]:
    """Su's 2019 split of the shuffled Sogou questions: positions i % 3 == 0 validate, the
    others train. ``order`` is the shuffle (a permutation of range(n))."""
    if sorted(order) != list(range(n)):
        raise ValueError("order must be a permutation of range(n)")
    valid = [order[i] for i in range(n) if i % 3 == 0]
    train = [order[i] for i in range(n) if i % 3 != 0]
    return train, valid
