"""Cells of the text column → result columns (label, score, entities, error), with the runtime model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kolite.labeling.texts import split_valid

__all__ = ["Labeler", "OutputColumns", "load_model", "slice_rows"]

TOKEN_TASK = "token-classification"


def slice_rows(batch_size: int) -> int:
    """Texts per model call. Both engines cut every part into the same slices from its first row, because int8
    (dynamic quantization) scores depend slightly on which texts share a padded batch: equal slices make the
    local, multi-process and Ray outputs byte-identical. A slice is long enough for length bucketing to pay."""
    return max(256, batch_size * 8)


@dataclass(frozen=True)
class OutputColumns:
    """Names of the columns a job adds: ``label``/``score`` (classification) or ``entities`` (NER), and ``error``."""

    task: str
    prefix: str = ""

    @property
    def label(self) -> str:
        return self.prefix + "label"

    @property
    def score(self) -> str:
        return self.prefix + "score"

    @property
    def entities(self) -> str:
        return self.prefix + "entities"

    @property
    def error(self) -> str:
        return self.prefix + "error"

    @property
    def names(self) -> tuple[str, ...]:
        if self.task == TOKEN_TASK:
            return (self.entities, self.error)
        return (self.label, self.score, self.error)

    def collisions(self, input_columns: Sequence[str]) -> list[str]:
        return [name for name in self.names if name in set(input_columns)]


def load_model(
    artifact: str, variant: str = "auto", device: str = "cpu", threads: int | None = None, guard: bool | None = None
) -> Any:
    """``kolite.load`` with ``threads`` ONNX Runtime intra-op threads (one worker process = one session) and the
    fidelity guard as asked (workers get the driver's resolved choice, like the variant)."""
    import kolite

    return kolite.load(artifact, variant=variant, device=device, threads=threads, guard=guard)


def labeler_settings(job: Any, encoding: str) -> dict[str, Any]:
    """What a ``Labeler`` is built from, in every process of both engines (the driver, workers, Ray actors)."""
    return {
        "prefix": job.prefix,
        "batch_size": job.batch_size,
        "allow_empty": job.allow_empty,
        "encoding": encoding,
        "options": job.model_options,
    }


class Labeler:
    """Labels a list of raw cells; invalid cells get an error instead of a label, and nothing is dropped.

    Texts go through the model's own pipeline (``model.predict``: encode → run → decode); ``options`` are the
    model's task options (e.g. ``long_text``); classification keeps each text's top label.
    """

    def __init__(
        self,
        model: Any,
        prefix: str = "",
        batch_size: int = 32,
        allow_empty: bool = False,
        encoding: str = "UTF-8",
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.columns = OutputColumns(model.manifest.task, prefix)
        self.batch_size = batch_size
        self.allow_empty = allow_empty
        self.encoding = encoding  # the input's, named in "undecodable text (not CP949)"
        self.options = dict(options or {})  # classification keeps its default top_k=1: the top label
        model.options(**self.options)  # a bad option fails the job at once, not every slice

    def label(self, values: Sequence[object]) -> dict[str, list[Any]]:
        """One list per output column, aligned with ``values``."""
        positions, texts, errors = split_valid(values, self.allow_empty, self.encoding)
        outputs = self._predict(texts, errors, positions)
        return self._columns(len(values), positions, outputs, errors)

    def _predict(self, texts: list[str], errors: list[str | None], positions: list[int]) -> list[Any]:
        if not texts:
            return []
        try:
            return self._call(texts)
        except (ValueError, RuntimeError, TypeError, MemoryError) as exc:
            if len(texts) == 1:
                errors[positions[0]] = f"model error: {type(exc).__name__}: {exc}"
                return [None]
        # One bad text must not cost the whole batch its labels: retry one by one and blame only the culprits.
        outputs: list[Any] = []
        for position, text in zip(positions, texts, strict=True):
            outputs.extend(self._predict([text], errors, [position]))
        return outputs

    def _call(self, texts: list[str]) -> list[Any]:
        return self.model.predict(texts, batch_size=self.batch_size, **self.options)

    def _columns(
        self, n: int, positions: list[int], outputs: list[Any], errors: list[str | None]
    ) -> dict[str, list[Any]]:
        cols = self.columns
        result: dict[str, list[Any]] = {name: [None] * n for name in cols.names}
        result[cols.error] = list(errors)
        for position, output in zip(positions, outputs, strict=True):
            if output is None:
                continue
            if cols.task == TOKEN_TASK:
                result[cols.entities][position] = [entity.to_dict() for entity in output]
            else:
                (top,) = output
                result[cols.label][position] = top.label
                result[cols.score][position] = round(float(top.score), 6)
        return result
