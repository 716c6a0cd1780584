"""The QA data layer: Su's JSON, the mirror's samples and WebQA annotated sets, safe zip reading,
the 2019 answer labelling and the synthetic KB-QA generator."""

import json
import stat
import zipfile

import pytest

from kexue.data import kbqa
from kexue.data.archives import read_zip_member, unsafe_reason, zip_names
from kexue.data.qa import (
    answer_spans,
    load_su_json,
    parse_su_records,
    read_webqa_annotated_xlsx,
    read_webqa_v1_zip,
    sogou_split,
)
from kexue.errors import DataError
from kexue.metrics.sogou import Reference, score_predictions


def test_answer_spans_mark_every_exact_non_overlapping_occurrence():
    assert answer_spans("北京是北京", "北京") == [(0, 1), (3, 4)]
    assert answer_spans("aaaa", "aa") == [(0, 1), (2, 3)]  # left to right, non-overlapping
    assert answer_spans("ＡＢ and AB", "AB") == [(7, 8)]  # no width conversion in 2019
    assert answer_spans("whatever", "") == []


def test_su_json_skips_incomplete_records_and_rejects_malformed_ones(tmp_path):
    good = {"id": 1, "question": "q", "passages": [{"passage": "p", "answer": ""}]}
    qa = parse_su_records([good, {"passages": []}], "x.json")
    assert len(qa.questions) == 1 and qa.skipped == 1 and qa.questions[0].id == "1"
    with pytest.raises(DataError, match="x.json, record 0, passage 0"):
        parse_su_records([{"id": 1, "question": "q", "passages": [{"passage": 3}]}], "x.json")
    with pytest.raises(DataError, match="duplicate"):
        parse_su_records([good, good], "x.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(DataError, match="bad.json"):
        load_su_json(tmp_path / "bad.json")


def test_mirror_samples(shared_datasets):
    sogou = load_su_json(shared_datasets / "sogouqa-sample" / "SogouQA.json")
    assert len(sogou.questions) == 21 and sogou.skipped == 1
    assert sum(len(q.passages) for q in sogou.questions) == 210
    assert sum(bool(p.answer) for q in sogou.questions for p in q.passages) == 79
    assert [q.id for q in sogou.questions] == [str(i) for i in range(10000, 10021)]
    webqa = load_su_json(shared_datasets / "webqa-sample" / "WebQA.json")
    assert len(webqa.questions) == 11 and webqa.skipped == 1
    assert sum(bool(p.answer) for q in webqa.questions for p in q.passages) == 96
    # Su's answers occur in their passages (林海音 / 林含英: each passage holds its own form)
    for q in sogou.questions + webqa.questions:
        for p in q.passages:
            assert not p.answer or answer_spans(p.text, p.answer)


def test_webqa_annotated_sets(shared_datasets):
    folder = shared_datasets / "webqa-sample"
    test = read_webqa_annotated_xlsx(folder / "test_ann.xlsx", "T")
    valid = read_webqa_annotated_xlsx(folder / "validation_ann.xlsx", "V")
    assert (len(test.qa.questions), test.dropped) == (3005, 1)
    assert (len(valid.qa.questions), valid.dropped) == (2997, 0)
    q = test.qa.questions[0]
    assert q.passages[0].answer == "法国" and "法国" in q.passages[0].text


def _zip(path, entries):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name)
            if mode:
                info.external_attr = mode << 16
            zf.writestr(info, data)
    return path


WEBQA_V1 = {"Q_TRN_000001": {"question": "中国的首都是", "evidences": {
    "Q_TRN_000001#00": {"answer": ["北京"], "evidence": "中国的首都是北京。"},
    "Q_TRN_000001#01": {"answer": ["no_answer"], "evidence": "天气很好。"}}}}


def test_webqa_v1_zip_is_read_in_memory(tmp_path):
    z = _zip(tmp_path / "WebQA.v1.0.zip",
             [("WebQA.v1.0/me_train.json", json.dumps(WEBQA_V1), 0)])
    qa = read_webqa_v1_zip(z, "me_train.json")
    assert [(p.text, p.answer) for p in qa.questions[0].passages] == [
        ("中国的首都是北京。", "北京"), ("天气很好。", "")]
    assert zip_names(z) == ["WebQA.v1.0/me_train.json"]
    with pytest.raises(DataError, match="one member"):
        read_zip_member(z, "me_test.json")


@pytest.mark.parametrize(("name", "mode"), [
    ("../evil.json", 0), ("/etc/passwd", 0), ("a/../../b", 0), ("C:/x", 0), ("a\\..\\b", 0),
    ("link", stat.S_IFLNK | 0o777)])
