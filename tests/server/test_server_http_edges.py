"""Issue 13.6, the HTTP edges of `kolite serve` on a real server (subprocess, free loopback port): slow or stalled
clients cannot hold connections, connections are capped, bodies without JSON are refused with the right status,
/tag never cuts a text, body-size rejections are counted under their route, and /health answers 503 while the
server drains after SIGTERM, with requests still served."""

from __future__ import annotations

import json
import signal
import socket
import time

import httpx
import kolite
import numpy as np
import pytest
from live_server import assert_error, serve_subprocess

# Generous for a loaded machine: a server that never closes fails on the socket timeout, not on a slow close.
SOCKET_TIMEOUT_S = 30.0
READ_TIMEOUT_S = 1.0


@pytest.fixture(scope="module", params=["httptools", "h11"])
def server(artifacts, request):
    """The guards live in a subclass of uvicorn's HTTP protocol: both of uvicorn's parsers are checked."""
    with serve_subprocess([artifacts["cls"]], "--header-timeout-s", str(READ_TIMEOUT_S), "--body-timeout-s",
                          str(READ_TIMEOUT_S), "--max-body-bytes", "4096", "--http", request.param) as running:
        yield running


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=SOCKET_TIMEOUT_S)
    return sock


def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a socket timeout fails the test)."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _status_and_json(raw: bytes) -> tuple[int, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)


def test_a_body_shorter_than_its_content_length_gets_408_and_the_connection_closes(server):
    sockets = [_connect(server.url) for _ in range(20)]
    for sock in sockets:
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{\"inputs\": \"")
    for sock in sockets:
        with sock:
            status, body = _status_and_json(_read_until_closed(sock))
        assert status == 408 and body["error_type"] == "RequestTimeout", body
    assert 'kolite_errors_total{error_type="RequestTimeout",route="/predict"} 20.0' in server.metrics()


@pytest.mark.parametrize(
    ("sent", "answered"),
    [
        (b"", 0),  # connects and says nothing
        (b"POST /predict HTTP/1.1\r\nHost: x\r\n", 0),  # half the headers
        (b"GET /hea", 0),
        (b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\n", 1),  # a keep-alive's next request
    ],
)
def test_slow_or_missing_request_headers_are_closed(server, sent, answered):
    with _connect(server.url) as sock:
        sock.sendall(sent)
        raw = _read_until_closed(sock)
    responses = raw.split(b"HTTP/1.1 ")[1:]
    assert len(responses) == answered + 1 and all(r.startswith(b"200 ") for r in responses[:answered])
    status, body = _status_and_json(b"HTTP/1.1 " + responses[-1])
    assert status == 408 and body["error_type"] == "RequestTimeout"
    assert "kolite_connection_errors_total{reason=\"header_timeout\"}" in server.metrics()


def test_connections_over_the_cap_get_503_and_are_closed(artifacts):
    with serve_subprocess([artifacts["cls"]], "--max-connections", "3", "--header-timeout-s", "60") as server:
        idle = [_connect(server.url) for _ in range(3)]
        try:
            time.sleep(0.2)  # let the server accept them before the next one arrives
            with _connect(server.url) as extra:
                extra.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                status, body = _status_and_json(_read_until_closed(extra))
            assert status == 503 and body["error_type"] == "Overloaded"
        finally:
            for sock in idle:
                sock.close()
        deadline = time.monotonic() + SOCKET_TIMEOUT_S
        while True:  # the closed connections free their places
            try:
                if httpx.get(f"{server.url}/health", trust_env=False).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server never freed the closed connections"
            time.sleep(0.1)
        assert 'kolite_connection_errors_total{reason="max_connections"}' in server.metrics()


def test_bodies_that_are_not_json_objects(server):
    path = f"/models/{server_name(server)}/predict"
    with server.client() as client:
        # No Content-Type: 415, whatever the body (an empty one included).
        for content in (b'{"inputs": "x"}', b""):
            request = client.build_request("POST", path, content=content)
            request.headers.pop("content-type", None)
            assert_error(client.send(request), 415)
        # An empty JSON body is no valid JSON: 400, like malformed JSON.
        assert_error(client.post(path, content=b"", headers={"content-type": "application/json"}), 400, "Validation")
        assert_error(client.post(path, content=b"{", headers={"content-type": "application/json"}), 400, "Validation")


def test_a_content_length_rejection_is_counted_under_its_route(server):
    path = f"/models/{server_name(server)}/predict"
    with server.client() as client:
        big = json.dumps({"inputs": "가" * 5000}).encode()
        assert_error(client.post(path, content=big, headers={"content-type": "application/json"}), 413,
                     "PayloadTooLarge")
    metrics = server.metrics()
    assert 'kolite_errors_total{error_type="PayloadTooLarge",route="/models/{name}/predict"} 1.0' in metrics
    assert 'route="unmatched"' not in metrics


def server_name(server) -> str:
    with server.client() as client:
        return client.get("/models").json()["models"][0]["name"]


def test_tag_never_cuts_a_text_it_refuses_one_over_the_limit_and_tags_the_whole_of_one_under_it(artifacts):
    max_chars = 1_500
    # fp32: int8's dynamic quantization depends on what a text is batched with, which differs between the two.
    with serve_subprocess([artifacts["ner"]], "--max-text-chars", str(max_chars), "--variant", "fp32") as server, \
            server.client() as c:
        over = "홍길동은 서울에 산다. " * (max_chars // 12 + 10)
        assert len(over) > max_chars
        for route in ("/tag", "/predict"):
            body = assert_error(c.post(route, json={"inputs": over}), 413, "PayloadTooLarge")  # truncate=true too
            assert "--max-text-chars" in body["error"]
        under = over[:max_chars]
        got = c.post("/tag", json={"inputs": under, "ignore_labels": []})
        assert got.status_code == 200, got.text
    with kolite.load(artifacts["ner"], variant="fp32") as tagger:
        want = [e.to_dict() for e in tagger.tag(under, ignore_labels=())]
        windows = tagger.encode([under], tagger.options()).windows[0]
        first_window_end = max(end for _, end in windows[0].offsets)
    entities = got.json()
    assert [(e["label"], e["start"], e["end"]) for e in entities] == [(e["label"], e["start"], e["end"]) for e in want]
    np.testing.assert_allclose([e["score"] for e in entities], [e["score"] for e in want], rtol=1e-5, atol=1e-6)
    assert len(windows) > 1 and max(e["start"] for e in entities) > first_window_end  # the tail is tagged, not cut


@pytest.mark.slow  # waits out the drain period of a real server process
def test_health_is_503_while_draining_after_sigterm_and_requests_are_still_served(artifacts):
    with serve_subprocess([artifacts["cls"]], "--drain-s", "8") as server, server.client() as client:
        assert client.get("/health").status_code == 200
        server.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + SOCKET_TIMEOUT_S
        while (health := client.get("/health")).status_code == 200:
            assert time.monotonic() < deadline, "/health never said the server is draining"
            time.sleep(0.05)
        body = assert_error(health, 503, "Unhealthy")
        assert "shutting down" in body["error"]
        assert client.get("/models").status_code == 200
        served = client.post("/predict", json={"inputs": "아직 받는다"})
        assert served.status_code == 200, served.text
        assert served.headers.get("connection") == "close"  # keep-alive clients move to another replica
        assert server.process.wait(timeout=SOCKET_TIMEOUT_S + 8) in (0, -signal.SIGTERM)
