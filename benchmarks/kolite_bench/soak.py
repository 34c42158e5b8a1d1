"""Soak test of `kolite serve`: mixed-length traffic at a fixed share of capacity for a long time, server RSS sampled
every minute. Loopback only; bounded in time; stops the server it starts.

    python -m kolite_bench.soak --artifact artifacts/000-koelectra-small-v3-nsmc --minutes 30 --load 0.8

ONNX Runtime's CPU memory arena grows with every new input shape and keeps what it took (fastembed #570,
onnxruntime #11627); a server fed texts of every length for hours could creep towards its memory limit. The soak
first measures capacity (closed loop, 32 clients), then sends requests open-loop (Poisson arrivals) at ``--load``
of it: one to eight texts per request, drawn from NSMC reviews, KOTE comments and long concatenations, so batch
shapes vary all the time. The verdict compares RSS after warm-up with RSS at the end (goal: growth <= 10 %).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np

from kolite_bench.config import REPO_ROOT
from kolite_bench.loadtest import RawConnection, _free_port, _start_server, _wait_healthy, run_level

__all__ = ["main", "mixed_bodies", "rss_mb"]


def rss_mb(pid: int) -> float | None:
    """Resident set size of a process in MB (Linux /proc)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def mixed_bodies(texts: list[str], count: int, seed: int = 0) -> list[bytes]:
    """Request bodies of every shape: 1-8 texts each; one text in twenty is several texts joined (long)."""
    rng = random.Random(seed)
    bodies = []
    for _ in range(count):
        batch = []
        for _ in range(rng.choice((1, 1, 1, 2, 4, 8))):
            text = rng.choice(texts)
            if rng.random() < 0.05:
                text = " ".join(rng.choice(texts) for _ in range(rng.randint(5, 40)))
            batch.append(text)
        bodies.append(json.dumps({"inputs": batch if len(batch) > 1 else batch[0]}, ensure_ascii=False).encode())
    return bodies


async def open_loop(port: int, bodies: list[bytes], rate: float, seconds: float, max_connections: int = 64) -> dict:
    """Poisson arrivals at ``rate`` requests/s for ``seconds``; returns latencies and status counts."""
    idle: list[RawConnection] = []
    open_count = 0
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    rng = random.Random(1)
    tasks: set[asyncio.Task[None]] = set()

    async def one(body: bytes) -> None:
        nonlocal open_count
        reused = bool(idle)
        connection = idle.pop() if reused else RawConnection(port)
        started = time.perf_counter()
        try:
            try:
                key = str(await connection.post("/predict", body))
            except (OSError, asyncio.IncompleteReadError):
                if not reused:
                    raise
                # The server closed this pooled connection after its keep-alive timeout while it sat idle; every
                # HTTP client (urllib3, httpx) then retries once on a new connection, and so does this one.
                await connection.close()
                statuses["stale keep-alive, retried"] = statuses.get("stale keep-alive, retried", 0) + 1
                connection = RawConnection(port)
                key = str(await connection.post("/predict", body))
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            key = type(exc).__name__
            await connection.close()
        statuses[key] = statuses.get(key, 0) + 1
        if key == "200":
            latencies.append(time.perf_counter() - started)
        idle.append(connection)
        open_count -= 1

    deadline = time.perf_counter() + seconds
    index = 0
    while time.perf_counter() < deadline:
        await asyncio.sleep(rng.expovariate(rate))
        if open_count >= max_connections:  # the server is behind: count it instead of piling up sockets
            statuses["skipped"] = statuses.get("skipped", 0) + 1
            continue
        open_count += 1
        task = asyncio.create_task(one(bodies[index % len(bodies)]))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        index += 1
    if tasks:
        await asyncio.wait(tasks, timeout=60)
    for connection in idle:
        await connection.close()
    ms = np.asarray(latencies) * 1000 if latencies else np.zeros(1)
    return {"ok": len(latencies), "statuses": statuses, "rps": round(len(latencies) / seconds, 1),
            "p50_ms": round(float(np.percentile(ms, 50)), 1), "p99_ms": round(float(np.percentile(ms, 99)), 1)}


