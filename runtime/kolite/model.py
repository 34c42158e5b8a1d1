"""KoliteModel: the generic core every task model shares, exposed as the pipeline's three public seams.

    encoded = model.encode(texts, options)        # normalise + tokenize (the one tokenizer)
    outputs = model.run(encoded, batch_size=32)   # planned, padded ONNX Runtime calls; one output per sequence
    results = model.decode(outputs, encoded, options)   # the task's post-processing (one owner per task)

``predict`` chains them; ``classify``/``tag`` are the task classes' named wrappers. The Python API, the CLI, the
labeller (both engines) and the server all go through these seams, so normalisation, truncation, windowing,
batching and post-processing happen in one place each (fastembed's layout: a small generic core and one
post-processing hook per model family).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from kolite.batching import CALL_OVERHEAD_TOKENS, run_planned
from kolite.errors import InvalidInputError
from kolite.guard import DecodeView, FidelityGuard
from kolite.manifest import Manifest, Variant
from kolite.session import OnnxModel
from kolite.tokenization import Encoded, TextEncoder

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_MAX_ITEMS",
    "DEFAULT_MAX_TEXT_CHARS",
    "KoliteModel",
    "check_positive_int",
    "pick_options",
    "validate_texts",
]

DEFAULT_BATCH_SIZE = 32
# Larger lists are refused rather than held in memory at once: stream them in chunks (the CLI does).
DEFAULT_MAX_ITEMS = 10_000
# Texts that are never cut (NER, long_text="windows") cost work in proportion to their length: ~100 windows of
# 512 tokens, seconds on a CPU, at this many characters. Longer ones are refused (max_text_chars=None lifts it);
# truncated texts are cut before tokenizing and need no cap. The server has its own limit (--max-text-chars).
DEFAULT_MAX_TEXT_CHARS = 100_000


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


def check_positive_int(name: str, value: Any, upper: int | None = None) -> int:
    """``value`` as an int in [1, upper) (or >= 1), else InvalidInputError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidInputError(f"{name} must be a positive int, got {value!r}")
    if upper is not None and value >= upper:
        raise InvalidInputError(f"{name} must be below {upper} for this model, got {value!r}")
    return int(value)


