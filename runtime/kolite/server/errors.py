"""Every HTTP error body, rendered in one place, in text-embeddings-inference's shape plus the request id:
``{"error": "...", "error_type": "...", "request_id": "..."}``.

The status and type come from the exception's class (``kolite.errors``: the one registry); raise sites only raise.
An exception the server did not expect is a ``BackendError`` (500, logged with its traceback) — never an HTML page
or a bare string. Three layers answer errors and all use ``render_error``: the FastAPI handlers installed here, the
request middleware (401, body admission) and the connection guard below uvicorn (408 headers, 431, 503 cap).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from kolite.errors import (
    BackendError,
    InvalidInputError,
    KoliteError,
    LoadError,
    MalformedRequestError,
    MethodNotAllowedError,
    NotFoundError,
    registry,
)

__all__ = ["BodyReadError", "RenderedError", "error_for_status", "install_error_handlers", "is_json",
           "log_server_fault", "new_request_id", "openapi_responses", "render_error"]

logger = logging.getLogger("kolite.server")

# Generated request ids: 32 hex digits, a random per-process half and a counter (unique across replicas without a
# random draw per request).
_ID_PREFIX = os.urandom(8).hex()
_ID_COUNTER = itertools.count(1)


def new_request_id() -> str:
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


class RenderedError:
    """An error as it goes on the wire: status, headers (lower-case names; ``x-request-id`` is added by the
    request middleware to every response) and the JSON body."""

    __slots__ = ("body", "error_type", "headers", "request_id", "status")

    def __init__(self, status: int, error_type: str, headers: list[tuple[str, str]], body: bytes,
                 request_id: str) -> None:
        self.status = status
        self.error_type = error_type
        self.headers = headers
        self.body = body
        self.request_id = request_id

    def raw_http(self) -> bytes:
        """The whole HTTP/1.1 response, for the connection guard below ASGI (no middleware adds the id there)."""
        headers = [*self.headers, ("x-request-id", self.request_id)]
        head = f"HTTP/1.1 {self.status} {HTTPStatus(self.status).phrase}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers)
        return (head + "\r\n").encode("latin-1") + self.body


def render_error(error: KoliteError, request_id: str) -> RenderedError:
    """THE renderer: status and type from the error's class, headers from the class and the instance."""
    body = json.dumps({"error": str(error), "error_type": error.error_type, "request_id": request_id},
                      ensure_ascii=True).encode("ascii")
    headers = [("content-type", "application/json"), ("content-length", str(len(body)))]
    headers += [(name.lower(), value) for name, value in error.http_headers.items()]
    if error.close_connection:
        headers.append(("connection", "close"))
    return RenderedError(error.http_status, error.error_type, headers, body, request_id)


class BodyReadError(HTTPException):
    """Carries a kolite error raised while FastAPI reads the body: FastAPI re-raises an HTTPException from there
    unchanged, but turns any other exception into its own 400."""

    def __init__(self, error: KoliteError) -> None:
        super().__init__(status_code=error.http_status, detail=str(error))
        self.error = error


# What the statuses Starlette and FastAPI choose themselves mean (no route, wrong method, unparsable body).
_FRAMEWORK_ERRORS = (NotFoundError, MethodNotAllowedError, MalformedRequestError)


def error_for_status(status: int, message: str) -> KoliteError:
    """The registry's class for a status the framework chose itself; 500 ``Backend`` for one no class has."""
    for cls in (*_FRAMEWORK_ERRORS, *registry()):
        if cls.http_status == status and cls is not KoliteError:
            return cls(message)
    return BackendError(message)


def openapi_responses() -> dict[int | str, dict[str, Any]]:
    """The error responses every route documents in OpenAPI, one entry per status, from the registry (the errors
    a request can meet: not the base class, not the load-time ones)."""
    from kolite.server.schemas import ErrorOut

    described: dict[int, list[str]] = {}
    for cls in registry():
        if cls is not KoliteError and not issubclass(cls, LoadError):
            when = " ".join((cls.__doc__ or "").split()).replace("``", "`")
            described.setdefault(cls.http_status, []).append(f"`{cls.error_type}`: {when}")
    return {status: {"model": ErrorOut, "description": "; ".join(lines)} for status, lines in described.items()}


def is_json(content_type: str) -> bool:
    """``application/json`` or ``application/<anything>+json``, parameters ignored."""
    kind = content_type.split(";")[0].strip().lower()
    return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))


def _validation_error(request: Request, errors: list[dict[str, Any]]) -> KoliteError:
    """Pydantic's error list → one readable error. No JSON at all is 400, JSON of the wrong shape 422."""
    if request.scope.get("kolite.body_bytes") == 0:
        # An empty body is no JSON at all, like a malformed one (FastAPI reports it as a missing field).
        return MalformedRequestError('the request body is empty: send a JSON object such as {"inputs": "text"}')
    syntax = next((e for e in errors if e.get("type") == "json_invalid"), None)
    if syntax is not None:
        detail = syntax.get("ctx", {}).get("error", "")
        return MalformedRequestError(f"request body is not valid JSON: {detail}".rstrip(": "))
    if any(tuple(e.get("loc", ())) == ("body",) and e.get("type") == "model_attributes_type" for e in errors):
        return InvalidInputError('body must be a JSON object such as {"inputs": "text"}')
    parts = []
    for error in errors[:5]:
        location = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        parts.append(f"{location}: {error.get('msg', 'invalid')}")
    if len(errors) > 5:
        parts.append(f"... and {len(errors) - 5} more")
    return InvalidInputError("; ".join(parts))


def _response(request: Request, error: KoliteError, outside_middleware: bool = False) -> Response:
    request_id = request.scope.get("kolite.request_id") or new_request_id()
    rendered = render_error(error, request_id)
    request.scope["kolite.error_type"] = rendered.error_type  # read by the metrics middleware
    headers = rendered.headers
    if outside_middleware:  # the request middleware, which adds the id header, is not on this response's way
        headers = [*headers, ("x-request-id", request_id)]
    response = Response(rendered.body, status_code=rendered.status)
    response.raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    return response


def log_server_fault(method: str, path: str, error: KoliteError) -> None:
    """A 500 is a fault of the server: logged with its traceback (a client's error is only answered)."""
    if error.http_status == HTTPStatus.INTERNAL_SERVER_ERROR:
        logger.error("error on %s %s", method, path, exc_info=error)


def install_error_handlers(app: FastAPI) -> None:
    """Map every exception FastAPI/Starlette can raise to a registry class, rendered by ``render_error``."""

    @app.exception_handler(KoliteError)
    async def _kolite_error(request: Request, exc: KoliteError) -> Response:
        log_server_fault(request.method, request.url.path, exc)
        return _response(request, exc)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Response:
        if isinstance(exc, BodyReadError):
            return _response(request, exc.error)
        message = str(exc.detail)
        if isinstance(error := error_for_status(exc.status_code, message), NotFoundError) and message == "Not Found":
            error = NotFoundError("no such route; see /docs for the API")
        return _response(request, error)

    @app.exception_handler(RequestValidationError)
    async def _request_validation(request: Request, exc: RequestValidationError) -> Response:
        return _response(request, _validation_error(request, list(exc.errors())))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        logger.exception("unexpected error on %s %s", request.method, request.url.path)
        # Starlette runs this handler in its outermost middleware, outside kolite's request middleware.
        return _response(request, BackendError(f"internal error: {type(exc).__name__}: {exc}"),
                         outside_middleware=True)
