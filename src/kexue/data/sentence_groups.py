"""Groups of synonymous sentences: Su's ``tongyiju.csv`` format and LCQMC positive-pair components.

* ``tongyiju.csv`` (kexue.fm 5743): ``group_id<TAB>sentence`` per line, UTF-8, no header; the
  sentences of a group are synonymous, different groups are not.
* LCQMC (Liu et al. 2018): ``s1<TAB>s2<TAB>label`` per line, label 0/1. A group is a connected
  component of the positive pairs (sentences compared as raw text).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from kexue.errors import DataError
from kexue.io import atomic_path


def _lines(path: Path) -> Iterable[tuple[int, str]]:
    try:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                line = line.rstrip("\r\n")
                if line:
                    yield number, line
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror})") from None


def read_tongyiju(path: str | Path) -> list[list[str]]:
    """The groups in ascending ``group_id`` order (ids need not be contiguous)."""
    path = Path(path)
    groups: dict[int, list[str]] = {}
    for number, line in _lines(path):
        gid, sep, sentence = line.partition("\t")
        if not sep or not gid.strip().isdigit() or not sentence.strip():
            raise DataError(f"{path}:{number}: expected 'group_id<TAB>sentence' with an integer "
                            f"id, got {line[:60]!r}")
        groups.setdefault(int(gid), []).append(sentence)
    if not groups:
        raise DataError(f"{path}: no groups")
    return [groups[g] for g in sorted(groups)]


def write_tongyiju(path: str | Path, groups: Sequence[Sequence[str]]) -> None:
    """Groups numbered 0..N-1 in order, in Su's format."""
    with atomic_path(path) as tmp:
        tmp.write_text("".join(f"{gid}\t{s}\n" for gid, group in enumerate(groups)
                               for s in group), encoding="utf-8")


def read_lcqmc(path: str | Path) -> list[tuple[str, str, int]]:
    path = Path(path)
    pairs = []
    for number, line in _lines(path):
        fields = line.split("\t")
        if len(fields) != 3 or fields[2] not in ("0", "1"):
            raise DataError(f"{path}:{number}: expected 's1<TAB>s2<TAB>label' with label 0 or 1, "
                            f"got {line[:60]!r}")
        pairs.append((fields[0], fields[1], int(fields[2])))
    if not pairs:
        raise DataError(f"{path}: no sentence pairs")
    return pairs


def positive_components(pairs: Iterable[tuple[str, str, int]]) -> list[list[str]]:
    """Connected components of the label-1 pairs, each listing its sentences in order of first
    appearance, the components in the order of their first sentence. A pair of two identical
    sentences gives a one-sentence group."""
    parent: dict[str, str] = {}

    def root(s: str) -> str:
        parent.setdefault(s, s)
        while parent[s] != s:
            parent[s] = parent[parent[s]]
            s = parent[s]
        return s

    for a, b, label in pairs:
        if label == 1:
            ra, rb = root(a), root(b)
            if ra != rb:
                parent[rb] = ra
    components: dict[str, list[str]] = {}
    for s in parent:  # insertion order = order of first appearance
        components.setdefault(root(s), []).append(s)
    return list(components.values())


def drop_shared(groups: Sequence[Sequence[str]], others: Iterable[Sequence[str]]
                ) -> tuple[list[list[str]], int]:
    """``groups`` without those that share a sentence with any of ``others``; and how many
    were dropped (open-set evaluation: held-out groups must be unseen in training)."""
    seen = {s for group in others for s in group}
    kept = [list(g) for g in groups if not seen.intersection(g)]
    return kept, len(groups) - len(kept)
