"""HTTP errors in text-embeddings-inference's shape: ``{"error": "...", "error_type": "..."}``.

Every error a client can cause is an ``ApiError`` with a 4xx status; anything else is a bug and answers 500
``Backend`` (logged with its traceback) — never an HTML page or a bare string.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

__all__ = ["ERROR_TABLE", "ApiError", "error_body", "install_error_handlers", "is_json"]

logger = logging.getLogger("kolite.server")

# status → (error_type, when). Rendered into the README and the OpenAPI descriptions.
ERROR_TABLE: dict[int, tuple[str, str]] = {
    400: ("Validation", "body is empty or not valid JSON (`Empty`: `inputs` is an empty list)"),
    401: ("Unauthorized", "--api-key is set and the request has no `Authorization: Bearer <key>` or a wrong key"),
    404: ("NotFound", "unknown model name or route"),
    405: ("MethodNotAllowed", "wrong HTTP method for the route"),
    408: ("RequestTimeout", "request headers or body not received within --header-timeout-s / --body-timeout-s"),
    413: ("PayloadTooLarge", "body over --max-body-bytes, more than --max-items texts, or a text over the limit "
                             "with truncate=false"),
    415: ("Validation", "body sent without `Content-Type: application/json`"),
    422: ("Validation", "well-formed JSON with wrong fields or types (e.g. inputs=42, raw_scores=\"yes\")"),
    429: ("Overloaded", "the model's queue already holds --max-queue requests or --max-queue-tokens tokens; retry "
                        "later"),
    503: ("Unhealthy", "models are still loading/warming up, or the server is shutting down (`Overloaded`: over "
                       "--max-connections open connections)"),
    504: ("Timeout", "the request waited longer than --timeout-s for its result"),
}


class ApiError(HTTPException):
    """A client-visible error. Subclassing HTTPException lets it pass through FastAPI's body parsing unchanged."""

    def __init__(self, status_code: int, message: str, error_type: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status_code=status_code, detail=message, headers=headers)
        self.error_type = error_type or ERROR_TABLE.get(status_code, ("Validation", ""))[0]


def error_body(message: str, error_type: str, request_id: str | None = None) -> dict[str, str]:
    body = {"error": message, "error_type": error_type}
    if request_id is not None:
        body["request_id"] = request_id
    return body


def _error_response(
    request: Request, status: int, message: str, error_type: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    request.scope["kolite.error_type"] = error_type  # read by the metrics middleware
    body = error_body(message, error_type, request.scope.get("kolite.request_id"))
    return JSONResponse(body, status_code=status, headers=headers)


def _describe_validation(errors: list[dict[str, Any]]) -> tuple[int, str]:
    """Pydantic's error list → (status, one readable sentence). Bad JSON syntax is 400, wrong shape 422."""
    if any(e.get("type") == "json_invalid" for e in errors):
        detail = next(e for e in errors if e.get("type") == "json_invalid").get("ctx", {}).get("error", "")
        return 400, f"request body is not valid JSON: {detail}".rstrip(": ")
    parts = []
    for error in errors[:5]:
        location = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        parts.append(f"{location}: {error.get('msg', 'invalid')}")
    if len(errors) > 5:
        parts.append(f"... and {len(errors) - 5} more")
    return 422, "; ".join(parts)


def is_json(content_type: str) -> bool:
    """``application/json`` or ``application/<anything>+json``, parameters ignored."""
    kind = content_type.split(";")[0].strip().lower()
    return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))


def install_error_handlers(app: FastAPI) -> None:
    """Map every exception FastAPI/Starlette can raise to the TEI error shape."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error_response(request, exc.status_code, str(exc.detail), exc.error_type, exc.headers)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
        error_type = ERROR_TABLE.get(exc.status_code, ("Validation", ""))[0]
        message = str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = "no such route; see /docs for the API"
        return _error_response(request, exc.status_code, message, error_type, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        if request.scope.get("kolite.body_bytes") == 0:
            # An empty body is no JSON at all, like a malformed one (FastAPI reports it as a missing field).
            return _error_response(request, 400, 'the request body is empty: send a JSON object such as '
                                                 '{"inputs": "text"}', "Validation")
        if any(tuple(e.get("loc", ())) == ("body",) and e.get("type") == "model_attributes_type" for e in errors):
            return _error_response(request, 422, 'body must be a JSON object such as {"inputs": "text"}',
                                   "Validation")
        status, message = _describe_validation(errors)
        return _error_response(request, status, message, "Validation")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error on %s %s", request.method, request.url.path)
        return _error_response(request, 500, f"internal error: {type(exc).__name__}: {exc}", "Backend")