async def soak(args: argparse.Namespace, texts: list[str]) -> dict[str, Any]:
    import httpx

    port = _free_port()
    server = _start_server(args.artifact, port, ["--max-queue", "4096", "--max-connections", "256"])
    bodies = mixed_bodies(texts, 20_000)
    minutes: list[dict[str, Any]] = []
    try:
        async with httpx.AsyncClient(timeout=60.0, trust_env=False) as client:
            await _wait_healthy(client, f"http://127.0.0.1:{port}", server)
        # capacity in the soak's own requests (1-8 mixed-length texts), not in one-text requests
        capacity = await run_level(port, texts, 32, args.capacity_s, 1_000_000, bodies=bodies)
        rate = max(1.0, capacity["throughput_rps"] * args.load)
        print(f"capacity {capacity['throughput_rps']} req/s of 1-8 mixed texts; soaking at {rate:.0f} req/s",
              flush=True)
        for minute in range(1, args.minutes + 1):
            row = await open_loop(port, bodies, rate, 60.0)
            row.update(minute=minute, rss_mb=rss_mb(server.pid), load_avg_1m=round(os.getloadavg()[0], 2))
            minutes.append(row)
            print(json.dumps(row), flush=True)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    warm = minutes[min(args.warmup_minutes, len(minutes)) - 1]["rss_mb"]
    end = minutes[-1]["rss_mb"]
    growth = (end - warm) / warm if warm and end else None
    return {"capacity_rps": capacity["throughput_rps"], "rate_rps": rate, "minutes": minutes,
            "rss_after_warmup_mb": warm, "rss_end_mb": end, "rss_growth": growth,
            "rss_max_mb": max(m["rss_mb"] or 0 for m in minutes)}


def render(result: dict[str, Any], title: str) -> str:
    growth = result["rss_growth"]
    lines = [f"### {title}", "",
             f"Capacity {result['capacity_rps']} req/s (the soak's requests, closed loop, 32 clients); soak at "
             f"{result['rate_rps']:.0f} req/s of 1-8 mixed-length texts, open loop. RSS after warm-up "
             f"{result['rss_after_warmup_mb']:.0f} MB, at the end {result['rss_end_mb']:.0f} MB "
             f"(growth {growth:+.1%}; goal <= 10 %), peak {result['rss_max_mb']:.0f} MB.", "",
             "| minute | req/s | p50 ms | p99 ms | RSS MB | non-200 | load |", "|---:|---:|---:|---:|---:|---|---:|"]
    for m in result["minutes"]:
        other = {k: v for k, v in m["statuses"].items() if k not in ("200", "stale keep-alive, retried")}
        lines.append(f"| {m['minute']} | {m['rps']} | {m['p50_ms']} | {m['p99_ms']} | {m['rss_mb']:.0f} | "
                     f"{other or '-'} | {m['load_avg_1m']} |")
    return "\n".join(lines) + "\n"


def plot(result: dict[str, Any], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [m["minute"] for m in result["minutes"]]
    figure, axis = plt.subplots(figsize=(7, 3.5))
    axis.plot(minutes, [m["rss_mb"] for m in result["minutes"]], marker="o", label="server RSS (MB)")
    axis.axhline(result["rss_after_warmup_mb"] * 1.1, color="grey", linestyle="--", label="after warm-up + 10 %")
    axis.set_xlabel("minute")
    axis.set_ylabel("MB")
    axis.set_title(title, fontsize=9)
    axis.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    from kolite_export.catalogue import read_dataset

    parser = argparse.ArgumentParser(prog="python -m kolite_bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--artifact", type=Path, default=REPO_ROOT / "artifacts" / "000-koelectra-small-v3-nsmc")
    parser.add_argument("--minutes", type=int, default=30)
    parser.add_argument("--warmup-minutes", type=int, default=3)
    parser.add_argument("--load", type=float, default=0.8, help="share of the measured capacity (default 0.8)")
    parser.add_argument("--capacity-s", type=float, default=20.0)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "results")
    parser.add_argument("--name", default="soak-000")
    args = parser.parse_args(argv)
    texts = [t for t in (*read_dataset("nsmc").texts, *read_dataset("kote").texts) if t.strip()]
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    result = asyncio.run(soak(args, texts))
    result["settings"] = {k: str(v) for k, v in vars(args).items()}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    title = f"kolite serve soak, {args.artifact.name}, {args.minutes} min at {args.load:.0%} of capacity"
    (args.out / f"{args.name}.md").write_text(render(result, title), encoding="utf-8")
    plot(result, args.out / f"{args.name}.png", title)
    print(render(result, title))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
