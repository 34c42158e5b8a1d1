"""KoliteModel: the generic core every task model shares (manifest, variant, session, tokenizer, validation)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kolite.batching import run_bucketed
from kolite.errors import InvalidInputError
from kolite.manifest import Manifest, Variant
from kolite.session import OnnxModel
from kolite.tokenization import TextEncoder

__all__ = ["DEFAULT_BATCH_SIZE", "DEFAULT_MAX_ITEMS", "KoliteModel", "validate_texts"]

DEFAULT_BATCH_SIZE = 32
# Larger lists are refused rather than held in memory at once: stream them in chunks (the CLI does).
DEFAULT_MAX_ITEMS = 10_000


def validate_texts(texts: str | Sequence[str], max_items: int) -> tuple[list[str], bool]:
    """Normalise one text or a list of texts; returns (texts, was_single). Empty/whitespace strings are valid."""
    if isinstance(texts, str):
        return [texts], True
    if texts is None or isinstance(texts, (bytes, bytearray)) or not isinstance(texts, Sequence):
        raise InvalidInputError(f"texts must be a str or a list of str, got {type(texts).__name__}")
    if len(texts) == 0:
        raise InvalidInputError("texts is an empty list: give at least one text")
    if len(texts) > max_items:
        raise InvalidInputError(
            f"{len(texts)} texts in one call exceeds max_items={max_items}; split the input into chunks "
            "or load the model with a larger max_items"
        )
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise InvalidInputError(f"texts[{index}] is {type(text).__name__} ({text!r:.40}), expected str")
    return list(texts), False


def _check_batch_size(batch_size: int) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise InvalidInputError(f"batch_size must be a positive int, got {batch_size!r}")
    return int(batch_size)


class KoliteModel:
    """Shared core: tokenise, bucket, run. Task classes add the post-processing (numpy only)."""

    def __init__(
        self,
        manifest: Manifest,
        variant: Variant,
        session: OnnxModel,
        encoder: TextEncoder,
        max_items: int = DEFAULT_MAX_ITEMS,
        source: str = "",
        artifact_dir: Path | None = None,
    ) -> None:
        self.manifest = manifest
        self.variant = variant
        self.session = session
        self.encoder = encoder
        self.max_items = max_items
        self.source = source  # what the user passed (path or hub id)
        self.artifact_dir = artifact_dir  # the local folder it resolved to

    @property
    def labels(self) -> tuple[str, ...]:
        return self.manifest.labels

    @property
    def device(self) -> str:
        return self.session.device.kind

    def _run(self, sequences: Sequence[Sequence[int]], batch_size: int) -> list[np.ndarray]:
        return run_bucketed(sequences, self.session.run, self.manifest.pad_token_id, _check_batch_size(batch_size))

    def predict(self, texts: str | Sequence[str], **kwargs: Any) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        """Release the onnxruntime session (the object is unusable afterwards)."""
        self.session.close()

    def __enter__(self) -> KoliteModel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.manifest.name!r}, task={self.manifest.task!r}, "
            f"variant={self.variant.name!r}, device={self.device!r}, labels={len(self.labels)})"
        )
