"""The texts the export gates compare ONNX with PyTorch on: a catalogue data set (nsmc, kote, klue-ner) or a file,
spread evenly over the set (the calibration texts are ``kolite_export.calibration``'s)."""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from kolite_export.catalogue import DataSet, read_dataset, read_nsmc

__all__ = ["ValidationSet", "load_validation_set"]

VALIDATION_SETS = ("nsmc", "kote", "klue-ner")


@dataclass(frozen=True)
class ValidationSet:
    """Texts to compare ONNX with PyTorch on; ``labels`` are gold label names where the data has them."""

    name: str
    texts: tuple[str, ...]
    labels: tuple[str, ...] | None = None


def _whole_set(spec: str, shared: str | os.PathLike[str] | None) -> tuple[str, DataSet]:
    if spec in VALIDATION_SETS:
        data_dir = Path(shared) / "data" if shared is not None else None
        data = read_dataset(spec, data_dir)
    else:
        path = Path(spec)
        if not path.is_file():
            raise FileNotFoundError(f"validation data {spec!r} is neither {', '.join(VALIDATION_SETS)} nor a file")
        with path.open(encoding="utf-8") as handle:
            first = handle.readline()
        nsmc_format = first.count("\t") == 2
        data = read_nsmc(path) if nsmc_format else _read_plain(path)
        spec = "nsmc" if nsmc_format else "file"
    return spec, data.non_empty()


def load_validation_set(
    spec: str, size: int | None = None, shared: str | os.PathLike[str] | None = None
) -> ValidationSet:
    """``spec`` is a known set (nsmc, kote, klue-ner) or a file (NSMC format if it has 3 columns, else one text per
    line). ``size`` takes that many texts spread evenly over the set (deterministic), None = all."""
    key, data = _whole_set(spec, shared)
    name = f"{key}:{data.path.name}"
    picked = data.spread(size)
    # NFC, as the runtime feeds every text (kolite.normalization): PyTorch's reference then sees the same tokens.
    texts = tuple(unicodedata.normalize("NFC", text) for text in picked.texts)
    return ValidationSet(name, texts, picked.labels)


def _read_plain(path: Path) -> DataSet:
    lines = path.read_text(encoding="utf-8").splitlines()
    return DataSet("file", path, "unknown", tuple(lines))
