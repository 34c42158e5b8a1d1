"""The FastAPI application: routes, model loading/warm-up in the background, graceful shutdown."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from kolite.errors import KoliteError
from kolite.server.batcher import BatcherClosedError, QueueFullError
from kolite.server.config import ServerConfig
from kolite.server.errors import ERROR_TABLE, ApiError, install_error_handlers
from kolite.server.metrics import RequestMiddleware, ServerMetrics
from kolite.server.models import ServedModel, Task
from kolite.server.schemas import (
    EntityOut,
    ErrorOut,
    HealthOut,
    ModelsOut,
    PredictionOut,
    PredictRequest,
    TagRequest,
)

__all__ = ["KoliteJSONResponse", "ServerState", "create_app"]

logger = logging.getLogger("kolite.server")

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": f"`{kind}`: {when}"} for status, (kind, when) in ERROR_TABLE.items()
}
_PREDICT_OUT = list[PredictionOut] | list[list[PredictionOut]] | list[EntityOut] | list[list[EntityOut]]
_TAG_OUT = list[EntityOut] | list[list[EntityOut]]
# Texts longer than this (in total) are measured off the event loop so one huge request cannot stall the others.
_COUNT_INLINE_CHARS = 20_000


class KoliteJSONResponse(JSONResponse):
    """UTF-8 JSON; a lone surrogate taken from the request (valid JSON ``"\\ud800"``) is echoed back escaped
    instead of failing to encode."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


class ServerState:
    """The served models and whether they are ready."""

    def __init__(self, config: ServerConfig, metrics: ServerMetrics) -> None:
        self.config = config
        self.metrics = metrics
        self.models: dict[str, ServedModel] = {}
        for artifact in config.artifacts:
            model = ServedModel(artifact, config, metrics)
            if model.name in self.models:
                raise KoliteError(f"two artifacts are named {model.name!r} ({self.models[model.name].artifact} and "
                                  f"{artifact}); rename one folder")
            self.models[model.name] = model
        self.loaded: list[str] = []
        self.ready = False
        self.failure: str | None = None
        self.stopping = False

    def load_all(self) -> None:
        """Load and warm up every model (worker thread)."""
        for name, model in self.models.items():
            model.load()
            self.loaded.append(name)
        self.ready = True
        self.metrics.ready.set(1)

    def close_all(self) -> None:
        for model in self.models.values():
            model.close()

    def require_ready(self) -> None:
        if self.stopping:
            raise ApiError(503, "the server is shutting down", "Unhealthy")
        if self.failure is not None:
            raise ApiError(503, f"model loading failed: {self.failure}", "Unhealthy")
        if not self.ready:
            raise ApiError(503, f"warming up: {len(self.loaded)}/{len(self.models)} models ready", "Unhealthy")

    def pick(self, name: str | None) -> ServedModel:
        if name is None:
            if len(self.models) == 1:
                return next(iter(self.models.values()))
            raise ApiError(422, f"several models are served ({', '.join(self.models)}): set \"model\" in the body "
                                "or POST to /models/{name}/predict", "Validation")
        model = self.models.get(name)
        if model is None:
            raise ApiError(404, f"unknown model {name!r}; served models: {', '.join(self.models)}", "NotFound")
        return model


async def _infer(state: ServerState, model: ServedModel, inputs: str | list[str], truncate: bool | None,
                 task: Task) -> Any:
    state.require_ready()
    if truncate is None:
        truncate = state.config.limits.truncate
    single = isinstance(inputs, str)
    texts = [inputs] if single else list(inputs)
    limits = state.config.limits
    if not texts:
        raise ApiError(400, "inputs is an empty list: send at least one text", "Empty")
    if len(texts) > limits.max_items:
        raise ApiError(413, f"{len(texts)} inputs in one request, over the limit of {limits.max_items} "
                            "(--max-items); split the request", "PayloadTooLarge")
    if sum(len(t) for t in texts) > _COUNT_INLINE_CHARS:
        texts, lengths = await asyncio.to_thread(model.prepare, texts, truncate)
    else:
        texts, lengths = model.prepare(texts, truncate)
    try:
        results = await asyncio.wait_for(model.batcher.submit(texts, lengths, task), limits.timeout_s)
    except QueueFullError as exc:
        raise ApiError(429, str(exc), "Overloaded", headers={"Retry-After": "1"}) from exc
    except BatcherClosedError as exc:
        raise ApiError(503, str(exc), "Unhealthy") from exc
    except asyncio.TimeoutError as exc:
        raise ApiError(504, f"no result within {limits.timeout_s} s (--timeout-s); the server is overloaded",
                       "Timeout") from exc
    return results[0] if single else results


