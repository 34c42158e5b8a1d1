"""Issue 21.5: request headers are capped in total (--max-header-bytes). One endless header line gets 431 with the
common error body and the connection closes; connections holding huge partial headers cannot grow the server's
memory past the cap each; headers under the cap and bodies of any allowed size are untouched."""

from __future__ import annotations

import contextlib
import json
import socket
from pathlib import Path

import pytest
from live_server import serve_subprocess

SOCKET_TIMEOUT_S = 30.0
CAP = 32 * 1024  # the default
MiB = 2**20


@pytest.fixture(scope="module", params=["httptools", "h11"])
def server(tiny_artifact, request):
    with serve_subprocess([tiny_artifact("000")], "--http", request.param, "--header-timeout-s", "60") as running:
        yield running


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=SOCKET_TIMEOUT_S)


def _send_all_you_can(sock: socket.socket, data: bytes) -> None:
    """Send ``data``; a server that already answered and closed may cut it short."""
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        sock.sendall(data)


def _exchange(url: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    with _connect(url) as sock:
        _send_all_you_can(sock, request)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}
    return int(lines[0].split(" ")[1]), headers, body


def test_an_8_mb_header_line_gets_431_with_the_common_body_and_the_connection_closes(server):
    request = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (8 * MiB) + b"\r\n\r\n"
    status, headers, body = _exchange(server.url, request)
    assert status == 431, (status, body[:200])
    parsed = json.loads(body)
    assert parsed["error_type"] == "HeadersTooLarge" and "--max-header-bytes" in parsed["error"]
    assert set(parsed) == {"error", "error_type", "request_id"} and parsed["request_id"] == headers["x-request-id"]
    assert headers["connection"] == "close"
    assert 'kolite_connection_errors_total{reason="header_too_large"}' in server.metrics()


def test_many_header_lines_count_together(server):
    lines = b"".join(b"X-Part-%d: %s\r\n" % (i, b"b" * 1000) for i in range(40))  # 40 x 1 KB, none long
    status, _, _ = _exchange(server.url, b"GET /health HTTP/1.1\r\nHost: x\r\n" + lines + b"\r\n")
    assert status == 431


def test_headers_under_the_cap_and_a_large_body_in_the_same_reads_are_served(server):
    lines = b"".join(b"X-Part-%d: %s\r\n" % (i, b"c" * 1000) for i in range(20))  # 20 KB of headers
    request = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + lines + b"\r\n"
    assert _exchange(server.url, request)[0] == 200
    # a body of 30 x the cap, sent with its headers at once: only header bytes count
    body = b'{"inputs": "\xec\xa2\x8b\xec\x95\x84\xec\x9a\x94"' + b" " * (30 * CAP) + b"}"
    request = (b"POST /predict HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n" % len(body)) + body
    status, _, answer = _exchange(server.url, request)
    assert status == 200, answer[:300]


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_four_connections_holding_huge_partial_headers_do_not_grow_the_server(server):
    pid = server.process.pid
    before = _rss_bytes(pid)
    held = [_connect(server.url) for _ in range(4)]
    try:
        for sock in held:  # 16 MB of one header line each, never finished (before the cap: 64 MB held)
            _send_all_you_can(sock, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"d" * (16 * MiB))
        grown = _rss_bytes(pid) - before
    finally:
        for sock in held:
            sock.close()
    assert grown < 16 * MiB, f"server RSS grew by {grown / MiB:.1f} MiB"
