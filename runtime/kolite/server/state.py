"""The server's state: served models, their load state, the tokenizer pool, and one request's way through them."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kolite.cpu_budget import cpu_budget
from kolite.errors import (
    EmptyInputError,
    InvalidInputError,
    KoliteError,
    ModelUnavailableError,
    NotFoundError,
    PayloadTooLargeError,
    ResultTimeoutError,
)
from kolite.server.config import ServerConfig
from kolite.server.metrics import ServerMetrics
from kolite.server.middleware import REQUEST_ID
from kolite.server.models import ServedModel
from kolite.server.tracing import Tracing

__all__ = ["ServerState", "failure_report"]

logger = logging.getLogger("kolite.server")

# Requests of at most this many characters in all are tokenized and decoded on the event loop (see ``infer``): a
# bound on how long one request can hold the loop (a 1,024-character text encodes in well under a millisecond).
INLINE_CHARS = 1024


def failure_report(models: list[ServedModel]) -> str:
    """One line per model that cannot be served, with its folder and reason."""
    lines = [f"model {m.name!r} ({m.artifact}) failed to load: {m.failure}" for m in models]
    return "\n".join(lines) + "\n(--no-exit-on-error serves the models that load)"


class ServerState:
    """The served models, whether they are ready, and the thread pool that tokenizes and decodes off the loop."""

    def __init__(self, config: ServerConfig, metrics: ServerMetrics, tracing: Tracing | None = None) -> None:
        self.config = config
        self.metrics = metrics
        self.tracing = tracing or Tracing()
        self.models: dict[str, ServedModel] = {}
        for artifact in config.artifacts:
            model = ServedModel(artifact, config, metrics)
            if model.name in self.models:
                raise KoliteError(f"two artifacts would both be served as {model.name!r} "
                                  f"({self.models[model.name].artifact} and {artifact}): models are named after "
                                  "their folder; serve one of them through a symlink of another name")
            self.models[model.name] = model
        # Tokenizing and decoding run here, never on the event loop (text-embeddings-inference's tokenizer pool).
        workers = config.tokenizer_workers or min(4, cpu_budget().threads)
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="kolite-tokenizer")
        self.draining = False  # SIGTERM: /health says 503 so load balancers stop sending, requests are still served
        self.stopping = False  # the server no longer accepts connections

    # ---- lifecycle ----

    def load_all(self) -> list[str]:
        """Load and warm up every model (worker thread); returns the failures, each logged with its reason."""
        failures = []
        for name, model in self.models.items():
            try:
                model.load()
            except Exception:  # any failure, typed or not, must show in /health instead of "warming up" forever
                logger.error("kolite serve: model %r (%s) failed to load: %s", name, model.artifact, model.failure)
                failures.append(f"{name}: {model.failure}")
        if not failures:
            self.metrics.ready.set(1)
        return failures

    def close_all(self) -> None:
        for model in self.models.values():
            model.close()
        self.pool.shutdown(wait=False, cancel_futures=True)

    def require_ready(self) -> None:
        """/health: 503 unless every model is ready and the server is neither draining nor stopping."""
        if self.draining or self.stopping:
            raise ModelUnavailableError("the server is shutting down")
        failed = [f"{m.name}: {m.failure}" for m in self.models.values() if m.state == "failed"]
        if failed:
            raise ModelUnavailableError("model loading failed: " + "; ".join(failed))
        loading = [m for m in self.models.values() if m.state == "loading"]
        if loading:
            ready = len(self.models) - len(loading)
            raise ModelUnavailableError(f"warming up: {ready}/{len(self.models)} models ready")

    @staticmethod
    def require_model(model: ServedModel) -> None:
        """Inference on ``model``: 503 while it is loading or failed (another model's failure does not matter);
        served while draining."""
        if model.state == "failed":
            raise ModelUnavailableError(f"model {model.name!r} failed to load: {model.failure}")
        if model.state == "loading":
            raise ModelUnavailableError(f"warming up: model {model.name!r} is not ready yet")

    def begin_drain(self) -> None:
        if not self.draining:
            self.draining = True
            self.metrics.ready.set(0)
            logger.info("kolite serve: draining: /health answers 503, requests are still served")

    def pick(self, name: str | None) -> ServedModel:
        if name is None:
            if len(self.models) == 1:
                return next(iter(self.models.values()))
            raise InvalidInputError(f"several models are served ({', '.join(self.models)}): set \"model\" in the "
                                    "body or POST to /models/{name}/predict")
        model = self.models.get(name)
        if model is None:
            raise NotFoundError(f"unknown model {name!r}; served models: {', '.join(self.models)}")
        return model

    # ---- one request ----

    async def _tokenizer_work(self, inline: bool, work: Any, *args: Any) -> Any:
        """``work(*args)`` right here on the event loop (``inline``) or on the tokenizer pool."""
        if inline:
            return work(*args)
        return await asyncio.get_running_loop().run_in_executor(self.pool, work, *args)

    async def infer(self, model: ServedModel, inputs: str | list[str], truncate: bool | None,
                    options: dict[str, Any], hf_shape: bool = False) -> Any:
        """encode (pool) → queue → run (batcher thread) → decode (pool). One text in: one result list out (wrapped
        once more for a classifier in the Inference API's shape, which ``InferenceClient`` unwraps).

        A request of at most ``INLINE_CHARS`` characters is encoded and decoded on the event loop instead: for a
        review-sized text the two hops to the pool and back cost more than the work (tens of µs), and they wake
        threads on the cores the model needs. With the plain-body path, two A/B runs against the pool hops (6
        rounds each, 64 clients, Xeon) gave 1.06× and 1.09× req/s, 11 of 12 rounds above 1, at 0.93–0.94× CPU per
        request (benchmarks/results/serve-ab-000-inline-fast*-xeon.json)."""
        self.require_model(model)
        limits = self.config.limits
        truncate = limits.truncate if truncate is None else truncate
        single = isinstance(inputs, str)
        texts = [inputs] if single else list(inputs)
        if not texts:
            raise EmptyInputError("inputs is an empty list: send at least one text")
        if len(texts) > limits.max_items:
            raise PayloadTooLargeError(f"{len(texts)} inputs in one request, over the limit of {limits.max_items} "
                                       "(--max-items); split the request")
        parsed = model.options(**options)
        tracing = self.tracing
        inline = sum(len(text) for text in texts) <= INLINE_CHARS
        with tracing.span("tokenize", **{"kolite.model": model.name, "kolite.request.texts": len(texts)}):
            encoded = await self._tokenizer_work(inline, model.encode, texts, parsed, truncate)
        try:  # a full queue or a closed batcher raises its own kolite error (429, 503)
            job = await asyncio.wait_for(model.batcher.submit(encoded, REQUEST_ID.get()), limits.timeout_s)
        except asyncio.TimeoutError as exc:
            raise ResultTimeoutError(f"no result within {limits.timeout_s} s (--timeout-s); the server is "
                                     "overloaded") from exc
        tracing.batched(job, model.name)
        with tracing.span("decode", **{"kolite.model": model.name}):
            results = await self._tokenizer_work(inline, model.decode, job.future.result(), encoded, parsed, hf_shape)
        if not single:
            return results
        return results if hf_shape and not model.is_tagger else results[0]
