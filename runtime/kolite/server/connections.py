"""Connection guards below the ASGI app: a deadline and a size cap for request headers, a cap on open connections.

uvicorn has no read timeout for a request's headers: a client that connects and sends nothing, or half a header,
holds its connection (and a file descriptor) for as long as it likes (slowloris); ``limit_concurrency`` only
answers a request once its headers have arrived. The guard is a subclass of uvicorn's own HTTP protocol (h11 or
httptools, whichever uvicorn picks), so parsing, keep-alive and pipelining stay uvicorn's:

- a connection must deliver a request's headers within ``header_timeout_s`` of opening, or of its previous
  response; otherwise it gets a 408 and is closed. Once the headers are in, the ASGI layer bounds the
  body (``RequestMiddleware``: 408 after ``body_timeout_s``), and an idle keep-alive connection is closed by
  uvicorn's ``timeout_keep_alive``.
- a request's headers (request line included) may total ``max_header_bytes``: httptools buffers a header until its
  line ends, so one endless header line grew the process without bound. The guard counts the bytes up to the blank
  line that ends the headers before the parser sees them; past the cap the connection is answered 431 and closed,
  and what arrives meanwhile is dropped unparsed. (Headers of a request pipelined behind another in the same read
  are counted from the next read on: a connection holds at most the cap plus one read, 256 KiB.)
- beyond ``max_connections`` open connections, a new one is answered 503 at once and closed, so a flood of idle
  connections cannot exhaust the process's file descriptors before the deadline frees them.
"""

from __future__ import annotations

import asyncio
from typing import Any

from kolite.errors import HeadersTooLargeError, KoliteError, RequestTimeoutError, TooManyConnectionsError
from kolite.server.config import Limits
from kolite.server.errors import new_request_id, render_error
from kolite.server.metrics import ServerMetrics

__all__ = ["guarded_protocol"]

_LINGER_S = 1.0  # a refused connection is closed this long after its last byte, so the client reads the answer
_BLANK_LINES = (b"\r\n\r\n", b"\n\n")
_MAX_LINGER_S = 10.0  # ... but no longer than this after the refusal, however long the client keeps sending


def _raw_response(error: KoliteError) -> bytes:
    """The common error body, with a fresh request id: no request was parsed, so the client sent none."""
    return render_error(error, new_request_id()).raw_http()


def _end_of_headers(tail: bytes, data: bytes, start: int) -> int:
    """The index in ``data`` just past the blank line ending the headers (CRLF CRLF, or LF LF that lenient parsers
    take), or -1; ``tail`` is the previous read's last bytes."""
    if tail:
        joined = tail + data[:3]
        ends = [joined.find(blank) + len(blank) - len(tail) for blank in _BLANK_LINES if blank in joined]
        if ends:
            return max(min(ends), 0)
    crlf = data.find(b"\r\n\r\n", start)
    lf = data.find(b"\n\n", start, crlf if crlf >= 0 else len(data))  # only an earlier one matters
    return lf + 2 if lf >= 0 else (crlf + 4 if crlf >= 0 else -1)


def guarded_protocol(base: type[asyncio.Protocol], limits: Limits, metrics: ServerMetrics) -> type[asyncio.Protocol]:
    """``base`` (uvicorn's H11Protocol or HttpToolsProtocol) with the header deadline and the connection cap."""
    header_timeout = limits.header_timeout_s
    max_connections = limits.max_connections
    max_header_bytes = limits.max_header_bytes
    timed_out = metrics.connection_errors.labels("header_timeout")
    refused = metrics.connection_errors.labels("max_connections")
    headers_too_large = metrics.connection_errors.labels("header_too_large")
    open_connections = metrics.open_connections
    too_slow = f"request headers not received within {header_timeout} s (--header-timeout-s)"
    too_many = f"too many open connections (--max-connections {max_connections}); retry later"
    too_large = f"request headers over {max_header_bytes} bytes (--max-header-bytes)"

    class GuardedProtocol(base):  # type: ignore[valid-type, misc]
        _deadline: asyncio.TimerHandle | None = None
        _refused = False
        _refused_at = 0.0
        _linger: asyncio.TimerHandle | None = None
        _reading_headers = True  # the next bytes belong to a request's headers
        _header_bytes = 0  # of the request whose headers are being read
        _tail = b""  # the last bytes of the previous read: a blank line may be split across reads

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            open_connections.inc()
            if len(self.connections) > max_connections:
                refused.inc()
                self._refuse(TooManyConnectionsError(too_many))
                return
            self._arm()  # a fresh connection must send its request in time

        def data_received(self, data: bytes) -> None:
            if self._refused:  # answered already: drop what the client still sends, close once it stops
                if self.loop.time() - self._refused_at < _MAX_LINGER_S:
                    self._close_later()
                return
            if self._reading_headers and self._headers_over_cap(data):
                headers_too_large.inc()
                self._disarm()
                self._refuse(HeadersTooLargeError(too_large))
                return
            super().data_received(data)
            if not self._between_requests():
                self._disarm()  # headers complete: the app reads the body under its own deadline

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._reading_headers, self._header_bytes, self._tail = True, 0, b""
            if self._between_requests() and not self.transport.is_closing():
                # The next request's headers are due in time too. An idle keep-alive connection is usually closed
                # earlier by uvicorn's timeout_keep_alive, but that timer stops at the next request's first byte.
                self._disarm()
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            if self._linger is not None:
                self._linger.cancel()
            open_connections.dec()
            super().connection_lost(exc)

        def _headers_over_cap(self, data: bytes) -> bool:
            """Count ``data`` into the current request's headers; True once they are over the cap."""
            start = 0
            if self._header_bytes == 0:  # empty lines before a request line are skipped by the parsers
                while start < len(data) and data[start] in b"\r\n":
                    start += 1
                if start == len(data):
                    return False
            end = _end_of_headers(self._tail, data, start)
            if end < 0:
                self._header_bytes += len(data) - start
                self._tail = data[-3:]
                return self._header_bytes > max_header_bytes
            self._reading_headers, self._tail = False, b""
            return self._header_bytes + end - start > max_header_bytes

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

        def _refuse(self, error: KoliteError) -> None:
            """Answer ``error`` and close; nothing more of this connection is parsed."""
            self._refused = True
            self._refused_at = self.loop.time()
            self.transport.write(_raw_response(error))
            if self.transport.can_write_eof():
                self.transport.write_eof()
            # Closing at once could reset the connection before the client reads the answer (unread request bytes).
            self._close_later()

        def _close_later(self) -> None:
            if self._linger is not None:
                self._linger.cancel()
            self._linger = self.loop.call_later(_LINGER_S, self.transport.close)

    GuardedProtocol.__name__ = GuardedProtocol.__qualname__ = f"Guarded{base.__name__}"
    return GuardedProtocol
