"""Calibration texts for static int8: real text of the validation data's kind, never the validation texts.

NSMC calibrates on its training file, KOTE on its validation split (the gate reads test); KLUE-NER and custom
files on the texts the validation selection leaves out. Only when the validation takes the whole file does
calibration fall back to those same texts, and the source says so (it is recorded in the recipe).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from kolite_export.validation_data import READERS, ValidationSet, load_validation_set

__all__ = ["CALIBRATION_FILES", "CalibrationSet", "calibration_texts"]

# Validation data name → a file of the same kind that the gate never reads (same reader as the name's own file).
CALIBRATION_FILES = {"nsmc": "data/nsmc/ratings_train.txt", "kote": "data/kote/val.tsv"}


@dataclass(frozen=True)
class CalibrationSet:
    source: str  # where the texts came from, as recorded in the recipe
    texts: tuple[str, ...]


def _spread(texts: tuple[str, ...], count: int) -> tuple[str, ...]:
    """``count`` non-empty texts spread evenly over ``texts`` (deterministic)."""
    texts = tuple(t for t in texts if t.strip())
    if len(texts) <= count:
        return texts
    step = len(texts) / count
    return tuple(texts[int(i * step)] for i in range(count))


def calibration_texts(
    data_spec: str, validation_size: int | None, count: int, shared: str | os.PathLike[str] | None = None
) -> CalibrationSet:
    """Up to ``count`` calibration texts for a model validated on ``data_spec`` with ``validation_size`` texts."""
    from kolite_export.paths import shared_dir

    if data_spec in CALIBRATION_FILES:
        path = shared_dir(shared) / CALIBRATION_FILES[data_spec]
        if path.is_file():
            full: ValidationSet = READERS[data_spec][1](path)
            return CalibrationSet(f"{data_spec}:{path.name}", _spread(full.texts, count))
    full = load_validation_set(data_spec, None, shared)
    validation = set(load_validation_set(data_spec, validation_size, shared).texts)
    rest = tuple(t for t in full.texts if t not in validation)
    if rest:
        return CalibrationSet(f"{full.name} (texts not in the validation selection)", _spread(rest, count))
    return CalibrationSet(f"{full.name} (the validation texts: nothing else available)", _spread(full.texts, count))
