"""The ASGI middleware every HTTP request passes: request id, authentication, body admission, metrics.

Pure ASGI (no per-request task like Starlette's BaseHTTPMiddleware). Per request:

1. request id: ``X-Request-ID`` when the client sends a usable one, else a fresh one; echoed in the response
   header and in error bodies, and set in a context variable that log lines read (``RequestIdFilter``).
2. ``--api-key``: every route but the open ones needs ``Authorization: Bearer <key>`` (401 otherwise).
3. body admission, when the handler first reads the body (so the error is counted under the route it was sent
   to): a declared Content-Length over ``--max-body-bytes`` is refused unread (413), a body not sent as JSON gets
   415, a streamed body is cut at the cap (413), and a body that stops arriving gets 408 after
   ``--body-timeout-s``; each of these closes the connection.
4. metrics: requests, latency and errors by route (the route's template, never the raw path).

Plain predict and tag bodies are answered here, below all four, by ``fast_path`` (``kolite.server.fast_predict``); every
other request goes on to the FastAPI app.
"""

from __future__ import annotations

import asyncio
import contextvars
import hmac
import logging
import sys
import time
from typing import Any

from starlette.routing import Match

from kolite.errors import (
    KoliteError,
    PayloadTooLargeError,
    RequestTimeoutError,
    UnauthorizedError,
    UnsupportedMediaTypeError,
)
from kolite.server.config import AuthConfig, Limits
from kolite.server.errors import BodyReadError, is_json, new_request_id, render_error
from kolite.server.metrics import ServerMetrics
from kolite.server.tracing import Tracing

__all__ = ["REQUEST_ID", "RequestIdFilter", "RequestMiddleware", "send_error"]

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("kolite_request_id", default="-")
_MAX_REQUEST_ID = 200


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id`` (``-`` outside a request) for the ``%(request_id)s`` of the log format."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


def _request_id(scope: dict[str, Any]) -> str:
    for key, value in scope["headers"]:
        if key == b"x-request-id":
            # Visible ASCII only: it is echoed in a header and written to logs (no CR/LF, no control characters).
            if 0 < len(value) <= _MAX_REQUEST_ID and all(0x21 <= byte <= 0x7E for byte in value):
                return value.decode("ascii")
            break
    return new_request_id()


def _header(scope: dict[str, Any], name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


async def _receive_by(receive: Any, deadline: float) -> dict[str, Any]:
    """``receive()``, or TimeoutError once the event loop's clock passes ``deadline``."""
    if sys.version_info >= (3, 11):
        async with asyncio.timeout_at(deadline):
            return await receive()
    return await asyncio.wait_for(receive(), max(0.0, deadline - asyncio.get_running_loop().time()))


class RequestMiddleware:
    """See the module docstring. ``router`` finds the route of a request the middleware answers itself."""

    def __init__(self, app: Any, metrics: ServerMetrics, limits: Limits, auth: AuthConfig, router: Any,
                 draining: Any, tracing: Tracing, fast_path: Any = None) -> None:
        self.app = app
        self.fast_path = fast_path  # (scope, receive, send, app) -> None: answers plain bodies itself
        self.metrics = metrics
        self.tracing = tracing
        self.limits = limits
        self.router = router
        self.draining = draining  # () -> bool: while draining, responses ask clients to reconnect elsewhere
        self.api_key = auth.api_key.encode() if auth.api_key else None
        self.open_routes = frozenset(auth.open_routes)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = scope["kolite.request_id"] = _request_id(scope)
        token = REQUEST_ID.set(request_id)
        if self.tracing.enabled:
            self.tracing.annotate(**{"kolite.request_id": request_id})
        status = 500
        id_header = (b"x-request-id", request_id.encode("ascii"))

        async def send_tagged(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", ()), id_header]
                if self.draining() and not any(key.lower() == b"connection" for key, _ in headers):
                    headers.append((b"connection", b"close"))
                message = {**message, "headers": headers}
            await send(message)

        try:
            refusal = self._unauthorized(scope)
            if refusal is not None:
                scope["kolite.error_type"] = refusal.error_type
                await send_error(send_tagged, refusal, request_id)
            elif self.fast_path is not None:
                await self.fast_path(scope, self._admitted(scope, receive), send_tagged, self.app)
            else:
                await self.app(scope, self._admitted(scope, receive), send_tagged)
        finally:
            REQUEST_ID.reset(token)
            route = self._route(scope)
            self.metrics.requests.labels(route, scope["method"], str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)
            if status >= 400:
                self.metrics.errors.labels(route, scope.get("kolite.error_type", str(status))).inc()

    def _unauthorized(self, scope: dict[str, Any]) -> UnauthorizedError | None:
        if self.api_key is None or scope["path"] in self.open_routes:
            return None
        given = _header(scope, b"authorization") or b""
        scheme, _, key = given.partition(b" ")
        # compare_digest: the time taken does not tell how much of a guessed key was right.
        if scheme.lower() == b"bearer" and hmac.compare_digest(key.strip(), self.api_key):
            return None
        why = "missing" if not given else "wrong"
        return UnauthorizedError(f"{why} API key: send `Authorization: Bearer <key>` (--api-key)")

    def _admitted(self, scope: dict[str, Any], receive: Any) -> Any:
        limits = self.limits
        declared = _header(scope, b"content-length")
        content_type = _header(scope, b"content-type")
        seen = -1  # bytes of the body read so far; -1: the handler has not read yet
        deadline = asyncio.get_running_loop().time() + limits.body_timeout_s
        more = True

        async def receive_admitted() -> dict[str, Any]:
            nonlocal seen, more
            if seen < 0:  # the handler starts reading: check what the headers announce first
                if declared is not None and declared.isdigit() and int(declared) > limits.max_body_bytes:
                    raise _body_too_large(limits)
                if content_type is None or not is_json(content_type.decode("latin-1")):
                    raise BodyReadError(UnsupportedMediaTypeError(
                        "send the body as JSON with `Content-Type: application/json`"))
                seen = 0
            if not more:
                return await receive()
            try:
                message = await _receive_by(receive, deadline)
            except (TimeoutError, asyncio.TimeoutError) as exc:  # distinct classes before Python 3.11
                raise BodyReadError(RequestTimeoutError(
                    f"request body not received within {limits.body_timeout_s} s (--body-timeout-s)")) from exc
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                more = message.get("more_body", False)
                scope["kolite.body_bytes"] = seen
                if seen > limits.max_body_bytes:
                    raise _body_too_large(limits)
            return message

        return receive_admitted

    def _route(self, scope: dict[str, Any]) -> str:
        """The route's template (``/models/{name}/predict``); looked up when the middleware answered itself."""
        route = scope.get("route")
        if route is not None:
            return route.path
        for candidate in self.router.routes:
            match, _ = candidate.matches(scope)
            if match is not Match.NONE:
                return candidate.path
        return "unmatched"


def _body_too_large(limits: Limits) -> BodyReadError:
    error = PayloadTooLargeError(f"request body exceeds the {limits.max_body_bytes} byte limit (--max-body-bytes)")
    error.close_connection = True  # the rest of an unread body must not be parsed as the next request
    return BodyReadError(error)


async def send_error(send: Any, error: KoliteError, request_id: str) -> None:
    """The error's response (``render_error``), sent on ``send``."""
    rendered = render_error(error, request_id)
    headers = [(key.encode("latin-1"), value.encode("latin-1")) for key, value in rendered.headers]
    await send({"type": "http.response.start", "status": rendered.status, "headers": headers})
    await send({"type": "http.response.body", "body": rendered.body})
