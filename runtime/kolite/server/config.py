"""Server settings: frozen dataclasses built once from the CLI (or by tests) and read everywhere else."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["AuthConfig", "BatchingConfig", "Limits", "ServerConfig"]


@dataclass(frozen=True)
class Limits:
    """What one request may ask for. Defaults follow text-embeddings-inference where it has an equivalent."""

    max_body_bytes: int = 2 * 1024 * 1024  # TEI --payload-limit
    max_items: int = 32  # TEI --max-client-batch-size
    max_text_chars: int = 10_000  # longer texts are cut (truncate=true) or refused with 413
    timeout_s: float = 30.0  # time a request may wait for its result before a 504
    truncate: bool = True  # for requests that do not say
    # Slow or stalled clients (slowloris): a connection must deliver a request's headers, then its body, in time.
    header_timeout_s: float = 10.0  # from the connection (or the first byte of the next request) to the headers' end
    body_timeout_s: float = 30.0  # from the headers' end to the body's end; then 408 and the connection closes
    max_connections: int = 1024  # open connections; more are answered 503 and closed at once
    # A request's headers, request line included; more are answered 431 and the connection closed. Browsers and
    # proxies stay within 8-16 KiB; nginx's large_client_header_buffers allows 4 x 8 KiB.
    max_header_bytes: int = 32 * 1024

    def __post_init__(self) -> None:
        _positive(self, "max_body_bytes", "max_items", "max_text_chars", "timeout_s", "header_timeout_s",
                  "body_timeout_s", "max_connections", "max_header_bytes")


@dataclass(frozen=True)
class BatchingConfig:
    """Dynamic batching of one model's queue.

    ``max_batch_tokens`` bounds the padded batch (items x longest item, in tokens) handed to onnxruntime;
    ``max_wait_ms`` is how long the oldest queued request may wait for company before its batch runs;
    ``max_queue`` bounds the requests admitted (queued or running) before new ones get 429; ``max_queue_tokens``
    bounds their tokens the same way (a request is admitted when the queue is empty, however large it is).
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
    max_queue_tokens: int = 262_144  # tokens of the admitted requests: 16 full batches

    def __post_init__(self) -> None:
        _positive(self, "max_batch_tokens", "max_batch_items", "max_call_tokens", "max_queue", "max_queue_tokens")
        if self.max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {self.max_wait_ms}")


@dataclass(frozen=True)
class AuthConfig:
    """Bearer-token authentication: with an ``api_key`` every route but ``open_routes`` needs
    ``Authorization: Bearer <api_key>``."""

    api_key: str | None = None
    open_routes: tuple[str, ...] = ("/health", "/metrics")

    def __post_init__(self) -> None:
        if self.api_key is not None and not self.api_key.strip():
            raise ValueError("the API key is empty: give a non-empty key or none")
        for route in self.open_routes:
            if not route.startswith("/"):
                raise ValueError(f"open routes are paths starting with '/', got {route!r}")

    def __repr__(self) -> str:  # the key never lands in a log line or a traceback
        return f"AuthConfig(api_key={'***' if self.api_key else None}, open_routes={self.open_routes})"


@dataclass(frozen=True)
class ServerConfig:
    """Everything `kolite serve` needs besides host/port."""

    artifacts: tuple[Path, ...]
    limits: Limits = field(default_factory=Limits)
    batching: BatchingConfig = field(default_factory=BatchingConfig)
    variant: str = "auto"
    device: str = "cpu"
    threads: int | None = None  # onnxruntime intra-op threads per model (None: the CPU budget)
    tokenizer_workers: int | None = None  # tokenizer/response threads (None: min(4, the CPU budget))
    warmup: bool = True
    guard: bool | None = None  # fidelity guard per model (kolite.load's guard; None: each artifact's default)
    auth: AuthConfig = field(default_factory=AuthConfig)
    # Triton's --exit-on-error: a model that cannot load stops the server (every reason reported); False serves
    # the models that load and shows the failed ones in /models, with /health answering 503.
    exit_on_error: bool = True
    memory_profile: str = "default"  # kolite.memory: default (speed) or edge (RSS)

    def __post_init__(self) -> None:
        if self.tokenizer_workers is not None:
            _positive(self, "tokenizer_workers")
        from kolite.memory import MEMORY_PROFILES

        if self.memory_profile not in MEMORY_PROFILES:
            raise ValueError(f"memory_profile must be one of {', '.join(MEMORY_PROFILES)}, got {self.memory_profile!r}")


def _positive(obj: object, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if isinstance(value, bool) or value <= 0:
            raise ValueError(f"{name} must be > 0, got {value!r}")
