"""A served model: its artifact, its load state, and the request path through the model's own seams.

    handler → encode (tokenizer pool, once) → batcher queue of token ids → run (one sorted, split plan per
    gathered batch, worker thread) → decode (tokenizer pool) → JSON-ready dicts

The server never tokenizes, softmaxes, ranks or groups entities itself: ``model.encode``, ``model.run`` and
``model.decode`` do, exactly as for the Python API (text-embeddings-inference's split: core work in the model,
thin HTTP handlers in ``app.py``).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kolite.cpu_budget import cpu_budget
from kolite.errors import InvalidInputError, KoliteError, PayloadTooLargeError
from kolite.manifest import Manifest, load_manifest
from kolite.server.batcher import DynamicBatcher, Job
from kolite.server.config import ServerConfig
from kolite.server.metrics import ServerMetrics
from kolite.server.options import pipeline_entity
from kolite.session import SPINNING_ENTRY
from kolite.tokenization import Encoded

__all__ = ["ServedModel", "model_name"]

logger = logging.getLogger("kolite.server")

_WARMUP_TEXT = "워밍업 문장입니다. 서버가 첫 요청을 빠르게 처리하도록 미리 한 번 실행합니다."


def model_name(artifact: Path, manifest: Manifest | None) -> str:
    """The folder's name as given (what users type: a symlink ``current -> v3`` is ``current``, never resolved);
    the manifest's name when the path has none (``/``)."""
    name = Path(os.path.abspath(artifact)).name  # abspath: ``.`` and ``x/..`` normalised, symlinks kept
    return name or (manifest.name if manifest is not None else str(artifact))


