"""What the models return: small frozen dataclasses that serialise to plain dicts."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Entity", "Prediction"]


@dataclass(frozen=True)
class Prediction:
    """One label of a text-classification result, with its probability (softmax or sigmoid)."""

    label: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Entity:
    """One tagged span of a token-classification result.

    ``start``/``end`` are character offsets into the ORIGINAL string (``text == original[start:end]``).
    ``label`` is the BIO tag (``B-PS``) with ``aggregation="none"`` and the entity type (``PS``) otherwise.
    ``index`` is the token position in the text's tokenization (``[CLS]`` = 0), set only with ``aggregation="none"``.
    """

    label: str
    score: float
    start: int
    end: int
    text: str
    index: int | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.index is None:
            del data["index"]
        return data
