"""A served model: artifact → loaded kolite model + token counter + batcher, and the batch function that turns
one gathered batch of requests into one inference call and per-request JSON-ready results."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kolite.classification import sigmoid, softmax
from kolite.manifest import Manifest, load_manifest
from kolite.server.batcher import DynamicBatcher, Job
from kolite.server.config import ServerConfig
from kolite.server.errors import ApiError
from kolite.server.metrics import ServerMetrics
from kolite.tokenization import replace_lone_surrogates

__all__ = ["ServedModel", "Task", "TokenCounter", "model_name", "plan_calls"]

logger = logging.getLogger("kolite.server")

_WARMUP_TEXT = "워밍업 문장입니다. 서버가 첫 요청을 빠르게 처리하도록 미리 한 번 실행합니다."


@dataclass(frozen=True)
class Task:
    """What a job computes: ``classify`` (probabilities or raw logits) or ``tag`` (entities)."""

    kind: str
    raw_scores: bool = False
    aggregation: str = "simple"


def model_name(artifact: Path, manifest: Manifest) -> str:
    """The folder name (what users type); the manifest name when the path has none (e.g. ``.``)."""
    return artifact.resolve().name or manifest.name


class TokenCounter:
    """Exact token counts (special tokens included, no truncation) from the artifact's own tokenizer.json.

    The batcher budgets padded tokens, and ``truncate=false`` must refuse over-long texts before they queue.
    """

    def __init__(self, tokenizer_file: Path) -> None:
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()

    def count(self, texts: Sequence[str]) -> list[int]:
        texts = [replace_lone_surrogates(t) for t in texts]
        if len(texts) == 1:
            return [len(self._tokenizer.encode(texts[0]))]
        return [len(e) for e in self._tokenizer.encode_batch(texts)]


class ServedModel:
    """One artifact behind the server. Cheap to build (manifest only); ``load()`` does the heavy work."""

    def __init__(self, artifact: Path, config: ServerConfig, metrics: ServerMetrics) -> None:
        self.artifact = Path(artifact)
        self.manifest = load_manifest(self.artifact)
        self.name = model_name(self.artifact, self.manifest)
        self.config = config
        self.counter = TokenCounter(self.artifact / self.manifest.tokenizer.file)
        self.batcher = DynamicBatcher(self.name, self.run_batch, config.batching, metrics.for_model(self.name))
        self._batched_requests = metrics.batch_requests.labels(self.name)
        self.model: Any = None

    @property
    def is_tagger(self) -> bool:
        return self.manifest.task == "token-classification"

    # ---- lifecycle (called from a thread: loading takes seconds) ----

    def load(self) -> None:
        import kolite

        self.model = kolite.load(self.artifact, variant=self.config.variant, device=self.config.device,
                                 threads=self.config.threads, session_options=_session_options(self.config.threads))
        if self.config.warmup:
            # A short text, then a full-length batch: onnxruntime allocates its arena for the largest shapes once.
            self.model.predict([_WARMUP_TEXT])
            self.model.predict([_WARMUP_TEXT * 40] * 4)
        self.batcher.start()
        logger.info("model %r ready: %s, variant %s, device %s", self.name, self.manifest.task,
                    self.model.variant.name, self.model.device)

    def close(self) -> None:
        self.batcher.close(timeout=60.0)
        if self.model is not None:
            self.model.close()

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "task": self.manifest.task,
            "labels": list(self.manifest.labels),
            "variant": self.model.variant.name if self.model is not None else self.config.variant,
            "device": self.model.device if self.model is not None else self.config.device,
            "max_length": self.manifest.max_length,
            "source": str(self.artifact),
        }

    # ---- request path (event loop) ----

    def prepare(self, texts: list[str], truncate: bool) -> tuple[list[str], list[int]]:
        """Apply the character and token limits; returns the texts to run and their (capped) token counts."""
        limit = self.config.limits.max_text_chars
        for index, text in enumerate(texts):
            if len(text) > limit:
                if not truncate:
                    raise ApiError(413, f"inputs[{index}] has {len(text)} characters, over the limit of {limit} "
                                        "(--max-text-chars); send truncate=true to cut it", "PayloadTooLarge")
                texts[index] = text[:limit]
        lengths = self.counter.count(texts)
        max_length = self.manifest.max_length
        if not truncate and not self.is_tagger:
            for index, length in enumerate(lengths):
                if length > max_length:
                    raise ApiError(413, f"inputs[{index}] has {length} tokens, over the model's max_length "
                                        f"{max_length}; send truncate=true to cut it", "PayloadTooLarge")
        # Tagging splits long texts into windows: budget them as full windows.
        return texts, [min(length, max_length) for length in lengths]

    # ---- worker thread ----

    def run_batch(self, jobs: Sequence[Job]) -> list[Any]:
        """One inference call for all classification jobs (and one per aggregation for tagging jobs)."""
        results: list[Any] = [None] * len(jobs)
        self._batched_requests.inc(len(jobs))
        classify = [i for i, job in enumerate(jobs) if job.task.kind == "classify"]
        if classify:
            texts = [text for i in classify for text in jobs[i].texts]
            logits = self._logits(texts, [n for i in classify for n in jobs[i].lengths])
            position = 0
            for i in classify:
                count = len(jobs[i].texts)
                results[i] = self._label_scores(logits[position : position + count], jobs[i].task.raw_scores)
                position += count
        tag = [i for i, job in enumerate(jobs) if job.task.kind == "tag"]
        for aggregation in sorted({jobs[i].task.aggregation for i in tag}):
            group = [i for i in tag if jobs[i].task.aggregation == aggregation]
            texts = [text for i in group for text in jobs[i].texts]
            longest = max(n for i in group for n in jobs[i].lengths)
            batch_size = max(1, self.config.batching.max_call_tokens // max(longest, 1))
            entities = self.model.tag(texts, aggregation=aggregation, batch_size=batch_size)
            position = 0
            for i in group:
                count = len(jobs[i].texts)
                results[i] = [[e.to_dict() for e in ents] for ents in entities[position : position + count]]
                position += count
        return results

    def _logits(self, texts: list[str], lengths: list[int]) -> np.ndarray:
        """Logits in input order, from length-sorted ONNX Runtime calls of at most ``max_call_tokens`` padded tokens.

        One call padded to the batch's longest text wastes most of its work on padding (NSMC reviews: median 13
        tokens, longest 140) and on CPU ran slower than one call per text; calls of similar lengths do not.
        """
        rows = np.empty((len(texts), len(self.manifest.labels)), dtype=np.float32)
        for indices in plan_calls(lengths, self.config.batching.max_call_tokens):
            rows[indices] = self.model.logits([texts[i] for i in indices], batch_size=len(indices))
        return rows

    def _label_scores(self, logits: np.ndarray, raw: bool) -> list[list[dict[str, Any]]]:
        """Every label with its score, highest first (TEI's /predict shape)."""
        if raw:
            values = logits
        elif self.manifest.problem_type == "multi_label_classification":
            values = sigmoid(logits)
        else:
            values = softmax(logits)
        order = np.argsort(-values, axis=-1, kind="stable")
        labels = self.manifest.labels
        return [
            [{"label": labels[j], "score": score} for j, score in zip(ranked, row[ranked].tolist(), strict=True)]
            for row, ranked in zip(values, order.tolist(), strict=True)
        ]


def plan_calls(lengths: Sequence[int], max_call_tokens: int) -> list[list[int]]:
    """Group item indices, longest first, so each group's padded size (items x its longest) fits the budget.

    A single item over the budget still gets its own call.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    calls: list[list[int]] = []
    for index in order:
        if calls and (len(calls[-1]) + 1) * lengths[calls[-1][0]] <= max_call_tokens:
            calls[-1].append(index)
        else:
            calls.append([index])
    return calls


def _session_options(threads: int | None) -> Any:
    """kolite's defaults, minus spinning: ORT's idle intra-op threads would otherwise busy-wait and steal the
    cores the event loop needs to parse requests between batches."""
    from kolite.session import build_session_options

    options = build_session_options(threads)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options
