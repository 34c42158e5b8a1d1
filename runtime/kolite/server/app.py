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

from kolite.server.config import ServerConfig
from kolite.server.errors import ERROR_TABLE, ApiError, install_error_handlers
from kolite.server.metrics import RequestMiddleware, ServerMetrics
from kolite.server.models import ServedModel
from kolite.server.schemas import (
    EntityOut,
    ErrorOut,
    HealthOut,
    ModelsOut,
    PredictionOut,
    PredictRequest,
    TagRequest,
)
from kolite.server.state import ServerState

__all__ = ["KoliteJSONResponse", "create_app"]

logger = logging.getLogger("kolite.server")

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": f"`{kind}`: {when}"} for status, (kind, when) in ERROR_TABLE.items()
}
_PREDICT_OUT = list[PredictionOut] | list[list[PredictionOut]] | list[EntityOut] | list[list[EntityOut]]
_TAG_OUT = list[EntityOut] | list[list[EntityOut]]


class KoliteJSONResponse(JSONResponse):
    """UTF-8 JSON; a lone surrogate taken from the request (valid JSON ``"\\ud800"``) is echoed back escaped
    instead of failing to encode."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


def _predict_options(model: ServedModel, body: PredictRequest) -> dict[str, Any]:
    """TEI's /predict: every label, highest first (raw logits with raw_scores); NER models tag instead."""
    if model.is_tagger:
        return {"aggregation": body.aggregation}
    return {"top_k": None, "function_to_apply": "none" if body.raw_scores else "default"}


def _tag_options(model: ServedModel, body: TagRequest) -> dict[str, Any]:
    if not model.is_tagger:
        raise ApiError(422, f"model {model.name!r} is a {model.manifest.task} model; use /predict", "Validation")
    return {"aggregation": body.aggregation}


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
        return KoliteJSONResponse(await state.infer(model, body.inputs, body.truncate, **_predict_options(model, body)))

    @app.post("/models/{name}/predict", response_model=_PREDICT_OUT, tags=["inference"])
    async def predict_model(name: str, body: PredictRequest) -> KoliteJSONResponse:
        """Like /predict for the model in the path (the body's `model` field is ignored)."""
        model = state.pick(name)
        return KoliteJSONResponse(await state.infer(model, body.inputs, body.truncate, **_predict_options(model, body)))

    @app.post("/tag", response_model=_TAG_OUT, tags=["inference"])
    async def tag(body: TagRequest) -> KoliteJSONResponse:
        """Entities with character offsets into the original text (token-classification models)."""
        model = state.pick(body.model)
        return KoliteJSONResponse(await state.infer(model, body.inputs, body.truncate, **_tag_options(model, body)))

    @app.post("/models/{name}/tag", response_model=_TAG_OUT, tags=["inference"])
    async def tag_model(name: str, body: TagRequest) -> KoliteJSONResponse:
        """Like /tag for the model in the path."""
        model = state.pick(name)
        return KoliteJSONResponse(await state.infer(model, body.inputs, body.truncate, **_tag_options(model, body)))

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
    failures = await asyncio.to_thread(state.load_all)
    if failures and on_fatal is not None:
        on_fatal()


def _version() -> str:
    from kolite import __version__

    return __version__
