"""The official CIPS-SOGOU QA score (accuracy, character F1 and their mean), ported to Python 3.

The original evaluation script is Python 2 and works on UTF-8 byte strings; this port keeps those
semantics, which a "natural" Python 3 port gets wrong (spec dgcnn_qa §6):

* lowercasing changes ASCII A-Z only (not É, Ⅱ, Greek ...);
* "whitespace" is ASCII whitespace only (space, \\t, \\n, \\r, \\f, \\v): NBSP and U+3000 are
  ordinary characters for ``strip`` and for the whitespace deletion;
* the punctuation list is the file's lines stripped of ASCII whitespace (the two space lines
  become empty and match nothing), and its marks are replaced by spaces before the token split.

Normalisation ``normalise(s)``: full-width -> half-width, ASCII lowercase, punctuation -> space,
delete ASCII whitespace. Per prediction line: accuracy 1 if the normalised answer is in the
question's expand set (its ``|``-split variants plus their normalised forms) or, failing that, if
the answer and the gold have the same set of normalised tokens; F1 is the best character F1
between the normalised answer and a normalised expand item. Score = (mean accuracy + mean F1)/2
over the prediction lines.

F1 ties go to the first expand item in the script's CPython 2.7 set order (emulated by
``py27_set_order``), so the port reproduces the shipped ``test_out`` byte for byte.

``score_lines`` is the script itself (missing qids are not counted, a duplicated qid is scored
twice); ``score_predictions`` is what the pipeline uses: one answer per question of a given list
(an empty answer when nothing was decoded), so the denominator is the evaluated set.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from kexue.errors import DataError
from kexue.io import atomic_path
from kexue.text import halfwidth

ASCII_WHITESPACE = " \t\n\r\x0b\x0c"  # Python 2 bytes.strip() and re's \s without UNICODE
_ASCII_WS_RUN = re.compile(f"[{re.escape(ASCII_WHITESPACE)}]+")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

# The marks of the official `punctuation` file (127 marks and U+3000, in file order), embedded so
# that synthetic runs need no download; tests check it against the shipped file.
OFFICIAL_PUNCTUATION = frozenset(
    "`^~<=>|_-,;:!?/.'\"()[]{}@$*\\&#%+\x7f\u2026\u2030\u203b\u2022\u2014\u2016\u2018\u2019"
    "\u201c\u201d\u2116\u2190\u2191\u2192\u2193\u2234\u2228\u2235\u2236\u2229\u2208\u2211"
    "\u221a\u221e\u226f\u2261\u226e\u2264\u2265\u2248\u224c\u22a5\u2299\u2312\u25a1\u25c6"
    "\u25c7\u25ce\u25cf\u2605\u2606\u2640\u2642\xa8\xb0\xb7\xa7\xa4\xb1\u3000\u3001\u3002"
    "\u3003\u3005\u3008\u3009\u300a\u300b\u300c\u300d\u300e\u300f\u3010\u3011\u3013\u3014"
    "\u3015\u3016\u3017\xf7\xd7\u2032\u25b2\u2033\u25b3\u2220\u2260\u25a0\u02c7\u02c9\uffe3"
    "\uffe5\uff3f\uff01\uff04\uff08\uff09\uff0c\uff0e\uff1a\uff1b\uff1f\uff5e\ufe51\uffe0")


def read_utf8(path: Path) -> str:
    """A file's text, undecodable bytes dropped (the script's ``decode('utf8', 'ignore')``)."""
    try:
        return Path(path).read_bytes().decode("utf-8", errors="ignore")
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None


def read_punctuation(path: Path) -> frozenset[str]:
    """The marks of a ``punctuation`` file: its lines stripped of ASCII whitespace."""
    marks = {line.strip(ASCII_WHITESPACE) for line in read_utf8(path).split("\n")}
    return frozenset(m for m in marks if m)  # an empty line matches no character


def ascii_lower(s: str) -> str:
    return s.translate(_ASCII_LOWER)


def replace_punctuation(s: str, punctuation: frozenset[str]) -> str:
    return "".join(" " if c in punctuation else c for c in s)


def normalise(s: str, punctuation: frozenset[str] = OFFICIAL_PUNCTUATION) -> str:
    """The script's normalisation: half-width, ASCII lowercase, punctuation -> space, then delete
    ASCII whitespace."""
    s = replace_punctuation(ascii_lower(halfwidth(s)), punctuation)
    return _ASCII_WS_RUN.sub("", s)


_MASK64 = (1 << 64) - 1


def py27_hash(data: bytes) -> int:
    """CPython 2.7's hash of a byte string (64-bit build, no hash randomisation)."""
    if not data:
        return 0
    x = data[0] << 7
    for byte in data:
        x = ((1_000_003 * x) & _MASK64) ^ byte
    x ^= len(data)
    x = x - (1 << 64) if x >= 1 << 63 else x
    return -2 if x == -1 else x


