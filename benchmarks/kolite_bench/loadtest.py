"""Load test of `kolite serve`: throughput and latency percentiles at increasing concurrency, dynamic batching on
and off. Loopback only; every level is bounded in requests and seconds, and the script stops by itself.

    python -m kolite_bench.loadtest --artifact artifacts/000-koelectra-small-v3-nsmc

For each mode it starts its own server (``python -m kolite.server``) on a free 127.0.0.1 port, waits for
/health, runs the levels closed-loop (each client sends its next request when the previous one answered), reads
the batch-size histogram from /metrics, then stops the server with SIGTERM. Texts: the NSMC test set, one text
per request (the usual online-serving pattern, and the one batching has to rescue).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from kolite.session import default_threads
from kolite_export.catalogue import data_path, read_nsmc

from kolite_bench.config import REPO_ROOT
from kolite_bench.env import collect_environment
from kolite_bench.loadtest_report import markdown_table, plot

__all__ = ["main", "run_level", "run_mode"]

MODES = {"batching": [], "no-batching": ["--no-batching"]}
_HEALTH_TIMEOUT_S = 120.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _metric_sum(text: str, name: str) -> float:
    """Sum of every sample of ``name`` (all label sets) in a Prometheus text page."""
    pattern = re.compile(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", re.MULTILINE)
    return sum(float(value) for value in pattern.findall(text))


class RawConnection:
    """A minimal HTTP/1.1 keep-alive client for one connection: ~20x less CPU per request than httpx, which
    matters when the load generator shares the server's cores (httpx cost ~3 ms CPU per request here, more
    than the server itself)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        self.writer.write(head + body)
        assert self.reader is not None
        header = await self.reader.readuntil(b"\r\n\r\n")
        status = int(header[9:12])
        match = re.search(rb"(?i)content-length: *(\d+)", header)
        await self.reader.readexactly(int(match.group(1)) if match else 0)
        if re.search(rb"(?i)connection: *close", header):
            await self.close()
        return status

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _stat_cpu_s(stat_path: str) -> float | None:
    """User + system CPU seconds from a /proc ``stat`` file (a process's or one thread's); None if unreadable."""
    try:
        fields = Path(stat_path).read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _process_tree(pid: int) -> list[int]:
    """The process and its live descendants (``kolite serve --processes N`` answers from child processes)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{current}/task/{task}/children", encoding="ascii") as children:
                    todo += [int(child) for child in children.read().split()]
            except OSError:
                pass
    return found


def thread_cpu_s(pid: int) -> dict[str, float]:
    """User + system CPU seconds of each live thread of a process and its child processes, by ``pid/thread id``
    (Linux /proc; {} elsewhere)."""
    seconds: dict[str, float | None] = {}
    for process in _process_tree(pid):
        try:
            tasks = os.listdir(f"/proc/{process}/task")
        except OSError:
            continue
        seconds.update({f"{process}/{task}": _stat_cpu_s(f"/proc/{process}/task/{task}/stat") for task in tasks})
    return {key: value for key, value in seconds.items() if value is not None}


def _server_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process and its live child processes (Linux /proc; None elsewhere)."""
    values = [value for process in _process_tree(pid) if (value := _stat_cpu_s(f"/proc/{process}/stat")) is not None]
    return sum(values) if values else None


