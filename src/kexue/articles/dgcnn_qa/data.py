"""prepare(): the raw QA datasets -> train/valid questions in Su's format, the validation answers
in the metric's ``qid_answer_expand`` format, the answer synonyms of the training questions
(``train_synonyms.json``, column 3 of the expand file, for the 2018 labels), the character
vocabulary and ``data.json``.

Three corpora, chosen by the datasets present:

* ``kbqa`` (embedded): the SYNTHETIC knowledge-base QA; the profile takes a prefix;
* ``sogouqa`` + ``webqa`` (or ``webqa_v1``, the official zip): Su's 2019 mix; Sogou shuffled
  with ``split_seed``, positions i % 3 == 0 validate, the others train ``sogou_copies`` times,
  plus all of WebQA (39,748 : 42,223 on the full data, not the "2:1" of the code comment);
* ``webqa-sample`` (E6): train on the annotated test set, validate on the annotated
  validation set; one positive evidence per question, so the global score is never tested.

With ``sogouqa-sample`` among the datasets (Su's ``evaluate_tool/``), the metric port is checked
on the official files first (E5, ``metric_check``) and the result goes into ``data.json``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kexue.data.fetch import dataset_files
from kexue.data.qa import (
    Question,
    load_su_json,
    read_webqa_annotated_xlsx,
    read_webqa_v1_zip,
    save_su_json,
    sogou_split,
)
from kexue.errors import DataError
from kexue.io import read_json, write_json
from kexue.metrics.sogou import Reference, read_utf8
from kexue.text import Vocabulary

from .config import DataConfig
from .metric_check import check_metric_port

SYNTHETIC_LABEL = "SYNTHETIC knowledge-base QA (kexue.data.kbqa); never comparable with 0.72"
E6_LABEL = "WebQA annotated subset (E6); not comparable with published numbers"


def read_synonyms(path: Path) -> dict[str, tuple[str, ...]]:
    """qid -> the raw ``|``-separated answer forms of column 3 of a ``qid_answer_expand`` file
    (the gold among them), without the metric's normalised forms."""
    synonyms = {}
    for n, line in enumerate(read_utf8(path).split("\n"), 1):
        if not line.strip():
            continue
        fields = line.rstrip("\r").split("\t")
        if len(fields) != 3:
            raise DataError(f"{path}, line {n}: expected qid<TAB>gold<TAB>variants")
        synonyms[fields[0]] = tuple(v for v in fields[2].split("|") if v)
    return synonyms


def _prefix(items: list, n: int) -> list:
    return items[:n] if n else items


def _kbqa(cfg: DataConfig, folder: Path):
    train = _prefix(list(load_su_json(folder / "train.json").questions), cfg.max_train_questions)
    valid = _prefix(list(load_su_json(folder / "valid.json").questions), cfg.max_valid_questions)
    ref = Reference.load(folder / "valid_expand")
    synonyms = read_synonyms(folder / "train_expand")
    return train, [1] * len(train), valid, ref, synonyms, {
        "dataset": "kbqa", "data_label": SYNTHETIC_LABEL, "synthetic": True,
        "complete_data": False}


def _webqa_annotated(cfg: DataConfig, folder: Path):
    train = read_webqa_annotated_xlsx(folder / "test_ann.xlsx", "WT")
    valid = read_webqa_annotated_xlsx(folder / "validation_ann.xlsx", "WV")
    train_q = _prefix(list(train.qa.questions), cfg.max_train_questions)
    valid_q = _prefix(list(valid.qa.questions), cfg.max_valid_questions)
    ref = Reference.from_lines(
        f"{q.id}\t{q.passages[0].answer}\t{q.passages[0].answer}" for q in valid_q)
    return train_q, [1] * len(train_q), valid_q, ref, {}, {
        "dataset": "webqa-sample", "data_label": E6_LABEL, "synthetic": False,
        "complete_data": False, "dropped_rows": {"test_ann": train.dropped,
                                                 "validation_ann": valid.dropped}}


