"""Readers for the benchmark data in ``$KOLITE_SHARED/data`` (NSMC, KLUE-NER dev, KOTE)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BenchDataset", "load_dataset", "read_klue_ner", "read_kote", "read_nsmc"]


@dataclass(frozen=True)
class BenchDataset:
    """Texts in file order, with gold labels where the set is labelled.

    ``labels`` holds class ids (NSMC) or, for NER, one KLUE BIO tag per character of the text.
    """

    name: str
    texts: list[str]
    labels: list[int] | list[list[str]] | None
    path: str
    license: str

    @property
    def labelled(self) -> bool:
        return self.labels is not None

    def head(self, n: int | None) -> BenchDataset:
        if n is None or n >= len(self.texts):
            return self
        labels = self.labels[:n] if self.labels is not None else None
        return BenchDataset(self.name, self.texts[:n], labels, self.path, self.license)


def read_nsmc(path: Path) -> BenchDataset:
    """NSMC ``id<TAB>document<TAB>label`` with a header; an empty document stays an (empty) text."""
    texts: list[str] = []
    labels: list[int] = []
    with path.open(encoding="utf-8") as handle:
        next(handle)
        for line in handle:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 3:
                continue
            texts.append(parts[1])
            labels.append(int(parts[2]))
    return BenchDataset("nsmc-test", texts, labels, str(path), "CC0 1.0")


def read_klue_ner(path: Path) -> BenchDataset:
    """KLUE-NER: one ``char<TAB>BIO`` per line, blank line between sentences, ``##`` comments."""
    texts: list[str] = []
    tags: list[list[str]] = []
    chars: list[str] = []
    sentence_tags: list[str] = []

    def flush() -> None:
        if chars:
            texts.append("".join(chars))
            tags.append(list(sentence_tags))
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
            # A space character is written as " \tO"; rpartition keeps it.
            chars.append(char if char else " ")
            sentence_tags.append(tag or "O")
    flush()
    return BenchDataset("klue-ner-dev", texts, tags, str(path), "CC BY-SA 4.0")


def read_kote(path: Path) -> BenchDataset:
    """KOTE ``id<TAB>text<TAB>label-indices``: used unlabelled (agreement with the original only)."""
    texts = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 2:
                texts.append(parts[1])
    return BenchDataset("kote-test", texts, None, str(path), "MIT")


_READERS: dict[str, tuple[str, Callable[[Path], BenchDataset]]] = {
    "nsmc": ("nsmc/ratings_test.txt", read_nsmc),
    "klue-ner": ("klue-ner/klue-ner-v1.1_dev.tsv", read_klue_ner),
    "kote": ("kote/test.tsv", read_kote),
}


def load_dataset(name: str, data_dir: Path, limit: int | None = None) -> BenchDataset:
    """Load a benchmark set by name from the shared data folder; ``limit`` keeps the first N texts."""
    if name not in _READERS:
        raise ValueError(f"unknown dataset {name!r}; known: {sorted(_READERS)}")
    relative, reader = _READERS[name]
    path = data_dir / relative
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: point KOLITE_SHARED (or --data-dir) at the shared data folder beside the checkout"
        )
    return reader(path).head(limit)