class ServedModel:
    """One artifact behind the server. Cheap to build (manifest only); ``load()`` does the heavy work. A manifest
    that cannot be read makes the model failed from the start (the server decides whether to serve the others)."""

    def __init__(self, artifact: Path, config: ServerConfig, metrics: ServerMetrics) -> None:
        self.artifact = Path(artifact)
        self.manifest: Manifest | None = None
        self.failure: str | None = None  # why loading failed; the model is then never served
        try:
            self.manifest = load_manifest(self.artifact)
        except KoliteError as exc:
            self.failure = f"{type(exc).__name__}: {exc}"
        self.name = model_name(self.artifact, self.manifest)
        self.config = config
        self.batcher = DynamicBatcher(self.name, self.run_batch, config.batching, metrics.for_model(self.name))
        self._batched_requests = metrics.batch_requests.labels(self.name)
        self._guarded_rows = metrics.guarded_rows.labels(self.name)
        self.model: Any = None
        self._state_lock = threading.Lock()

    @property
    def is_tagger(self) -> bool:
        return self.manifest is not None and self.manifest.task == "token-classification"

    def require_tagger(self) -> None:
        """/tag is for token-classification models only."""
        if not self.is_tagger:
            task = self.manifest.task if self.manifest is not None else "unknown"
            raise InvalidInputError(f"model {self.name!r} is a {task} model; use /predict")

    @property
    def state(self) -> str:
        """``loading``, ``ready`` or ``failed``."""
        if self.failure is not None:
            return "failed"
        return "ready" if self.model is not None and self.batcher.running else "loading"

    # ---- lifecycle (called from a thread: loading takes seconds) ----

    def load(self) -> None:
        """Load, warm up and start the batcher; on any error record it as this model's failure and re-raise."""
        import kolite
        from kolite.memory import memory_profile

        if self.failure is not None:
            raise KoliteError(self.failure)
        profile = memory_profile(self.config.memory_profile)
        try:
            # max_text_chars=None: the server applies its own limit (--max-text-chars) before encoding.
            model = kolite.load(self.artifact, variant=self.config.variant, device=self.config.device,
                                threads=self.config.threads, session_options=profile.merged_options(SESSION_OPTIONS),
                                parallel=profile.parallel, max_text_chars=None, guard=self.config.guard)
            if self.config.warmup:
                model.predict([_WARMUP_TEXT])
                if profile.full_warmup:
                    # A full-length batch: onnxruntime allocates its arena for the largest shapes once; several
                    # calls in one plan: the throughput-mode sessions are made now, not on the first busy batch.
                    model.predict([_WARMUP_TEXT * 40] * 4)
                    model.run(model.encode([_WARMUP_TEXT] * 4), batch_size=1)
        except Exception as exc:
            self.failure = f"{type(exc).__name__}: {exc}"
            raise
        with self._state_lock:
            self.model = model
            self.batcher.start()
        why = "--threads" if self.config.threads else cpu_budget().reason
        guard = f"on (tau {model.guard.tau:g})" if model.guard is not None else "off"
        logger.info("model %r ready: %s, variant %s, device %s, %d threads (%s), guard %s, memory profile %s",
                    self.name, self.manifest.task, model.variant.name, model.device, model.threads, why, guard,
                    profile.name)

    def close(self) -> None:
        self.batcher.close(timeout=60.0)
        if self.model is not None:
            self.model.close()

    def info(self) -> dict[str, Any]:
        manifest = self.manifest
        return {
            "name": self.name,
            "task": manifest.task if manifest is not None else None,
            "labels": list(manifest.labels) if manifest is not None else [],
            "variant": self.model.variant.name if self.model is not None else self.config.variant,
            "device": self.model.device if self.model is not None else self.config.device,
            "max_length": manifest.max_length if manifest is not None else None,
            "guard": self.model is not None and self.model.guard is not None,
            "source": str(self.artifact),
            "state": self.state,
            "error": self.failure,
        }

    # ---- request path ----

    def options(self, **kwargs: Any) -> Any:
        """The request's task options, validated by the model (a bad value is the client's: 422)."""
        try:
            return self.model.options(**kwargs)
        except InvalidInputError:
            raise
        except KoliteError as exc:
            raise InvalidInputError(str(exc)) from exc

    def encode(self, texts: list[str], options: Any, truncate: bool) -> Encoded:
        """Tokenizer pool: apply the character limit, tokenize once, refuse what may not be cut."""
        limit = self.config.limits.max_text_chars
        # Only a text that is truncated anyway may be cut at the character limit: entities and long-text windows
        # never drop text, so for them the limit is a hard one.
        never_cut = self.is_tagger or getattr(options, "long_text", "truncate") != "truncate"
        for index, text in enumerate(texts):
            if len(text) <= limit:
                continue
            if truncate and not never_cut:
                texts[index] = text[:limit]
                continue
            fix = "split the text or raise --max-text-chars" if never_cut else "send truncate=true to cut it"
            raise PayloadTooLargeError(f"inputs[{index}] has {len(text)} characters, over the limit of {limit} "
                                       f"(--max-text-chars); {fix}")
        try:
            encoded = self.model.encode(texts, options)
        except InvalidInputError:
            raise
        except KoliteError as exc:  # the text was the client's: never a 500
            raise InvalidInputError(str(exc)) from exc
        if not truncate:
            for index, cut in enumerate(encoded.truncated):
                if cut:
                    raise PayloadTooLargeError(f"inputs[{index}] has more tokens than the model's max_length "
                                               f"{self.manifest.max_length}; send truncate=true to cut it")
        return encoded

    def decode(self, outputs: Sequence[np.ndarray], encoded: Encoded, options: Any,
               hf_shape: bool = False) -> list[list[dict[str, Any]]]:
        """Tokenizer pool: the model's own post-processing, as JSON-ready dicts (entities in the transformers
        pipeline's shape for Inference API requests)."""
        results = self.model.decode(outputs, encoded, options)
        if hf_shape and self.is_tagger:
            return [[pipeline_entity(entity, options.aggregation) for entity in entities] for entities in results]
        return [[result.to_dict() for result in text_results] for text_results in results]

    # ---- worker thread ----

    def run_batch(self, jobs: Sequence[Job]) -> list[list[np.ndarray]]:
        """One sorted, split plan for every request of a gathered batch; each request gets its own outputs."""
        self._batched_requests.inc(len(jobs))
        encoded = Encoded.join([job.encoded for job in jobs])
        batching = self.config.batching
        guard = self.model.guard
        rerun_before = guard.rows_rerun if guard is not None else 0  # one worker thread per model: no race
        outputs = self.model.run(encoded, batch_size=batching.max_batch_items, max_tokens=batching.max_call_tokens)
        if guard is not None:
            self._guarded_rows.inc(guard.rows_rerun - rerun_before)
        results, position = [], 0
        for job in jobs:
            count = len(job.encoded.sequences)
            results.append(outputs[position : position + count])
            position += count
        return results


# kolite's defaults, minus spinning: ORT's idle intra-op threads would otherwise busy-wait and steal the cores the
# event loop needs to parse requests between batches. A mapping, so the throughput-mode sessions get it too.
SESSION_OPTIONS = {SPINNING_ENTRY: "0"}
