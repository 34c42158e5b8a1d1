"""Feeds real texts to onnxruntime's static-quantization calibrator."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from onnxruntime.quantization import CalibrationDataReader

from kolite_export.layouts.base import LoadedCheckpoint

__all__ = ["TextCalibrationReader"]


class TextCalibrationReader(CalibrationDataReader):
    """Yields one padded batch of 8 texts at a time, encoded like the runtime encodes them."""

    def __init__(self, checkpoint: LoadedCheckpoint, texts: tuple[str, ...], batch_size: int = 8) -> None:
        from kolite_export.validation import encode_set

        encoded = encode_set(checkpoint, texts, batch_size)
        self._batches: Iterator[dict[str, np.ndarray]] = iter(encoded.batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)