class KoliteModel:
    """Shared core: encode → run → decode. Task classes implement ``options``, ``_stride`` and ``decode``."""

    task: ClassVar[str] = ""
    result_key: ClassVar[str] = "results"  # how front ends name a text's results ("predictions", "entities")

    def __init__(
        self,
        manifest: Manifest,
        variant: Variant,
        session: OnnxModel,
        encoder: TextEncoder,
        max_items: int = DEFAULT_MAX_ITEMS,
        source: str = "",
        artifact_dir: Path | None = None,
        max_text_chars: int | None = DEFAULT_MAX_TEXT_CHARS,
        guard: FidelityGuard | None = None,
    ) -> None:
        self.manifest = manifest
        self.variant = variant
        self.session = session
        self.encoder = encoder
        self.max_items = max_items
        self.max_text_chars = max_text_chars
        self.source = source  # what the user passed (path or hub id)
        self.artifact_dir = artifact_dir  # the local folder it resolved to
        self.guard = guard  # int8 rows whose decision is not certain are re-run in the float graph (kolite.guard)

    @property
    def labels(self) -> tuple[str, ...]:
        return self.manifest.labels

    @property
    def device(self) -> str:
        return self.session.device.kind

    @property
    def threads(self) -> int:
        """ONNX Runtime intra-op threads of this model's session."""
        return self.session.threads

    # ---- the seams ----

    def options(self, **kwargs: Any) -> Any:
        """Validated, frozen task options from keyword arguments; an option the task does not take is an error."""
        raise NotImplementedError

    def encode(self, texts: str | Sequence[str], options: Any = None) -> Encoded:
        """Validate and tokenize ``texts`` (truncated, or windowed when the options ask for it)."""
        items, _ = validate_texts(texts, self.max_items)
        stride = self._stride(options if options is not None else self.options())
        if stride is not None:
            self._check_lengths(items)
        return self.encoder.encode(items, stride=stride)

    def _check_lengths(self, texts: list[str]) -> None:
        limit = self.max_text_chars
        if limit is None:
            return
        for index, text in enumerate(texts):
            if len(text) > limit:
                raise InvalidInputError(
                    f"texts[{index}] has {len(text):,} characters, over max_text_chars={limit:,} (a text that is "
                    "windowed, never cut, costs work in proportion to its length); split it, or load the model "
                    "with max_text_chars=None (or a larger int) to lift the cap"
                )

    def run(self, encoded: Encoded, batch_size: int = DEFAULT_BATCH_SIZE, max_tokens: int | None = None) -> list:
        """Raw outputs, one per sequence of ``encoded`` in order: [labels] per text or [tokens, labels] per window.

        Sequences are sorted by length and cut into calls of at most ``batch_size`` sequences and, if given,
        ``max_tokens`` padded tokens. With the fidelity guard on, the sequences whose int8 decision is not certain
        are run again, planned the same way, in the float graph, and get its outputs.
        """
        batch_size = check_positive_int("batch_size", batch_size)
        overhead = CALL_OVERHEAD_TOKENS["cuda" if self.device == "cuda" else "cpu"]
        pad = self.manifest.pad_token_id
        outputs = run_planned(encoded.sequences, self.session.run_many, pad, batch_size, max_tokens, overhead)
        guard = self.guard
        if guard is None:
            return outputs
        return guard.apply(
            encoded.sequences,
            outputs,
            lambda rows: run_planned(rows, guard.session.run_many, pad, batch_size, max_tokens, overhead),
            encoded.window_counts,
            self.guard_views(encoded),
        )

    def guard_views(self, encoded: Encoded) -> list[DecodeView | None] | None:
        """Per sequence, what its decode reads (``kolite.guard.DecodeView``), for tasks whose answer is not each
        row's own top label (NER); None for the others."""
        return None

    def decode(self, outputs: Sequence[np.ndarray], encoded: Encoded, options: Any) -> list[list[Any]]:
        """The task's results, one list per text of ``encoded``."""
        raise NotImplementedError

    def predict(
        self, texts: str | Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE, **options: Any
    ) -> list[Any] | list[list[Any]]:
        """encode → run → decode. A single ``str`` gives one list of results; a list gives one list per text."""
        single = isinstance(texts, str)
        parsed = self.options(**options)
        encoded = self.encode(texts, parsed)
        results = self.decode(self.run(encoded, batch_size), encoded, parsed)
        return results[0] if single else results

    def _stride(self, options: Any) -> int | None:
        """Window overlap in tokens for ``encode``, or None for one truncated window per text."""
        return None

    def default_stride(self) -> int:
        """Overlap of long-text windows when none is given: a quarter of a window (transformers' advice)."""
        return max(1, self.encoder.window_capacity // 4)

    def check_stride(self, stride: Any) -> int:
        capacity = self.encoder.window_capacity
        if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or not 0 <= stride < capacity:
            raise InvalidInputError(f"stride must be an int in [0, {capacity}) for this model, got {stride!r}")
        return int(stride)

    # ---- lifecycle ----

    def close(self) -> None:
        """Release the onnxruntime session(s) (the object is unusable afterwards)."""
        self.session.close()
        if self.guard is not None:
            self.guard.close()

    def __enter__(self) -> KoliteModel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.manifest.name!r}, task={self.manifest.task!r}, "
            f"variant={self.variant.name!r}, device={self.device!r}, labels={len(self.labels)}, "
            f"guard={'on' if self.guard is not None else 'off'})"
        )


def pick_options(fields: Sequence[str], kwargs: Mapping[str, Any], task: str) -> dict[str, Any]:
    """The keyword arguments a task's options class takes; any other one given (not None) is an
    :class:`InvalidInputError`: an option silently ignored (``top_k`` to a tagger, ``aggregation`` to a
    classifier) would return something else than what was asked. Every front end (Python, CLI, labeller, HTTP)
    validates its options here, through ``model.options``; ``None`` means "not given"."""
    foreign = [name for name, value in kwargs.items() if name not in fields and value is not None]
    if foreign:
        verb = "does" if len(foreign) == 1 else "do"
        raise InvalidInputError(
            f"{', '.join(foreign)} {verb} not apply to {task} models; their options are {', '.join(fields)}"
        )
    return {name: kwargs[name] for name in fields if name in kwargs}