def py27_set_order(items: Sequence[str]) -> tuple[str, ...]:
    """The iteration order of CPython 2.7's ``set(items)`` for these strings as UTF-8 byte
    strings: open addressing from hash & mask, probing i = 5i + perturb + 1 (perturb >>= 5),
    the table grown x4 once two thirds full. The script takes the first expand item with the
    maximal F1 in this order, which decides column 7 of its output (and P, R in ties)."""
    size, table, used = 8, [None] * 8, 0

    def insert(tab: list, key: bytes, h: int) -> bool:
        mask, i, perturb = len(tab) - 1, h & (len(tab) - 1), h & _MASK64
        while tab[i & mask] is not None:
            if tab[i & mask][0] == key:
                return False
            i = 5 * i + perturb + 1
            perturb >>= 5
        tab[i & mask] = (key, h)
        return True

    for item in items:
        key = item.encode("utf-8")
        if insert(table, key, py27_hash(key)):
            used += 1
            if used * 3 >= size * 2:  # no deletions, so fill == used
                while size <= used * 4:
                    size <<= 1
                old, table = [e for e in table if e is not None], [None] * size
                for k, h in old:
                    insert(table, k, h)
    return tuple(e[0].decode("utf-8") for e in table if e is not None)


def tokens(s: str, punctuation: frozenset[str] = OFFICIAL_PUNCTUATION) -> set[str]:
    """The token rule's set: punctuation -> space (no half-width step), ASCII lowercase, split on
    " " keeping empty tokens, normalise each token."""
    return {normalise(t, punctuation)
            for t in ascii_lower(replace_punctuation(s, punctuation)).split(" ")}


@dataclass(frozen=True)
class Reference:
    """The answers of ``qid_answer_expand``: per qid the gold and the expand set."""

    gold: Mapping[str, str]
    expand: Mapping[str, tuple[str, ...]]  # the variants, then their normalised forms, distinct,
    # in the script's (CPython 2.7 set) iteration order
    punctuation: frozenset[str] = OFFICIAL_PUNCTUATION

    @classmethod
    def from_lines(cls, lines: Iterable[str], punctuation: frozenset[str] = OFFICIAL_PUNCTUATION,
                   source: str = "qid_answer_expand") -> Reference:
        gold, expand = {}, {}
        for n, line in enumerate(lines, 1):
            line = line.strip(ASCII_WHITESPACE)
            if not line:
                continue
            fields = line.split("\t")
            if len(fields) != 3:
                raise DataError(f"{source}, line {n}: expected qid<TAB>gold<TAB>variants, "
                                f"got {len(fields)} field(s)")
            qid, answer, variants = fields
            items = variants.split("|")
            gold[qid] = answer
            expand[qid] = py27_set_order(items + [normalise(v, punctuation) for v in items])
        return cls(gold, expand, punctuation)

    @classmethod
    def load(cls, expand_path: Path, punctuation_path: Path | None = None) -> Reference:
        punctuation = (OFFICIAL_PUNCTUATION if punctuation_path is None
                       else read_punctuation(punctuation_path))
        return cls.from_lines(read_utf8(expand_path).split("\n"), punctuation, str(expand_path))

    def write(self, path: Path) -> None:
        """Write in the ``qid_answer_expand`` format (gold first, then the other items)."""
        with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as f:
            for qid, answer in self.gold.items():
                raw = [v for v in self.expand[qid] if v != answer]
                f.write(f"{qid}\t{answer}\t{'|'.join([answer, *raw])}\n")


@dataclass(frozen=True)
class LineScore:
    qid: str
    answer: str  # as given
    accurate: int
    f1: float
    precision: float
    recall: float
    best: str | None  # the first expand item attaining the F1 (None when F1 = 0)

    def line(self) -> str:
        """The script's output row: qid, answer, acc, F1, P, R (%f), best item."""
        return (f"{self.qid}\t{self.answer}\t{self.accurate}\t{self.f1:f}\t{self.precision:f}"
                f"\t{self.recall:f}\t{self.best}")


