"""Server settings: frozen dataclasses built once from the CLI (or by tests) and read everywhere else."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["BatchingConfig", "Limits", "ServerConfig"]


@dataclass(frozen=True)
class Limits:
    """What one request may ask for. Defaults follow text-embeddings-inference where it has an equivalent."""

    max_body_bytes: int = 2 * 1024 * 1024  # TEI --payload-limit
    max_items: int = 32  # TEI --max-client-batch-size
    max_text_chars: int = 10_000  # longer texts are cut (truncate=true) or refused with 413
    timeout_s: float = 30.0  # time a request may wait for its result before a 504
    truncate: bool = True  # for requests that do not say

    def __post_init__(self) -> None:
        _positive(self, "max_body_bytes", "max_items", "max_text_chars", "timeout_s")


@dataclass(frozen=True)
class BatchingConfig:
    """Dynamic batching of one model's queue.

    ``max_batch_tokens`` bounds the padded batch (items x longest item, in tokens) handed to onnxruntime;
    ``max_wait_ms`` is how long the oldest queued request may wait for company before its batch runs;
    ``max_queue`` bounds the requests admitted (queued or running) before new ones get 429.
    ``max_call_tokens`` splits a gathered batch into length-sorted onnxruntime calls of at most that many padded
    tokens (CPU: padding a whole batch to its longest text costs more than batching saves).
    ``enabled=False`` runs every request alone, in arrival order (the load-test baseline).
    """

    enabled: bool = True
    max_batch_tokens: int = 16_384  # TEI --max-batch-tokens
    max_batch_items: int = 256
    max_call_tokens: int = 256  # padded tokens per onnxruntime call: a gathered batch runs as length-sorted calls
    max_wait_ms: float = 0.0  # 0: continuous batching (never idle while requests wait)
    max_queue: int = 512  # TEI --max-concurrent-requests

    def __post_init__(self) -> None:
        _positive(self, "max_batch_tokens", "max_batch_items", "max_call_tokens", "max_queue")
        if self.max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {self.max_wait_ms}")


@dataclass(frozen=True)
class ServerConfig:
    """Everything `kolite serve` needs besides host/port."""

    artifacts: tuple[Path, ...]
    limits: Limits = field(default_factory=Limits)
    batching: BatchingConfig = field(default_factory=BatchingConfig)
    variant: str = "auto"
    device: str = "cpu"
    threads: int | None = None  # onnxruntime intra-op threads per model (None: physical cores)
    tokenizer_workers: int | None = None  # tokenizer/response threads (None: min(4, CPUs))
    warmup: bool = True

    def __post_init__(self) -> None:
        if self.tokenizer_workers is not None:
            _positive(self, "tokenizer_workers")


def _positive(obj: object, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if isinstance(value, bool) or value <= 0:
            raise ValueError(f"{name} must be > 0, got {value!r}")
