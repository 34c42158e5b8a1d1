"""Calibration texts for static int8: real text of the validation data's kind, never a validation text.

NSMC calibrates on its training file, KOTE on its validation split (the gate reads test); KLUE-NER and custom
files on the texts the validation selection leaves out (compared by text: a review posted twice is still a
validation text). Only when the validation takes the whole file does calibration fall back to those same texts,
and the source says so (it is recorded in the recipe).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from kolite_export.catalogue import read_dataset, spread
from kolite_export.validation_data import ValidationSet, load_validation_set

__all__ = ["CALIBRATION_SETS", "CalibrationSet", "calibration_texts"]

# Validation data name → a catalogue set of the same kind that the gate never reads. The bench's peers calibrate
# from the same map (kolite_bench.calibration), so kolite's int8-static and OpenVINO's int8 see the same kind of text.
CALIBRATION_SETS = {"nsmc": "nsmc-train", "kote": "kote-val"}


@dataclass(frozen=True)
class CalibrationSet:
    source: str  # where the texts came from, as recorded in the recipe
    texts: tuple[str, ...]


def _spread(texts: tuple[str, ...], count: int) -> tuple[str, ...]:
    """``count`` non-empty texts spread evenly over ``texts`` (deterministic)."""
    return tuple(spread([t for t in texts if t.strip()], count))


def calibration_texts(
    data_spec: str, validation: ValidationSet, count: int, shared: str | os.PathLike[str] | None = None
) -> CalibrationSet:
    """Up to ``count`` calibration texts for a model validated on ``validation`` (drawn from ``data_spec``)."""
    taken = set(validation.texts)
    if data_spec in CALIBRATION_SETS:
        key = CALIBRATION_SETS[data_spec]
        try:
            data = read_dataset(key, Path(shared) / "data" if shared is not None else None)
        except FileNotFoundError:
            data = None
        if data is not None:
            return CalibrationSet(f"{key}:{data.path.name}", _spread(tuple(t for t in data.texts if t not in taken),
                                                                      count))
    full = load_validation_set(data_spec, None, shared)
    rest = tuple(t for t in full.texts if t not in taken)
    if rest:
        return CalibrationSet(f"{full.name} (texts not in the validation selection)", _spread(rest, count))
    return CalibrationSet(f"{full.name} (the validation texts: nothing else available)", _spread(full.texts, count))