def char_f1(answer: str, reference: str) -> tuple[float, float, float]:
    """(F1, precision, recall) of the multiset of characters; (0, 0, 0) without overlap."""
    overlap = sum((Counter(answer) & Counter(reference)).values())
    if overlap == 0:
        return 0.0, 0.0, 0.0
    p, r = overlap / len(answer), overlap / len(reference)
    return 2 * p * r / (p + r), p, r


def score_answer(ref: Reference, qid: str, answer: str) -> LineScore:
    if qid not in ref.expand:
        raise DataError(f"prediction for qid {qid!r}, which is not in the reference")
    stripped = answer.strip(ASCII_WHITESPACE)
    if not stripped:
        return LineScore(qid, answer, 0, 0.0, 0.0, 0.0, None)
    punct = ref.punctuation
    norm = normalise(stripped, punct)
    accurate = int(norm in ref.expand[qid]
                   or tokens(stripped, punct) == tokens(ref.gold[qid], punct))
    best, best_f1, best_p, best_r = None, 0.0, 0.0, 0.0
    for item in ref.expand[qid]:  # ties: the first in the script's order
        f1, p, r = char_f1(norm, normalise(item, punct))
        if f1 > best_f1:
            best, best_f1, best_p, best_r = item, f1, p, r
    return LineScore(qid, answer, accurate, best_f1, best_p, best_r, best)


@dataclass(frozen=True)
class SogouScore:
    accuracy: float
    f1: float
    score: float  # (accuracy + F1) / 2, the competition's ranking number
    lines: tuple[LineScore, ...]

    def summary(self) -> list[float]:
        """What the script prints: [accuracy, F1, score]."""
        return [self.accuracy, self.f1, self.score]


def _summarise(rows: Sequence[LineScore]) -> SogouScore:
    n = len(rows)
    if n == 0:
        raise DataError("no prediction lines to score")
    acc = sum(r.accurate for r in rows) / n
    f1 = sum(r.f1 for r in rows) / n
    return SogouScore(acc, f1, (acc + f1) / 2, tuple(rows))


def parse_prediction_lines(lines: Iterable[str], source: str = "predictions"
                           ) -> list[tuple[str, str]]:
    """``qid<TAB>answer`` lines (only the trailing "\\n" is removed) -> (qid, answer) pairs."""
    pairs = []
    for n, line in enumerate(lines, 1):
        fields = line.removesuffix("\n").split("\t")
        if len(fields) != 2:
            raise DataError(f"{source}, line {n}: expected qid<TAB>answer, got {len(fields)} "
                            f"field(s)")
        pairs.append((fields[0], fields[1]))
    return pairs


def score_lines(ref: Reference, lines: Iterable[str], source: str = "predictions") -> SogouScore:
    """The script's semantics: every line scored, a qid without a line not counted, a duplicated
    qid scored twice."""
    return _summarise([score_answer(ref, q, a) for q, a in parse_prediction_lines(lines, source)])


def score_file(ref: Reference, path: Path) -> SogouScore:
    text = read_utf8(path)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    return score_lines(ref, lines, str(path))


def score_predictions(ref: Reference, qids: Sequence[str], answers: Mapping[str, str]
                      ) -> SogouScore:
    """The pipeline's score: one line per question of ``qids``, in order (``""`` when a question
    has no decoded answer, which scores 0). A duplicated qid is an error [assumption]."""
    if len(set(qids)) != len(qids):
        dup = next(q for q, n in Counter(qids).items() if n > 1)
        raise DataError(f"qid {dup!r} is listed twice among the evaluated questions")
    unknown = set(answers) - set(qids)
    if unknown:
        raise DataError(f"answers for qids outside the evaluated set: {sorted(unknown)[:5]}")
    return _summarise([score_answer(ref, q, one_line(answers.get(q, ""))) for q in qids])


def one_line(answer: str) -> str:
    """An answer as a submission field: tabs and line breaks (which would break the line format)
    become spaces."""
    return answer.translate({ord("\t"): " ", ord("\n"): " ", ord("\r"): " "})


def prediction_lines(qids: Sequence[str], answers: Mapping[str, str]) -> list[str]:
    """The submission file's lines, ``qid\\tanswer`` (empty answer when none was decoded);
    ``score_predictions`` scores exactly these lines."""
    return [f"{q}\t{one_line(answers.get(q, ''))}" for q in qids]
