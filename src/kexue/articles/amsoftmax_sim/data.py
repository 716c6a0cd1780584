"""prepare(): groups of synonymous sentences -> character ids, group ids and the three parts.

Processed layout (``data/processed/<variant>/amsoftmax_sim/``):

* ``sentences.npz``: ``ids`` int64 (N, maxlen) post-padded with 0, ``group`` int64 (N,),
  ``part`` int8 (N,) (0 train, 1 validation, 2 held-out). Training groups are numbered
  0..n_classes-1 (the classifier's rows); validation and held-out groups keep their own numbers.
* ``texts.json``: the N original sentences (for the report's examples);
* ``vocab.json``; ``data.json``: the data label, counts, what was dropped and why.

Text: full-width -> half-width, then lower case; characters seen ``min_count`` times in the
whole corpus (held-out groups included, as Su counted) get ids from 2 (0 pad, 1 unknown).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from kexue.data.embedded import load_npz, save_npz
from kexue.data.fetch import dataset_files
from kexue.data.paraphrase import generate, read_lexicon
from kexue.data.sentence_groups import drop_shared, positive_components, read_lcqmc, read_tongyiju
from kexue.errors import DataError
from kexue.io import read_json, write_json
from kexue.text import Vocabulary, halfwidth, pad

from .config import DataConfig

TRAIN, VALIDATION, HELDOUT = 0, 1, 2
PART_NAMES = ("train", "validation", "heldout")


@dataclass
class Corpus:
    train: list[list[str]]  # the training side (validation groups are cut from its end)
    heldout: list[list[str]]
    label: str
    synthetic: bool
    complete_data: bool  # the article's own data at full size
    notes: dict


def normalise(text: str) -> str:
    """Su's preprocessing: full-width -> half-width, then (Unicode) lower case."""
    return halfwidth(text).lower()


def synthetic_corpus(cfg: DataConfig, folder: Path) -> Corpus:
    s = cfg.synthetic
    c = generate(s.groups, cfg.heldout_fraction, s.values_per_type, s.heldout_heads,
                 s.heldout_modifiers, s.min_size, s.max_size, s.noise, s.seed,
                 read_lexicon(folder))
    return Corpus(c.groups[:c.n_train], c.groups[c.n_train:], c.label, True, False,
                  {"generator": c.settings})


def lcqmc_corpus(folder: Path) -> Corpus:
    """Train on the test-split components, hold out the dev-split components that share no
    sentence with them (the mirror has no train.txt)."""
    train = positive_components(read_lcqmc(folder / "test.txt"))
    dev = positive_components(read_lcqmc(folder / "dev.txt"))
    heldout, dropped = drop_shared(dev, train)
    return Corpus(train, heldout, "LCQMC positive-pair components (train: test split; "
                  "held out: dev split)", False, False,
                  {"dev_groups": len(dev), "dev_groups_dropped_for_sharing_a_sentence": dropped})


def tongyiju_corpus(folder: Path, heldout_fraction: float) -> Corpus:
    path = folder / "tongyiju.csv"
    if not path.is_file():
        raise DataError(f"{path}: missing (data_dirs.tongyiju must hold Su's tongyiju.csv)")
    groups = read_tongyiju(path)
    n_train = len(groups) - round(len(groups) * heldout_fraction)
    return Corpus(groups[:n_train], groups[n_train:], "Su's tongyiju.csv (user folder)", False,
                  True, {"groups": len(groups)})


def load_corpus(cfg: DataConfig, raw: dict[str, Path]) -> Corpus:
    if "paraphrase_lexicon" in raw:
        return synthetic_corpus(cfg, raw["paraphrase_lexicon"])
    if "lcqmc" in raw:
        return lcqmc_corpus(dataset_files(raw["lcqmc"]))
    if "tongyiju" in raw:
        return tongyiju_corpus(dataset_files(raw["tongyiju"]), cfg.heldout_fraction)
    raise DataError(f"amsoftmax_sim reads paraphrase_lexicon, lcqmc or tongyiju; got "
                    f"{sorted(raw)}")