async def run_level(port: int, texts: list[str], concurrency: int, duration_s: float, max_requests: int,
                    client: str = "raw", bodies: list[bytes] | None = None) -> dict[str, Any]:
    """``concurrency`` closed-loop clients until ``duration_s`` passes or ``max_requests`` were sent; one text per
    request unless ready-made request ``bodies`` are given."""
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    sent = 0
    deadline = time.perf_counter() + duration_s
    if bodies is None:
        bodies = [json.dumps({"inputs": text}, ensure_ascii=False).encode() for text in texts]

    async def one_client(offset: int) -> None:
        nonlocal sent
        index = offset
        if client == "httpx":
            import httpx

            connection: Any = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60.0, trust_env=False)
        else:
            connection = RawConnection(port)
        try:
            while sent < max_requests and time.perf_counter() < deadline:
                sent += 1
                body = bodies[index % len(bodies)]
                index += concurrency
                started = time.perf_counter()
                try:
                    if client == "httpx":
                        key = str((await connection.post("/predict", content=body,
                                                         headers={"content-type": "application/json"})).status_code)
                    else:
                        key = str(await connection.post("/predict", body))
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:  # counted, not fatal
                    key = type(exc).__name__
                    if client == "raw":
                        await connection.close()
                elapsed = time.perf_counter() - started
                statuses[key] = statuses.get(key, 0) + 1
                if key == "200":
                    latencies.append(elapsed)
        finally:
            await (connection.aclose() if client == "httpx" else connection.close())

    started = time.perf_counter()
    await asyncio.gather(*(one_client(i) for i in range(concurrency)))
    wall = time.perf_counter() - started
    ms = np.asarray(latencies) * 1000.0 if latencies else np.zeros(1)
    return {
        "concurrency": concurrency,
        "requests": sum(statuses.values()),
        "ok": len(latencies),
        "statuses": statuses,
        "wall_s": round(wall, 3),
        "throughput_rps": round(len(latencies) / wall, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p90_ms": round(float(np.percentile(ms, 90)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "mean_ms": round(float(ms.mean()), 2),
    }


def stop_server(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM (the server drains), then SIGKILL if it has not exited within 30 s."""
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def _start_server(artifact: Path, port: int, extra: list[str], profile: Path | None = None) -> subprocess.Popen[bytes]:
    """``python -m kolite.server``; with ``profile``, under ``kolite_bench.serve_sampler`` (stack samples there)."""
    module = "kolite_bench.serve_sampler" if profile else "kolite.server"
    command = [sys.executable, "-m", module, str(artifact), "--host", "127.0.0.1", "--port", str(port),
               "--log-level", "warning", *extra]
    env = {**os.environ, "KOLITE_SAMPLE_OUT": str(profile)} if profile else None
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=_end_with_parent,
                            env=env)


def _end_with_parent() -> None:
    """In the server's process before exec: SIGTERM when the load generator dies, however it ends (a killed soak
    left its server serving a queue of thousands of requests). Linux only; elsewhere ``finally`` stops it."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG


async def _wait_healthy(client: Any, base: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.perf_counter() + _HEALTH_TIMEOUT_S
    while time.perf_counter() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"server exited: {server.stderr.read().decode() if server.stderr else ''}")
        try:
            if (await client.get(f"{base}/health")).status_code == 200:
                return
        except Exception:  # not listening yet
            pass
        await asyncio.sleep(0.2)
    raise TimeoutError(f"server not healthy after {_HEALTH_TIMEOUT_S} s")


async def run_mode(mode: str, args: argparse.Namespace, texts: list[str]) -> list[dict[str, Any]]:
    """Start a server in ``mode``, run every concurrency level against it, stop it."""
    import httpx

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    extra = [*MODES[mode], "--max-wait-ms", str(args.max_wait_ms), "--max-queue", "4096"]
    if args.threads:
        extra += ["--threads", str(args.threads)]
    profile = args.out / f"{args.name}.{mode}.samples.json" if args.profile else None
    server = _start_server(args.artifact, port, extra, profile)
    rows = []
    try:
        limits = httpx.Limits(max_connections=max(args.concurrency), max_keepalive_connections=max(args.concurrency))
        async with httpx.AsyncClient(limits=limits, timeout=60.0, trust_env=False) as client:
            await _wait_healthy(client, base, server)
            await run_level(port, texts, 4, args.warmup_s, 10_000, args.client)
            for concurrency in args.concurrency:
                before = (await client.get(f"{base}/metrics")).text
                cpu_before, load_before = _server_cpu_s(server.pid), os.getloadavg()[0]
                row = await run_level(port, texts, concurrency, args.duration_s, args.max_requests, args.client)
                cpu_after = _server_cpu_s(server.pid)
                after = (await client.get(f"{base}/metrics")).text
                if cpu_before is not None and cpu_after is not None:
                    row["server_cpu_ms_per_request"] = round(1000 * (cpu_after - cpu_before) / max(row["ok"], 1), 2)
                row["load_avg_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
                batches = _metric_sum(after, "kolite_batch_size_items_count") - _metric_sum(
                    before, "kolite_batch_size_items_count")
                items = _metric_sum(after, "kolite_batch_size_items_sum") - _metric_sum(
                    before, "kolite_batch_size_items_sum")
                row.update(mode=mode, batches=int(batches), mean_batch_items=round(items / max(batches, 1), 2))
                rows.append(row)
                print(f"{mode:>12} c={concurrency:<3} {row['throughput_rps']:>7.1f} req/s  p50 {row['p50_ms']:>7.1f} "
                      f"ms  p99 {row['p99_ms']:>7.1f} ms  batch {row['mean_batch_items']:>5.1f}  "
                      f"cpu/req {row.get('server_cpu_ms_per_request')} ms  load {row['load_avg_1m']}  "
                      f"{row['statuses']}",
                      flush=True)
    finally:
        stop_server(server)
    return rows


def inference_ceiling(artifact: Path, texts: list[str], threads: int | None, batches: int = 40) -> dict[str, Any]:
    """The model alone (no HTTP), through the server's own seams: CPU time per text one text per call vs the
    server's planned calls over batches of 32, and the wall-clock texts/s of those batches.

    The CPU ratio bounds what batching can gain when the server is CPU-bound; the texts/s is what the server's
    req/s is compared with (issue 12: >= 70 % of it at 64 clients).
    """
    from kolite.server.config import ServerConfig
    from kolite.server.metrics import ServerMetrics
    from kolite.server.models import ServedModel

    served = ServedModel(artifact, ServerConfig(artifacts=(artifact,), threads=threads), ServerMetrics())
    served.load()
    model, batching = served.model, served.config.batching
    result: dict[str, Any] = {}
    try:
        for size in (1, 32):
            chunks = [texts[i : i + size] for i in range(0, size * batches, size)]
            started, wall = time.process_time(), time.perf_counter()
            for chunk in chunks:
                encoded = model.encode(chunk)
                model.run(encoded, batch_size=batching.max_batch_items, max_tokens=batching.max_call_tokens)
            seconds, wall = time.process_time() - started, time.perf_counter() - wall
            result[f"cpu_ms_per_text_batch_{size}"] = round(1000 * seconds / (size * batches), 3)
            result[f"texts_per_s_batch_{size}"] = round(size * batches / wall, 1)
        # The "offline default": the same texts in one call, which the planner sorts by length first.
        whole = texts[: 32 * batches]
        wall = time.perf_counter()
        model.run(model.encode(whole), batch_size=32)
        result["texts_per_s_sorted"] = round(len(whole) / (time.perf_counter() - wall), 1)
    finally:
        served.close()
    result["ceiling"] = round(result["cpu_ms_per_text_batch_1"] / result["cpu_ms_per_text_batch_32"], 2)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kolite_bench.loadtest", description=__doc__.split("\n\n")[0])
    parser.add_argument("--artifact", type=Path, default=REPO_ROOT / "artifacts" / "000-koelectra-small-v3-nsmc")
    parser.add_argument("--data", type=Path, default=None, help="NSMC file (default $KOLITE_SHARED/data/nsmc/"
                                                                "ratings_test.txt)")
    parser.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 4, 16, 32, 64])
    parser.add_argument("--modes", type=lambda s: s.split(","), default=list(MODES))
    parser.add_argument("--duration-s", type=float, default=10.0, help="per level (upper bound)")
    parser.add_argument("--max-requests", type=int, default=20_000, help="per level (upper bound)")
    parser.add_argument("--warmup-s", type=float, default=2.0)
    parser.add_argument("--max-wait-ms", type=float, default=0.0)
    parser.add_argument("--threads", type=int, default=None, help="server onnxruntime intra-op threads")
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw",
                        help="load generator: minimal asyncio HTTP/1.1 client (default) or httpx")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "results")
    parser.add_argument("--name", default="loadtest-000")
    parser.add_argument("--profile", action="store_true", help="sample the server's Python stacks "
                        "(kolite_bench.serve_sampler) into <out>/<name>.<mode>.samples.json")
    args = parser.parse_args(argv)
    if not (args.artifact / "manifest.json").is_file():
        parser.error(f"{args.artifact} is not an artifact; export it first (kolite export ...)")
    unknown = set(args.modes) - set(MODES)
    if unknown:
        parser.error(f"unknown modes {sorted(unknown)}; valid: {', '.join(MODES)}")
    texts = list(read_nsmc(args.data or data_path("nsmc")).texts[:5000])
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    ceiling = inference_ceiling(args.artifact, texts, args.threads)
    print(f"model alone (CPU ms/text): batch 1 {ceiling['cpu_ms_per_text_batch_1']}, batch 32 "
          f"{ceiling['cpu_ms_per_text_batch_32']} -> batching can save at most {ceiling['ceiling']}x CPU; "
          f"{ceiling['texts_per_s_batch_32']} texts/s in batches of 32", flush=True)
    rows = []
    for mode in args.modes:
        rows += asyncio.run(run_mode(mode, args, texts))
    args.out.mkdir(parents=True, exist_ok=True)
    manifest = json.loads((args.artifact / "manifest.json").read_text(encoding="utf-8"))
    title = f"kolite serve, {manifest['name']} ({os.cpu_count()} CPUs, client on the same machine)"
    result = {"name": args.name, "artifact": str(args.artifact), "model": manifest["name"],
              "variants_sha256": {name: v["sha256"] for name, v in manifest["variants"].items()},
              "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "environment": collect_environment(args.threads or default_threads()),
              "inference_ceiling": ceiling, "rows": rows}
    (args.out / f"{args.name}.json").write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    table = markdown_table(rows, args.concurrency)
    (args.out / f"{args.name}.md").write_text(
        f"### {title}\n\n{table}\nModel alone, CPU ms per text: {ceiling['cpu_ms_per_text_batch_1']} one per call, "
        f"{ceiling['cpu_ms_per_text_batch_32']} in batches of 32 (ceiling {ceiling['ceiling']}x); "
        f"{ceiling['texts_per_s_batch_32']} texts/s in batches of 32.\n")
    plot(rows, args.out / f"{args.name}.png", title)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
