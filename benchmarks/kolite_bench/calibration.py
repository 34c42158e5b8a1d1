"""Calibration texts for the peers' static int8 (OpenVINO + NNCF): real text the benchmark never scores.

The bench scores a seed's whole evaluation set (NSMC test, KOTE test, KLUE-NER dev), so calibration comes from
another file of the shared data, the one export's int8-static calibrates on (``kolite_export.calibration``):
NSMC's training file, KOTE's validation split. KLUE-NER ships only its dev split here, which the bench scores
whole; its calibration texts are Korean NSMC training reviews (another domain, but never a scored text), and the
source is recorded with every result.
"""

from __future__ import annotations

from pathlib import Path

from kolite_export.calibration import CALIBRATION_SETS
from kolite_export.catalogue import read_dataset, spread

__all__ = ["CALIBRATION_SOURCES", "calibration_texts"]

# The bench's data set → the catalogue set its calibration texts come from: export's map, plus KLUE-NER's fallback.
CALIBRATION_SOURCES = {**CALIBRATION_SETS, "klue-ner": "nsmc-train"}


def calibration_texts(dataset: str, data_dir: Path, count: int = 300) -> tuple[str, list[str]]:
    """(source, ``count`` non-empty texts spread evenly over it) for a model benchmarked on ``dataset``."""
    source = CALIBRATION_SOURCES.get(dataset)
    if source is None:
        raise ValueError(f"no calibration source for data set {dataset!r}; known: {', '.join(CALIBRATION_SOURCES)}")
    return source, spread(read_dataset(source, data_dir).non_empty().texts, count)