def _rows(groups: list[list[str]], part: int) -> list[tuple[str, int, int]]:
    return [(s, g, part) for g, group in enumerate(groups) for s in group]


def _first_occurrences(ids: np.ndarray) -> np.ndarray:
    """Indices of the rows whose id sequence did not occur in an earlier row."""
    _, first = np.unique(ids, axis=0, return_index=True)
    return np.sort(first)


def _renumber(group: np.ndarray, part: np.ndarray) -> np.ndarray:
    """Groups 0..n-1 within each part, in order (groups emptied by de-duplication vanish)."""
    out = np.empty_like(group)
    for p in (TRAIN, VALIDATION, HELDOUT):
        rows = part == p
        out[rows] = np.unique(group[rows], return_inverse=True)[1]
    return out


def prepare(cfg: DataConfig, raw: dict[str, Path], out: Path, source: str) -> None:
    corpus = load_corpus(cfg, raw)
    n_val = round(len(corpus.train) * cfg.val_fraction)
    train, val = corpus.train[:len(corpus.train) - n_val], corpus.train[len(corpus.train) - n_val:]
    rows = _rows(train, TRAIN) + _rows(val, VALIDATION) + _rows(corpus.heldout, HELDOUT)
    texts = [normalise(s) for s, _, _ in rows]
    vocab = Vocabulary.build(texts, min_count=cfg.min_count)
    ids, _ = pad([vocab.encode(t, cfg.maxlen) for t in texts], cfg.maxlen, padding="post")
    group = np.array([g for _, g, _ in rows], dtype=np.int64)
    part = np.array([p for _, _, p in rows], dtype=np.int8)
    heldout = part == HELDOUT
    duplicated_heldout = len(ids[heldout]) - len(_first_occurrences(ids[heldout]))
    keep = _first_occurrences(ids) if cfg.deduplicate else np.arange(len(ids))
    dropped = {PART_NAMES[p]: int((part == p).sum() - (part[keep] == p).sum()) for p in range(3)}
    ids, group, part = ids[keep], group[keep], part[keep]
    group = _renumber(group, part)
    out.mkdir(parents=True, exist_ok=True)
    save_npz(out / "sentences.npz", ids=ids, group=group, part=part)
    write_json(out / "texts.json", [rows[i][0] for i in keep])
    vocab.save(out / "vocab.json")
    counts = {name: {"groups": len(np.unique(group[part == p])),
                     "sentences": int((part == p).sum())} for p, name in enumerate(PART_NAMES)}
    write_json(out / "data.json", {
        "data_label": corpus.label, "source": source, "complete_data": corpus.complete_data,
        "synthetic": corpus.synthetic, "vocab_size": len(vocab),
        "n_tokens": len(vocab), "n_classes": counts["train"]["groups"], "counts": counts,
        "duplicates_dropped": dropped if cfg.deduplicate else {},
        "heldout_duplicated_sentences_before_dedup": duplicated_heldout,
        "maxlen": cfg.maxlen, "min_count": cfg.min_count, "config": asdict(cfg),
        **corpus.notes})


@dataclass
class Prepared:
    ids: np.ndarray
    group: np.ndarray
    part: np.ndarray
    meta: dict

    def split(self, p: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self.part == p
        return self.ids[rows], self.group[rows]


def load_prepared(data_dir: Path) -> Prepared:
    d = load_npz(Path(data_dir) / "sentences.npz", {"ids": ("i", 2), "group": ("i", 1),
                                                    "part": ("i", 1)})
    return Prepared(d["ids"], d["group"], d["part"], read_json(Path(data_dir) / "data.json"))


def load_texts(data_dir: Path) -> list[str]:
    return read_json(Path(data_dir) / "texts.json")
