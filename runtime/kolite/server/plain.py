"""The plain /predict request on a short path: ``{"inputs": "text"}`` (or a list of texts, with at most ``model``
and ``truncate`` beside) is answered without building a pydantic request model or running FastAPI's dependency
machinery — about half of the server's CPU per one-text request went there (docs/guides/benchmarks.md).

Anything else — another field, a wrong type, invalid JSON, an empty body, a body that fails to arrive — goes the
full way through FastAPI and ``schemas.PredictRequest``, so every error keeps its exact status and message. Both
ways end in the same ``ServerState.infer`` with the same options, so the answers are the same.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

if TYPE_CHECKING:
    from kolite.server.state import ServerState

__all__ = ["plain_body", "plain_predict_route"]

_PLAIN_FIELDS = frozenset({"inputs", "model", "truncate"})
# What predict_options() gives a body with none of the option fields (tests/test_server_api.py checks they agree).
PLAIN_OPTIONS: dict[str, Any] = {"top_k": None}


def plain_body(raw: bytes, content_type: str | None) -> dict[str, Any] | None:
    """The parsed body if it is a plain predict request, each field of its exact type; otherwise None."""
    if not raw or content_type is None or not content_type.lower().startswith("application/json"):
        return None
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    if type(body) is not dict or not body.keys() <= _PLAIN_FIELDS:
        return None
    inputs = body.get("inputs")
    if type(inputs) is list:
        if not all(type(text) is str for text in inputs):
            return None
    elif type(inputs) is not str:
        return None
    model, truncate = body.get("model"), body.get("truncate")
    if (model is not None and type(model) is not str) or (truncate is not None and type(truncate) is not bool):
        return None
    return body


def plain_predict_route(state: ServerState) -> type[APIRoute]:
    """An APIRoute class whose handler answers plain bodies itself and hands every other request to FastAPI's."""
    from kolite.server.app import KoliteJSONResponse

    class PlainPredictRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            full = super().get_route_handler()

            async def handler(request: Request) -> Response:
                try:
                    raw = await request.body()  # kept on the request: FastAPI's handler reads it from there
                except HTTPException:  # the middleware's 408/413/415, raised as FastAPI would pass them on
                    raise
                except Exception:
                    return await full(request)  # FastAPI answers a body it cannot read in its own way
                body = plain_body(raw, request.headers.get("content-type"))
                if body is None:
                    return await full(request)
                model = state.pick(request.path_params.get("name", body.get("model")))
                result = await state.infer(model, body["inputs"], body.get("truncate"), dict(PLAIN_OPTIONS))
                return KoliteJSONResponse(result)

            return handler

    return PlainPredictRoute
