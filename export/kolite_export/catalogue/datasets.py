"""The real Korean data sets in ``$KOLITE_SHARED/data``: one reader per set, used by export (validation and
calibration texts, stand-in vocabularies), the benchmark (texts, gold labels, NER character tags) and the tests.

Readers keep every record in file order, empty texts included; a caller that cannot use empty texts drops them
(``DataSet.non_empty``), so every consumer counts the same rows the same way.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

from kolite_export.paths import shared_dir

__all__ = [
    "DATASETS",
    "NSMC_LABELS",
    "DataSet",
    "DataSource",
    "data_path",
    "read_dataset",
    "read_klue_ner",
    "read_kote",
    "read_nsmc",
    "spread",
]

NSMC_LABELS = ("negative", "positive")
T = TypeVar("T")


def spread(items: Sequence[T], count: int) -> list[T]:
    """``count`` items spread evenly over ``items``, in their order (deterministic); all of them if there are no
    more than ``count``. kolite's one way to take a sample of a data set: validation, calibration, bench texts."""
    if count >= len(items):
        return list(items)
    step = len(items) / count
    return [items[int(i * step)] for i in range(count)]


@dataclass(frozen=True)
class DataSet:
    """Texts in file order; ``labels`` are gold label names (one per text) where the set has them, ``char_tags`` a
    KLUE BIO tag per character of each text (NER)."""

    name: str
    path: Path
    license: str
    texts: tuple[str, ...]
    labels: tuple[str, ...] | None = None
    label_names: tuple[str, ...] | None = None  # the class names in id order, where ``labels`` exist
    char_tags: tuple[tuple[str, ...], ...] | None = None

    @property
    def labelled(self) -> bool:
        return self.labels is not None or self.char_tags is not None

    def label_ids(self) -> list[int] | None:
        if self.labels is None or self.label_names is None:
            return None
        index = {name: i for i, name in enumerate(self.label_names)}
        return [index[label] for label in self.labels]

    def select(self, rows: Sequence[int]) -> DataSet:
        """The records at ``rows``, in that order."""
        return replace(
            self,
            texts=tuple(self.texts[i] for i in rows),
            labels=tuple(self.labels[i] for i in rows) if self.labels is not None else None,
            char_tags=tuple(self.char_tags[i] for i in rows) if self.char_tags is not None else None,
        )

    def spread(self, count: int | None) -> DataSet:
        """``count`` records spread evenly over the set (``spread``); None: all of them."""
        return self if count is None else self.select(spread(range(len(self.texts)), count))

    def head(self, n: int | None) -> DataSet:
        return self if n is None or n >= len(self.texts) else self.select(range(n))

    def non_empty(self) -> DataSet:
        """Without empty and whitespace-only texts (nothing to compare a model on)."""
        return self.select([i for i, text in enumerate(self.texts) if text.strip()])


def read_nsmc(path: Path) -> DataSet:
    """NSMC ``id<TAB>document<TAB>label`` with a header; a row of another field count is not a review."""
    texts, labels = [], []
    with path.open(encoding="utf-8") as handle:
        next(handle)
        for line in handle:
            parts = line.rstrip("\n").split("\t")
            if len(parts) == 3:
                texts.append(parts[1])
                labels.append(NSMC_LABELS[int(parts[2])])
    name = "nsmc-train" if "train" in path.name else "nsmc-test"
    return DataSet(name, path, "CC0 1.0", tuple(texts), tuple(labels), NSMC_LABELS)


def read_kote(path: Path) -> DataSet:
    """KOTE ``id<TAB>text<TAB>label-indices``: used unlabelled (agreement with the original only)."""
    texts = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 2:
                texts.append(parts[1])
    return DataSet("kote-test", path, "MIT", tuple(texts))


def read_klue_ner(path: Path) -> DataSet:
    """KLUE-NER: one ``char<TAB>BIO`` per line, a blank line between sentences, ``##`` comment lines."""
    texts: list[str] = []
    tags: list[tuple[str, ...]] = []
    chars: list[str] = []
    sentence_tags: list[str] = []

    def flush() -> None:
        if chars:
            texts.append("".join(chars))
            tags.append(tuple(sentence_tags))
        chars.clear()
        sentence_tags.clear()

    with path.open(encoding="utf-8") as handle:
        for raw in handle:
            line = raw.rstrip("\n")
            if line.startswith("##"):
                continue
            if not line.strip("\t"):
                flush()
                continue
            char, _, tag = line.rpartition("\t")
            chars.append(char or " ")  # a space character is written as " \tO"
            sentence_tags.append(tag or "O")
    flush()
    return DataSet("klue-ner-dev", path, "CC BY-SA 4.0", tuple(texts), char_tags=tuple(tags))


@dataclass(frozen=True)
class DataSource:
    relative: str  # under the shared data folder
    reader: Callable[[Path], DataSet]


DATASETS: dict[str, DataSource] = {
    "nsmc": DataSource("nsmc/ratings_test.txt", read_nsmc),
    "nsmc-train": DataSource("nsmc/ratings_train.txt", read_nsmc),
    "kote": DataSource("kote/test.tsv", read_kote),
    "kote-val": DataSource("kote/val.tsv", read_kote),
    "klue-ner": DataSource("klue-ner/klue-ner-v1.1_dev.tsv", read_klue_ner),
}


def data_path(key: str, data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where set ``key`` lies: under ``data_dir``, else ``<shared folder>/data``; a clear error if it is missing."""
    if key not in DATASETS:
        raise ValueError(f"unknown data set {key!r}; known: {', '.join(DATASETS)}")
    path = (Path(data_dir) if data_dir is not None else shared_dir() / "data") / DATASETS[key].relative
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: set KOLITE_SHARED (or --shared / --data-dir) to the shared folder")
    return path


def read_dataset(key: str, data_dir: str | os.PathLike[str] | None = None) -> DataSet:
    """Read set ``key`` (nsmc, nsmc-train, kote, kote-val, klue-ner) from ``data_dir`` (default: the shared
    folder's ``data``)."""
    path = data_path(key, data_dir)
    return DATASETS[key].reader(path)