def test_unsafe_archives_are_rejected(tmp_path, name, mode):
    z = _zip(tmp_path / "bad.zip", [("ok.json", "{}", 0), (name, "x", mode)])
    with pytest.raises(DataError, match="unsafe archive entry"):
        read_zip_member(z, "ok.json")
    with pytest.raises(DataError, match="unsafe"):
        zip_names(z)


def test_unsafe_reason_accepts_plain_relative_names():
    assert unsafe_reason("WebQA.v1.0/me_test.ann.json") is None
    assert unsafe_reason("a/./b..c") is None


def test_not_a_zip(tmp_path):
    (tmp_path / "x.zip").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a zip"):
        zip_names(tmp_path / "x.zip")


def test_sogou_split_is_every_third_position_of_the_shuffle():
    train, valid = sogou_split(7, [6, 5, 4, 3, 2, 1, 0])
    assert valid == [6, 3, 0] and train == [5, 4, 2, 1]
    with pytest.raises(ValueError):
        sogou_split(3, [0, 0, 1])


@pytest.fixture(scope="module")
def small_kb():
    return kbqa.build(seed=3, n_train=200, n_valid=60, n_subjects=60)


def test_kbqa_is_deterministic_and_in_su_format(small_kb):
    again = kbqa.build(seed=3, n_train=200, n_valid=60, n_subjects=60)
    assert [q.to_json() for q in small_kb[0]] == [q.to_json() for q in again[0]]
    assert kbqa.build(seed=4, n_train=5, n_valid=1, n_subjects=60)[0][0] != small_kb[0][0]
    train, _, valid, _ = small_kb
    qa = parse_su_records([q.to_json() for q in train + valid], "kb")
    assert len(qa.questions) == 260


def test_kbqa_answers_occur_and_negatives_do_not(small_kb):
    train, train_expand, valid, valid_expand = small_kb
    expand = {qid: forms for qid, _, forms in train_expand + valid_expand}
    n_pos = n_all = 0
    for q in train + valid:
        assert 2 <= len(q.passages) <= 10
        forms = expand[q.id]
        wide = [f.translate(kbqa._FULLWIDTH_TABLE) for f in forms]
        positives = [p for p in q.passages if p.answer]
        assert positives, q.id
        for p in q.passages:
            assert 5 <= len(p.text) <= 250
            if p.answer:
                assert p.answer in forms or p.answer in wide
                assert answer_spans(p.text, p.answer)
            else:
                assert not any(f in p.text for f in [*forms, *wide])
        n_pos += len(positives)
        n_all += len(q.passages)
    assert 0.3 < n_pos / n_all < 0.5  # SogouQA: 39 % of the passages hold the answer


def test_kbqa_validation_subjects_are_unseen_and_the_metric_accepts_the_expand(small_kb):
    train, _, valid, valid_expand = small_kb
    ref = Reference.from_lines(f"{q}\t{g}\t{'|'.join(f)}" for q, g, f in valid_expand)
    # the gold and its full-width form are accurate; the passage answer forms too
    answers = {q.id: next(p.answer for p in q.passages if p.answer) for q in valid}
    assert score_predictions(ref, [q.id for q in valid], answers).accuracy == 1.0
    train_questions = {q.question for q in train}
    assert not train_questions & {q.question for q in valid}


def test_kbqa_mixes_full_width_forms(small_kb):
    texts = [p.text for q in small_kb[0] for p in q.passages]
    assert any(any("\uff10" <= c <= "\uff3a" for c in t) for t in texts)


def test_generate_writes_the_files(tmp_path, monkeypatch):
    monkeypatch.setattr(kbqa, "TRAIN_QUESTIONS", 20)
    monkeypatch.setattr(kbqa, "VALID_QUESTIONS", 10)
    kbqa.generate(tmp_path)
    assert len(load_su_json(tmp_path / "train.json").questions) == 20
    ref = Reference.load(tmp_path / "valid_expand")
    assert len(ref.expand) == 10


