"""Calibration texts for the peers' static int8 (OpenVINO + NNCF): real text the benchmark never scores.

The bench scores a seed's whole evaluation set (NSMC test, KOTE test, KLUE-NER dev), so calibration comes from
another file of the shared data: NSMC's training file, KOTE's validation split. KLUE-NER ships only its dev split
here; its calibration texts are Korean NSMC training reviews (another domain, but never a scored text), and the
source is recorded with every result.
"""

from __future__ import annotations

from pathlib import Path

from kolite_export.catalogue import read_dataset, read_kote

__all__ = ["CALIBRATION_SOURCES", "calibration_texts"]

# The bench's data set → where its calibration texts come from (a catalogue key or a file under the data folder).
CALIBRATION_SOURCES = {"nsmc": "nsmc-train", "kote": "kote/val.tsv", "klue-ner": "nsmc-train"}


def calibration_texts(dataset: str, data_dir: Path, count: int = 300) -> tuple[str, list[str]]:
    """(source, ``count`` non-empty texts spread evenly over it) for a model benchmarked on ``dataset``."""
    source = CALIBRATION_SOURCES.get(dataset)
    if source is None:
        raise ValueError(f"no calibration source for data set {dataset!r}; known: {', '.join(CALIBRATION_SOURCES)}")
    if source.endswith(".tsv"):
        path = data_dir / source
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: the calibration texts of {dataset} come from it")
        texts = read_kote(path).non_empty().texts
    else:
        texts = read_dataset(source, data_dir).non_empty().texts
    step = max(1, len(texts) // count)
    return source, list(texts[::step][:count])