def _sogou_webqa(cfg: DataConfig, raw: dict[str, Path]):
    sogou_dir = dataset_files(raw["sogouqa"])
    sogou = list(load_su_json(sogou_dir / "SogouQA.json").questions)
    if "webqa" in raw:
        webqa = list(load_su_json(dataset_files(raw["webqa"]) / "WebQA.json").questions)
    else:
        zip_path = dataset_files(raw["webqa_v1"]) / "WebQA.v1.0.zip"
        webqa = [q for member in ("me_train.json", "me_validation.ir.json", "me_test.ir.json")
                 for q in read_webqa_v1_zip(zip_path, member).questions]
    order = np.random.RandomState(cfg.split_seed).permutation(len(sogou)).tolist()
    train_idx, valid_idx = sogou_split(len(sogou), order)
    train = [sogou[i] for i in train_idx] + webqa
    copies = [cfg.sogou_copies] * len(train_idx) + [1] * len(webqa)
    valid = [sogou[i] for i in valid_idx]
    full_ref = Reference.load(sogou_dir / "qid_answer_expand")
    missing = [q.id for q in valid if q.id not in full_ref.expand]
    if missing:
        raise DataError(f"{sogou_dir / 'qid_answer_expand'}: no answers for Sogou ids "
                        f"{missing[:5]}")
    ids = {q.id for q in valid}
    ref = Reference({k: v for k, v in full_ref.gold.items() if k in ids},
                    {k: v for k, v in full_ref.expand.items() if k in ids})
    all_synonyms = read_synonyms(sogou_dir / "qid_answer_expand")
    synonyms = {sogou[i].id: all_synonyms[sogou[i].id] for i in train_idx
                if sogou[i].id in all_synonyms}
    return train, copies, valid, ref, synonyms, {
        "dataset": "sogouqa+" + ("webqa" if "webqa" in raw else "webqa_v1"),
        "data_label": "SogouQA + WebQA (official, Su's 2019 split)", "synthetic": False,
        "complete_data": True, "n_sogou_train": len(train_idx), "n_webqa": len(webqa),
        "split_seed": cfg.split_seed}


def prepare(cfg: DataConfig, raw: dict[str, Path], out: Path, source: str) -> None:
    if "kbqa" in raw:
        train, copies, valid, ref, synonyms, meta = _kbqa(cfg, dataset_files(raw["kbqa"]))
    elif "webqa-sample" in raw:
        train, copies, valid, ref, synonyms, meta = _webqa_annotated(
            cfg, dataset_files(raw["webqa-sample"]))
    elif "sogouqa" in raw and ({"webqa", "webqa_v1"} & set(raw)):
        train, copies, valid, ref, synonyms, meta = _sogou_webqa(cfg, raw)
    else:
        raise DataError(f"dgcnn_qa: no corpus in the datasets {sorted(raw)}; expected kbqa, "
                        f"webqa-sample, or sogouqa with webqa (or webqa_v1)")
    if "sogouqa-sample" in raw:
        meta["metric_check"] = check_metric_port(
            dataset_files(raw["sogouqa-sample"]) / "evaluate_tool")
    texts = [q.question for q in train + valid] + [p.text for q in train + valid
                                                   for p in q.passages]
    vocab = Vocabulary.build(texts, cfg.min_count)  # Su: over all questions and passages
    out.mkdir(parents=True, exist_ok=True)
    save_su_json(out / "train.json", train)
    save_su_json(out / "valid.json", valid)
    write_json(out / "train_copies.json", copies)
    ref.write(out / "valid_expand")
    train_ids = {q.id for q in train}
    write_json(out / "train_synonyms.json",
               {qid: list(forms) for qid, forms in synonyms.items() if qid in train_ids})
    vocab.save(out / "vocab.json")
    write_json(out / "data.json", {
        **meta, "source": source, "n_train_questions": len(train),
        "n_train_samples_per_epoch": sum(copies), "n_valid_questions": len(valid),
        "vocab_size": len(vocab), "min_count": cfg.min_count,
        "positive_passage_rate": _positive_rate(train)})


def _positive_rate(questions: list[Question]) -> float:
    passages = [p for q in questions for p in q.passages]
    return sum(bool(p.answer) for p in passages) / max(1, len(passages))


def load_prepared(data_dir: Path):
    """(train questions, per-question copies, valid questions, Reference, vocab, data.json)."""
    return (list(load_su_json(data_dir / "train.json").questions),
            read_json(data_dir / "train_copies.json"),
            list(load_su_json(data_dir / "valid.json").questions),
            Reference.load(data_dir / "valid_expand"),
            Vocabulary.load(data_dir / "vocab.json"),
            read_json(data_dir / "data.json"))


def load_train_synonyms(data_dir: Path) -> dict[str, tuple[str, ...]]:
    """qid -> the answer synonyms of a training question (none for WebQA, which has no expand
    file: its passages' own answer forms are then the only ones)."""
    return {qid: tuple(forms) for qid, forms in read_json(data_dir / "train_synonyms.json").items()}
