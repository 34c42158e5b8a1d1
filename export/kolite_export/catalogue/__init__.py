"""The catalogue: the seed models, the real data sets and where the shared folder is — one owner for each, used
by export, the benchmark and the tests. Light to import (no torch)."""

from __future__ import annotations

from kolite_export.catalogue.datasets import (
    DATASETS,
    NSMC_LABELS,
    DataSet,
    data_path,
    read_dataset,
    read_klue_ner,
    read_kote,
    read_nsmc,
    spread,
)
from kolite_export.catalogue.seeds import NER_LABELS, SEEDS, SENTENCE_TYPE_LABELS, SeedModel, get_seed
from kolite_export.paths import shared_dir

__all__ = [
    "DATASETS",
    "NER_LABELS",
    "NSMC_LABELS",
    "SEEDS",
    "SENTENCE_TYPE_LABELS",
    "DataSet",
    "SeedModel",
    "data_path",
    "get_seed",
    "read_dataset",
    "read_klue_ner",
    "read_kote",
    "read_nsmc",
    "shared_dir",
    "spread",
]
