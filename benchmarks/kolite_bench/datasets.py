"""The benchmark's view of the catalogue's data sets (``kolite_export.catalogue``): texts in file order, gold
class ids or, for NER, one KLUE BIO tag per character."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kolite_export.catalogue import DataSet, read_dataset

__all__ = ["BenchDataset", "load_dataset"]


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

    @classmethod
    def from_catalogue(cls, data: DataSet) -> BenchDataset:
        labels = [list(tags) for tags in data.char_tags] if data.char_tags is not None else data.label_ids()
        return cls(data.name, list(data.texts), labels, str(data.path), data.license)


def load_dataset(name: str, data_dir: Path, limit: int | None = None) -> BenchDataset:
    """Load a benchmark set by name from the shared data folder; ``limit`` keeps the first N texts."""
    return BenchDataset.from_catalogue(read_dataset(name, data_dir).head(limit))