def _predict_task(model: ServedModel, body: PredictRequest) -> Task:
    if model.is_tagger:
        return Task("tag", aggregation=body.aggregation)
    return Task("classify", raw_scores=body.raw_scores)


def _tag_task(model: ServedModel, body: TagRequest) -> Task:
    if not model.is_tagger:
        raise ApiError(422, f"model {model.name!r} is a {model.manifest.task} model; use /predict", "Validation")
    return Task("tag", aggregation=body.aggregation)


def create_app(config: ServerConfig, on_fatal: Callable[[], None] | None = None) -> FastAPI:
    """Build the app. Models load in the background once the server runs; /health answers 503 until then.

    ``on_fatal`` is called when loading fails (the CLI stops the server with it).
    """
    metrics = ServerMetrics()
    state = ServerState(config, metrics)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        loading = asyncio.create_task(_load(state, on_fatal))
        yield
        state.stopping = True
        await asyncio.gather(loading, return_exceptions=True)
        # In-flight requests are done (uvicorn waits for them first); the batchers finish anything still queued.
        await asyncio.to_thread(state.close_all)

    app = FastAPI(
        title="kolite",
        summary="Korean text classification and NER on ONNX Runtime, without torch.",
        description="`/predict` follows text-embeddings-inference's API; errors are `{error, error_type}`.",
        version=_version(),
        lifespan=lifespan,
        responses=_ERRORS,
    )
    app.state.kolite = state
    install_error_handlers(app)
    app.add_middleware(RequestMiddleware, metrics=metrics, max_body_bytes=config.limits.max_body_bytes)

    @app.post("/predict", response_model=_PREDICT_OUT, tags=["inference"])
    async def predict(body: PredictRequest) -> KoliteJSONResponse:
        """Classify one text or a list (TEI-compatible); on an NER model, tag it (like /tag)."""
        model = state.pick(body.model)
        return KoliteJSONResponse(await _infer(state, model, body.inputs, body.truncate, _predict_task(model, body)))

    @app.post("/models/{name}/predict", response_model=_PREDICT_OUT, tags=["inference"])
    async def predict_model(name: str, body: PredictRequest) -> KoliteJSONResponse:
        """Like /predict for the model in the path (the body's `model` field is ignored)."""
        model = state.pick(name)
        return KoliteJSONResponse(await _infer(state, model, body.inputs, body.truncate, _predict_task(model, body)))

    @app.post("/tag", response_model=_TAG_OUT, tags=["inference"])
    async def tag(body: TagRequest) -> KoliteJSONResponse:
        """Entities with character offsets into the original text (token-classification models)."""
        model = state.pick(body.model)
        return KoliteJSONResponse(await _infer(state, model, body.inputs, body.truncate, _tag_task(model, body)))

    @app.post("/models/{name}/tag", response_model=_TAG_OUT, tags=["inference"])
    async def tag_model(name: str, body: TagRequest) -> KoliteJSONResponse:
        """Like /tag for the model in the path."""
        model = state.pick(name)
        return KoliteJSONResponse(await _infer(state, model, body.inputs, body.truncate, _tag_task(model, body)))

    @app.get("/models", response_model=ModelsOut, tags=["service"])
    async def models() -> dict[str, Any]:
        """The served models: name, task, labels, variant, device."""
        return {"models": [model.info() for model in state.models.values()]}

    @app.get("/health", response_model=HealthOut, tags=["service"])
    async def health() -> dict[str, Any]:
        """200 once every model is loaded and warmed up; 503 before, after a loading failure or while stopping."""
        state.require_ready()
        return {"status": "ok", "models": list(state.models)}

    @app.get("/metrics", tags=["service"], response_class=Response)
    async def prometheus() -> Response:
        """Prometheus text format."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


async def _load(state: ServerState, on_fatal: Callable[[], None] | None) -> None:
    try:
        await asyncio.to_thread(state.load_all)
    except (KoliteError, OSError, RuntimeError, ValueError) as exc:
        state.failure = f"{type(exc).__name__}: {exc}"
        logger.error("kolite serve: %s", state.failure)
        if on_fatal is not None:
            on_fatal()


def _version() -> str:
    from kolite import __version__

    return __version__