def test_prepare_su_2019_mix_from_the_mirror_samples(shared_datasets, tmp_path):
    """SogouQA + WebQA in Su's format (the mirror's samples as user folders): the i % 3 split,
    Sogou training questions twice, all of WebQA, the validation answers for the metric."""
    import shutil

    from kexue.articles.dgcnn_qa.config import DataConfig
    from kexue.articles.dgcnn_qa.data import load_prepared, load_train_synonyms, prepare

    sogou, webqa = tmp_path / "sogou", tmp_path / "webqa"
    sogou.mkdir()
    webqa.mkdir()
    sample = shared_datasets / "sogouqa-sample"
    shutil.copy(sample / "SogouQA.json", sogou)
    shutil.copy(sample / "evaluate_tool" / "qid_answer_expand", sogou)
    shutil.copy(shared_datasets / "webqa-sample" / "WebQA.json", webqa)
    prepare(DataConfig(min_count=1), {"sogouqa": sogou, "webqa": webqa}, tmp_path / "out",
            "official")
    train, copies, valid, ref, vocab, meta = load_prepared(tmp_path / "out")
    assert len(valid) == 7 and len(train) == 14 + 11  # 21 Sogou questions: 7 validate
    assert copies == [2] * 14 + [1] * 11 and meta["n_train_samples_per_epoch"] == 39
    assert not {q.id for q in valid} & {q.id for q in train}
    assert set(ref.expand) == {q.id for q in valid}
    assert all(ref.gold[q] in ref.expand[q] for q in ref.expand)
    assert all(c in vocab for c in valid[0].question)  # Su: the vocabulary covers every text
    assert meta["complete_data"] and not meta["synthetic"]
    # the 2018 labels' synonyms: column 3 of the expand file, for the Sogou training questions
    synonyms = load_train_synonyms(tmp_path / "out")
    assert set(synonyms) == {q.id for q in train[:14]}
    if "10000" in synonyms:
        assert synonyms["10000"] == ("林海音", "林含英")
    again = tmp_path / "again"
    prepare(DataConfig(min_count=1), {"sogouqa": sogou, "webqa": webqa}, again, "official")
    assert [q.id for q in load_prepared(again)[2]] == [q.id for q in valid]  # fixed split seed
    with pytest.raises(DataError, match="no corpus"):
        prepare(DataConfig(), {"webqa": webqa}, tmp_path / "x", "official")


def test_webqa_zip_without_published_checksum_has_its_sha256_recorded(tmp_path):
    import hashlib

    from kexue.data.fetch import ChecksumError, verify_file
    from kexue.data.registry import RemoteFile, get_dataset

    (rf,) = get_dataset("webqa_v1").files
    assert rf.record_sha256 and rf.sha256 is None and rf.md5 is None
    z = _zip(tmp_path / "WebQA.v1.0.zip", [("WebQA.v1.0/me_train.json", json.dumps(WEBQA_V1), 0)])
    check = verify_file(z, rf, "test")
    assert check["hash"] == hashlib.sha256(z.read_bytes()).hexdigest()
    assert "recorded at first download" in check["verified"]
    # a file without any checksum and without the flag is still refused
    with pytest.raises(ChecksumError, match="no checksum"):
        verify_file(z, RemoteFile("x.zip", ()), "test")


def test_sogou_sample_is_a_verified_dataset_and_prepare_checks_the_metric(shared_datasets,
                                                                        tmp_path, monkeypatch):
    """E5 in the workflow: sogouqa-sample comes from the mirror (no official URL), verified
    against the registry; prepare checks the metric port on it and records the result; a port
    that fails the check stops prepare."""
    from kexue.articles.dgcnn_qa import metric_check
    from kexue.articles.dgcnn_qa.config import DataConfig
    from kexue.articles.dgcnn_qa.data import prepare
    from kexue.data.fetch import ChecksumError, fetch_dataset
    from kexue.data.registry import get_dataset
    from kexue.io import read_json

    assert all(not rf.urls and rf.sha256 for rf in get_dataset("sogouqa-sample").files)
    raw = {"sogouqa-sample": tmp_path / "sogou", "webqa-sample": tmp_path / "webqa"}
    for name, dest in raw.items():
        fetch_dataset(name, dest, mirror=str(shared_datasets), progress=False)
    provenance = read_json(raw["sogouqa-sample"] / "PROVENANCE.json")
    assert provenance["source"] == "mirror" and len(provenance["files"]) == 5
    assert (raw["sogouqa-sample"] / "evaluate_tool" / "test_out").is_file()
    cfg = DataConfig(max_train_questions=20, max_valid_questions=10, min_count=1)
    prepare(cfg, raw, tmp_path / "out", "official")
    check = read_json(tmp_path / "out" / "data.json")["metric_check"]
    assert check["self_test_rows"] == check["self_test_rows_identical"] == 8000
    assert check["self_test_summary"] == [1.0, 1.0, 1.0]
    assert check["check_cases_passed"] == check["check_cases"] == 11
    # a "natural" Python-3 port (Unicode lower()) fails the check cases: prepare stops
    real = metric_check.score_answer
    monkeypatch.setattr(metric_check, "score_answer",
                        lambda ref, qid, answer: real(ref, qid, answer.lower()))
    with pytest.raises(metric_check.MetricPortError, match="FÚ"):
        prepare(cfg, raw, tmp_path / "again", "official")
    # a tampered copy in a user folder is refused
    folder = tmp_path / "user"
    import shutil
    shutil.copytree(shared_datasets / "sogouqa-sample", folder)
    (folder / "evaluate_tool" / "test_out").chmod(0o644)
    (folder / "evaluate_tool" / "test_out").write_text("x", encoding="utf-8")
    with pytest.raises(ChecksumError, match="test_out"):
        fetch_dataset("sogouqa-sample", tmp_path / "bad", local_dir=folder, progress=False)
