"""Issue 22.3 / 21.5: one error registry. Every kolite error class carries its HTTP status and type, one function
renders every body, and every answer the server gives — from the handlers, the middleware (401) and the connection
guard below ASGI (408 headers, 503 connection cap) — has the same JSON style with the request id of its header."""

from __future__ import annotations

import inspect
import json
import socket
import time
from http import HTTPStatus

import kolite.errors
import pytest
from kolite.errors import KoliteError, registry
from kolite.server.batcher import BatcherClosedError, QueueFullError
from kolite.server.errors import error_for_status, render_error
from live_server import assert_error, serve_subprocess

SOCKET_TIMEOUT_S = 30.0


def _canonical(body: dict) -> bytes:
    """The one JSON style every error body is written in."""
    return json.dumps(body, ensure_ascii=True).encode("ascii")


@pytest.mark.parametrize("cls", registry(), ids=lambda cls: cls.__name__)
def test_every_registered_error_renders_its_own_status_and_type_in_the_common_body(cls):
    assert cls.__doc__ and cls.__doc__.strip(), f"{cls.__name__} needs a docstring: it is the docs' 'when'"
    assert isinstance(cls.http_status, int) and HTTPStatus(cls.http_status)
    assert isinstance(cls.error_type, str) and cls.error_type
    rendered = render_error(cls("기계가 말하길: 안 됨"), "req-1")
    assert rendered.status == cls.http_status
    body = json.loads(rendered.body)
    assert body == {"error": "기계가 말하길: 안 됨", "error_type": cls.error_type, "request_id": "req-1"}
    assert rendered.body == _canonical(body)
    headers = dict(rendered.headers)
    assert headers["content-type"] == "application/json"
    assert int(headers["content-length"]) == len(rendered.body)
    for name, value in cls.http_headers.items():
        assert headers[name.lower()] == value
    assert (headers.get("connection") == "close") == cls.close_connection
    raw = rendered.raw_http()
    assert raw.startswith(f"HTTP/1.1 {cls.http_status} ".encode()) and raw.endswith(rendered.body)
    assert b"\r\nx-request-id: req-1\r\n" in raw


def test_the_registry_holds_every_error_class_of_kolite_errors_and_every_status_the_server_answers():
    defined = {obj for _, obj in inspect.getmembers(kolite.errors, inspect.isclass)
               if issubclass(obj, KoliteError) and obj.__module__ == "kolite.errors"}
    assert set(registry()) == defined
    assert registry()[0] is KoliteError
    statuses = {cls.http_status for cls in registry()}
    assert {400, 401, 404, 405, 408, 413, 415, 422, 429, 431, 500, 503, 504} <= statuses


def test_errors_of_the_server_layers_take_their_status_from_a_registry_class():
    assert QueueFullError("full").http_status == HTTPStatus.TOO_MANY_REQUESTS
    assert BatcherClosedError("closing").http_status == HTTPStatus.SERVICE_UNAVAILABLE
    # the statuses Starlette and FastAPI choose themselves
    assert type(error_for_status(HTTPStatus.NOT_FOUND, "x")) is kolite.errors.NotFoundError
    assert type(error_for_status(HTTPStatus.METHOD_NOT_ALLOWED, "x")) is kolite.errors.MethodNotAllowedError
    assert type(error_for_status(HTTPStatus.BAD_REQUEST, "x")) is kolite.errors.MalformedRequestError
    assert error_for_status(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "x").error_type == "PayloadTooLarge"
    assert error_for_status(HTTPStatus.IM_A_TEAPOT, "x").http_status == HTTPStatus.INTERNAL_SERVER_ERROR
    # an instance may ask to close the connection without changing its class's default
    error = kolite.errors.PayloadTooLargeError("big")
    error.close_connection = True
    assert ("connection", "close") in render_error(error, "r").headers
    assert not kolite.errors.PayloadTooLargeError.close_connection


# ---- on a real server ----


@pytest.fixture(scope="module")
def artifact(tiny_artifact):
    return tiny_artifact("000")


def _raw_exchange(url: str, sent: bytes) -> tuple[int, dict[str, str], bytes]:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=SOCKET_TIMEOUT_S) as sock:
        sock.sendall(sent)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split(" ")[1]), {k.lower(): v for k, v in headers.items()}, body


def _assert_common_raw(status: int, headers: dict[str, str], body: bytes, expected: int, error_type: str) -> None:
    assert status == expected, (status, body)
    parsed = json.loads(body)
    assert set(parsed) == {"error", "error_type", "request_id"} and parsed["error_type"] == error_type
    assert parsed["request_id"] == headers["x-request-id"]
    assert body == _canonical(parsed)


@pytest.mark.parametrize("http", ["httptools", "h11"])
def test_401_408_and_503_from_every_layer_have_the_common_body_with_a_request_id(artifact, http):
    with serve_subprocess([artifact], "--http", http, "--api-key", "sesame", "--header-timeout-s", "3",
                          "--max-connections", "2") as server:
        with server.client() as client:
            unauthorized = client.post("/predict", json={"inputs": "좋아요"})
        body = assert_error(unauthorized, 401, "Unauthorized")
        assert unauthorized.content == _canonical(body)
        assert unauthorized.headers["www-authenticate"] == "Bearer"

        # headers that never finish: answered by the connection guard, below the ASGI app
        _assert_common_raw(*_raw_exchange(server.url, b"POST /predict HTTP/1.1\r\nHost: x\r\n"), 408, "RequestTimeout")

        host, port = server.url.removeprefix("http://").split(":")
        held = [socket.create_connection((host, int(port)), timeout=SOCKET_TIMEOUT_S) for _ in range(2)]
        try:
            time.sleep(1.0)  # let the server accept them (the header deadline closes them after 3 s)
            status, headers, raw = _raw_exchange(server.url, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            _assert_common_raw(status, headers, raw, 503, "Overloaded")
            assert headers["retry-after"] == "1" and headers["connection"] == "close"
        finally:
            for sock in held:
                sock.close()


def test_handler_errors_have_the_common_body(artifact):
    with serve_subprocess([artifact]) as server, server.client() as client:
        for response, status in ((client.get("/nowhere"), 404), (client.delete("/predict"), 405),
                                 (client.post("/predict", json={"inputs": []}), 400),
                                 (client.post("/predict", json={"inputs": 42}), 422),
                                 (client.post("/predict", content=b"{}", headers={"content-type": "text/plain"}), 415),
                                 (client.post("/predict", json={"inputs": ["x"] * 33}), 413)):
            body = assert_error(response, status)
            assert response.content == _canonical(body)



def test_a_server_fault_has_the_common_body(artifact):
    """(504 and 429 are checked in test_server_batching with the same assert_error.)"""
    from kolite.server.app import create_app
    from kolite.server.config import ServerConfig
    from live_server import serve_in_thread

    app = create_app(ServerConfig(artifacts=(artifact,), warmup=False))
    with serve_in_thread(app) as running, running.client() as client:
        (model,) = app.state.kolite.models.values()

        def broken_decode(*args: object, **kwargs: object) -> None:
            raise RuntimeError("a bug in decoding")

        model.decode = broken_decode
        response = client.post("/predict", json={"inputs": "좋아요"})
        fault = assert_error(response, 500, "Backend")
        assert "RuntimeError: a bug in decoding" in fault["error"] and response.content == _canonical(fault)
