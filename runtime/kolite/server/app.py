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
from kolite.server.errors import install_error_handlers, openapi_responses
from kolite.server.fast_predict import FastPredict, PlainRoute
from kolite.server.metrics import ServerMetrics
from kolite.server.middleware import RequestMiddleware
from kolite.server.models import ServedModel
from kolite.server.options import predict_options, tag_options
from kolite.server.schemas import (
    EntityOut,
    HealthOut,
    ModelsOut,
    PipelineEntityOut,
    PredictionOut,
    PredictRequest,
    TagRequest,
)
from kolite.server.state import ServerState
from kolite.server.tracing import Tracing

__all__ = ["KoliteJSONResponse", "create_app"]

logger = logging.getLogger("kolite.server")

_PREDICT_OUT = (list[PredictionOut] | list[list[PredictionOut]] | list[EntityOut] | list[list[EntityOut]]
                | list[PipelineEntityOut] | list[list[PipelineEntityOut]])
_PREDICT_ROUTES = (  # path, summary, description (OpenAPI)
    ("/predict", "Predict", "Classify one text or a list (TEI-compatible); on an NER model, tag it (like /tag)."),
    ("/", "Root", "/predict at the root, as TEI routes it: where `InferenceClient(base_url=...)` posts."),
    ("/invocations", "Invocations", "/predict under SageMaker's route, as TEI serves it."),
    ("/models/{name}/predict", "Predict Model", "Like /predict for the model in the path (the body's `model` field "
                                                "is ignored)."),
)
_TAG_OUT = list[EntityOut] | list[list[EntityOut]] | list[PipelineEntityOut] | list[list[PipelineEntityOut]]


class KoliteJSONResponse(JSONResponse):
    """UTF-8 JSON; a lone surrogate taken from the request (valid JSON ``"\\ud800"``) is echoed back escaped
    instead of failing to encode."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


def create_app(config: ServerConfig, on_fatal: Callable[[], None] | None = None,
               tracer_provider: Any | None = None) -> FastAPI:
    """Build the app. Models load in the background once the server runs; /health answers 503 until then.

    ``on_fatal`` is called when loading fails under ``exit_on_error`` (the CLI stops the server with it).
    ``tracer_provider`` (an OpenTelemetry SDK ``TracerProvider``) turns tracing on.
    """
    metrics = ServerMetrics()
    tracing = Tracing(tracer_provider)
    state = ServerState(config, metrics, tracing)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        loading = asyncio.create_task(_load(state, on_fatal))
        yield
        state.stopping = True
        await asyncio.gather(loading, return_exceptions=True)
        # In-flight requests are done (uvicorn waits for them first); the batchers finish anything still queued.
        await asyncio.to_thread(state.close_all)
        # Here, not after uvicorn returns: it re-raises SIGTERM at its very end, which ends the process.
        await asyncio.to_thread(tracing.shutdown)

    app = FastAPI(
        title="kolite",
        summary="Korean text classification and NER on ONNX Runtime, without torch.",
        description="`/predict` follows text-embeddings-inference's API, `POST /` and `/invocations` too; a body "
                    "with `parameters` is a Hugging Face Inference API request (`InferenceClient`). Errors are "
                    "`{error, error_type, request_id}`.",
        version=_version(),
        lifespan=lifespan,
        responses=openapi_responses(),
        telemetry=tracing.fastapi_telemetry(),
    )
    app.state.kolite = state
    install_error_handlers(app)

    async def answer_predict(name: str | None, body: PredictRequest) -> KoliteJSONResponse:
        hf_shape = body.parameters is not None
        result = await state.infer(state.pick(name), body.inputs, body.truncate, predict_options(body), hf_shape)
        return KoliteJSONResponse(result)

    async def run_tag(model: ServedModel, body: TagRequest) -> KoliteJSONResponse:
        model.require_tagger()
        hf_shape = body.parameters is not None
        return KoliteJSONResponse(await state.infer(model, body.inputs, body.truncate, tag_options(body), hf_shape))

    async def predict(body: PredictRequest) -> KoliteJSONResponse:
        return await answer_predict(body.model, body)

    async def predict_model(name: str, body: PredictRequest) -> KoliteJSONResponse:
        return await answer_predict(name, body)

    # One handler for the four /predict routes (TEI's, the root, SageMaker's and the per-model one).
    for path, summary, description in _PREDICT_ROUTES:
        endpoint = predict_model if "{name}" in path else predict
        app.add_api_route(path, endpoint, methods=["POST"], summary=summary, description=description,
                          response_model=_PREDICT_OUT, tags=["inference"])

    @app.post("/tag", response_model=_TAG_OUT, tags=["inference"])
    async def tag(body: TagRequest) -> KoliteJSONResponse:
        """Entities with character offsets into the original text (token-classification models)."""
        return await run_tag(state.pick(body.model), body)

    @app.post("/models/{name}/tag", response_model=_TAG_OUT, tags=["inference"])
    async def tag_model(name: str, body: TagRequest) -> KoliteJSONResponse:
        """Like /tag for the model in the path."""
        return await run_tag(state.pick(name), body)

    @app.get("/models", response_model=ModelsOut, tags=["service"])
    async def models() -> dict[str, Any]:
        """The served models: name, task, labels, variant, device."""
        return {"models": [model.info() for model in state.models.values()]}

    @app.get("/health", response_model=HealthOut, tags=["service"])
    async def health() -> dict[str, Any]:
        """200 once every model is loaded and warmed up; 503 before, after a loading failure, and from SIGTERM on
        (while the server drains and shuts down)."""
        state.require_ready()
        return {"status": "ok", "models": list(state.models)}

    @app.get("/metrics", tags=["service"], response_class=Response)
    async def prometheus() -> Response:
        """Prometheus text format."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    # Plain bodies skip the FastAPI stack (kolite.server.fast_predict); added after the routes it serves. Each route
    # gets the options its handler gives a body without option fields.
    plain_options = predict_options(PredictRequest(inputs="")), tag_options(TagRequest(inputs=""))
    fast_path = FastPredict(state, app.router.routes, {
        **{path: PlainRoute(plain_options[0]) for path, _, _ in _PREDICT_ROUTES},
        "/tag": PlainRoute(plain_options[1], tagger_only=True),
        "/models/{name}/tag": PlainRoute(plain_options[1], tagger_only=True),
    })
    app.add_middleware(RequestMiddleware, metrics=metrics, limits=config.limits, auth=config.auth,
                       router=app.router, draining=lambda: state.draining, tracing=tracing, fast_path=fast_path)
    return app


async def _load(state: ServerState, on_fatal: Callable[[], None] | None) -> None:
    failures = await asyncio.to_thread(state.load_all)
    if failures and on_fatal is not None and state.config.exit_on_error:
        on_fatal()


def _version() -> str:
    from kolite import __version__

    return __version__
