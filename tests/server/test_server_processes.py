"""`kolite serve --processes N`: N server processes on one port (SO_REUSEPORT), stopped together."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import kolite
import pytest
from live_server import serve_subprocess, stop

TEXTS = ["영화 정말 재밌어요", "별로였다", "배우 연기가 최고", "ㅋㅋ 다시 볼래요", "지루했다"]


@pytest.fixture(scope="module")
def artifact(tiny_artifact):
    return tiny_artifact("000")


def _servers(parent: int) -> list[int]:
    """The parent's server children (the spawn context's resource tracker is not one)."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return [int(pid) for pid in children
            if "resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")]


def _all_ready(url: str, tries: int = 40) -> None:
    """Every child answers /health 200: new connections land on either, so ask until `tries` in a row say so."""
    in_a_row, deadline = 0, time.monotonic() + 90
    while in_a_row < tries and time.monotonic() < deadline:
        with httpx.Client(base_url=url, timeout=5.0, trust_env=False) as client:  # a fresh connection each time
            in_a_row = in_a_row + 1 if client.get("/health").status_code == 200 else 0
        time.sleep(0.02)
    assert in_a_row >= tries, "not every server process became ready"


def _gone(pids: list[int], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(Path(f"/proc/{pid}").exists() and "Z" not in _state(pid) for pid in pids):
            return True
        time.sleep(0.1)
    return False


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"


def test_two_processes_share_the_port_give_the_api_answers_and_stop_together(artifact):
    with kolite.load(artifact) as model:
        expected = model.predict(TEXTS, top_k=None)  # the server's default: every label
    with serve_subprocess([artifact], "--processes", "2", "--threads", "2") as server:
        servers = _servers(server.process.pid)
        assert len(servers) == 2
        _all_ready(server.url)
        for _ in range(10):  # a fresh connection per request: the kernel spreads them over both processes
            with server.client() as client:
                answer = client.post("/predict", json={"inputs": TEXTS}).json()
            assert [[(r["label"], r["score"]) for r in row] for row in answer] == [
                [(r.label, float(r.score)) for r in row] for row in expected]
        code = stop(server.process)
        assert code == 0 and _gone(servers)


def test_a_server_process_that_dies_takes_the_others_down_with_its_status(artifact):
    with serve_subprocess([artifact], "--processes", "2", "--threads", "2") as server:
        first, second = _servers(server.process.pid)
        os.kill(first, signal.SIGKILL)
        assert server.process.wait(timeout=60) == 128 + signal.SIGKILL
        assert _gone([first, second])


def test_processes_need_a_fixed_port_and_a_positive_count(artifact, capsys):
    from kolite.server.cli import main

    assert main([str(artifact), "--port", "0", "--processes", "2"]) == 2
    assert "fixed --port" in capsys.readouterr().err
    assert main([str(artifact), "--processes", "0"]) == 2
    assert "--processes must be >= 1" in capsys.readouterr().err
