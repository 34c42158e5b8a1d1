"""Connection guards below the ASGI app: a deadline for request headers and a cap on open connections.

uvicorn has no read timeout for a request's headers: a client that connects and sends nothing, or half a header,
holds its connection (and a file descriptor) for as long as it likes (slowloris); ``limit_concurrency`` only
answers a request once its headers have arrived. The guard is a subclass of uvicorn's own HTTP protocol (h11 or
httptools, whichever uvicorn picks), so parsing, keep-alive and pipelining stay uvicorn's:

- a connection must deliver a request's headers within ``header_timeout_s`` of opening, or of its previous
  response; otherwise it gets a 408 and is closed. Once the headers are in, the ASGI layer bounds the
  body (``RequestMiddleware``: 408 after ``body_timeout_s``), and an idle keep-alive connection is closed by
  uvicorn's ``timeout_keep_alive``.
- beyond ``max_connections`` open connections, a new one is answered 503 at once and closed, so a flood of idle
  connections cannot exhaust the process's file descriptors before the deadline frees them.
"""

from __future__ import annotations

import asyncio
from typing import Any

from kolite.errors import KoliteError, RequestTimeoutError, TooManyConnectionsError
from kolite.server.config import Limits
from kolite.server.errors import new_request_id, render_error
from kolite.server.metrics import ServerMetrics

__all__ = ["guarded_protocol"]

_LINGER_S = 1.0  # a refused connection is closed after this, so the client reads its 503 before the close


def _raw_response(error: KoliteError) -> bytes:
    """The common error body, with a fresh request id: no request was parsed, so the client sent none."""
    return render_error(error, new_request_id()).raw_http()


def guarded_protocol(base: type[asyncio.Protocol], limits: Limits, metrics: ServerMetrics) -> type[asyncio.Protocol]:
    """``base`` (uvicorn's H11Protocol or HttpToolsProtocol) with the header deadline and the connection cap."""
    header_timeout = limits.header_timeout_s
    max_connections = limits.max_connections
    timed_out = metrics.connection_errors.labels("header_timeout")
    refused = metrics.connection_errors.labels("max_connections")
    open_connections = metrics.open_connections
    too_slow = f"request headers not received within {header_timeout} s (--header-timeout-s)"
    too_many = f"too many open connections (--max-connections {max_connections}); retry later"

    class GuardedProtocol(base):  # type: ignore[valid-type, misc]
        _deadline: asyncio.TimerHandle | None = None
        _refused = False

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            open_connections.inc()
            if len(self.connections) > max_connections:
                self._refuse()
                return
            self._arm()  # a fresh connection must send its request in time

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            super().data_received(data)
            if not self._between_requests():
                self._disarm()  # headers complete: the app reads the body under its own deadline

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self._between_requests() and not self.transport.is_closing():
                # The next request's headers are due in time too. An idle keep-alive connection is usually closed
                # earlier by uvicorn's timeout_keep_alive, but that timer stops at the next request's first byte.
                self._disarm()
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            open_connections.dec()
            super().connection_lost(exc)

        def _between_requests(self) -> bool:
            cycle = self.cycle
            return cycle is None or cycle.response_complete

        def _arm(self) -> None:
            self._deadline = self.loop.call_later(header_timeout, self._headers_too_slow)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _headers_too_slow(self) -> None:
            self._deadline = None
            if not self._between_requests() or self.transport.is_closing():
                return
            timed_out.inc()
            self.transport.write(_raw_response(RequestTimeoutError(too_slow)))
            self.transport.close()

        def _refuse(self) -> None:
            self._refused = True
            refused.inc()
            self.transport.write(_raw_response(TooManyConnectionsError(too_many)))
            if self.transport.can_write_eof():
                self.transport.write_eof()
            # Closing at once could reset the connection before the client reads the 503 (unread request bytes).
            self.loop.call_later(_LINGER_S, self.transport.close)

    GuardedProtocol.__name__ = GuardedProtocol.__qualname__ = f"Guarded{base.__name__}"
    return GuardedProtocol
