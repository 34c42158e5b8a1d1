"""Serving A/B in one run: this checkout's `kolite serve` against another runtime tree (e.g. ``git archive`` of
main), in alternating rounds, with the model's offline texts/s measured in every round next to them.

    python -m kolite_bench.serve_ab --artifact ART --baseline-runtime /tmp/base/runtime --rounds 3 --out R.json

Each round: the offline ceiling (``loadtest.inference_ceiling``: the server's own encode + planned calls over
batches of 32, no HTTP), then each server in turn (order alternating by round), started fresh, warmed, then
``--clients`` closed-loop clients sending one NSMC text per request for ``--duration-s``. Served req/s is held
against two offline figures: batches of 32 in file order (``served_over_offline``) and the same texts in one
sorted call (``served_over_sorted``, what ``model.logits(texts)`` does). Server CPU per answered request comes from
/proc, with the share of the threads that live through the level (event loop, tokenizer pool, batcher: the request
path) and the load generator's own CPU; with ``--profile`` each server runs under ``kolite_bench.serve_sampler``
and its stack samples are saved beside the results. Quote the per-round ratios; the 1-min load average is recorded
with each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from kolite_export.catalogue import data_path, read_nsmc

from kolite_bench.env import cpu_model
from kolite_bench.loadtest import (
    _free_port,
    _server_cpu_s,
    _wait_healthy,
    inference_ceiling,
    run_level,
    stop_server,
    thread_cpu_s,
)

__all__ = ["main", "table"]


async def _serve_once(args: argparse.Namespace, texts: list[str], runtime: str | None, profile: Path | None,
                      extra: list[str]) -> dict:
    import httpx

    port = _free_port()
    env = dict(os.environ)
    if runtime:  # the other runtime tree first on the path: its kolite (server included) is imported
        env["PYTHONPATH"] = os.pathsep.join([runtime, env.get("PYTHONPATH", "")])
    if profile:
        env["KOLITE_SAMPLE_OUT"] = str(profile)
    module = "kolite_bench.serve_sampler" if profile else "kolite.server"
    command = [sys.executable, "-m", module, str(args.artifact), "--host", "127.0.0.1", "--port", str(port),
               "--log-level", "warning", "--max-wait-ms", "0", "--max-queue", "4096", *extra]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        async with httpx.AsyncClient(timeout=60.0, trust_env=False) as client:
            await _wait_healthy(client, f"http://127.0.0.1:{port}", server)
        await run_level(port, texts, 4, 2.0, 10_000)
        cpu_before, load_before = _server_cpu_s(server.pid), os.getloadavg()[0]
        threads_before, client_before = thread_cpu_s(server.pid), time.process_time()
        row = await run_level(port, texts, args.clients, args.duration_s, 100_000)
        cpu_after, client_after = _server_cpu_s(server.pid), time.process_time()
        threads_after = thread_cpu_s(server.pid)
        answered = max(row["ok"], 1)
        row["client_cpu_ms_per_request"] = round(1000 * (client_after - client_before) / answered, 3)
        if cpu_before is not None and cpu_after is not None:
            row["server_cpu_ms_per_request"] = round(1000 * (cpu_after - cpu_before) / answered, 3)
            # Threads alive through the whole level: event loop, tokenizer pool, batcher (and a single-call plan's
            # session run on it). The per-batch session threads come and go, so this is the request path's CPU.
            lasting = sum(threads_after[t] - threads_before[t] for t in threads_after if t in threads_before)
            row["lasting_threads_cpu_ms_per_request"] = round(1000 * lasting / answered, 3)
        row["load_avg_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
        return row
    finally:
        stop_server(server)


def _cell(row: dict[str, Any], key: str, fmt: str) -> str:
    value = row.get(key)
    return "–" if value is None else format(value, fmt)


def table(results: dict[str, Any]) -> str:
    """Per round and server: req/s, served ÷ offline (both offline figures), CPU per request (all, request path,
    load generator) and the load; then the run line (the docs render it from the file)."""
    lines = ["| round | server | req/s | ÷ offline file order | ÷ offline sorted | server CPU ms/req | request-path "
             "threads ms/req | client CPU ms/req | p50 ms | load |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for row in results["rounds"]:
        for name in ("this", "baseline"):
            served = row[name]
            load = served.get("load_avg_1m") or ["?", "?"]
            lines.append(
                f"| {row['round'] + 1} | {name} | {served['throughput_rps']:,.0f} | "
                f"{_cell(served, 'served_over_offline', '.0%')} | "
                f"{_cell(served, 'served_over_sorted', '.0%')} | {_cell(served, 'server_cpu_ms_per_request', '.2f')} | "
                f"{_cell(served, 'lasting_threads_cpu_ms_per_request', '.2f')} | "
                f"{_cell(served, 'client_cpu_ms_per_request', '.2f')} | {served['p50_ms']:.0f} | {load[0]}–{load[1]} |")
    ratio = results["req_per_s_this_over_baseline"]
    settings, machine = results["settings"], results["machine"]
    offline = [row["offline"]["texts_per_s_batch_32"] for row in results["rounds"]]
    lines.append(
        f"\nrun {results['run_id']}: {settings['clients']} one-text clients, {settings['duration_s']} s per server, "
        f"{len(results['rounds'])} rounds, {machine.get('cpu', '?')} ({machine['logical_cores']} vCPUs, the client "
        f"on the same cores); offline file-order batches {min(offline):,.0f}–{max(offline):,.0f} texts/s across "
        f"rounds; this ÷ baseline req/s median {ratio['median']:.2f} "
        f"({' / '.join(f'{r:.2f}' for r in ratio['rounds'])})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kolite_bench.serve_ab", description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", type=Path, required=True)
    parser.add_argument("--baseline-runtime", required=True, help="folder holding the other kolite package")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--duration-s", type=float, default=15.0)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--this-args", default="", help="extra `kolite serve` arguments for this checkout's server")
    parser.add_argument("--baseline-args", default="", help="extra `kolite serve` arguments for the baseline's")
    parser.add_argument("--out", type=Path, required=True, help="results JSON")
    args = parser.parse_args(argv)
    texts = list(read_nsmc(data_path("nsmc")).texts[:5000])
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    contenders = {"this": None, "baseline": args.baseline_runtime}
    rounds = []
    for r in range(args.rounds):
        row: dict[str, Any] = {"round": r, "offline": inference_ceiling(args.artifact, texts, None)}
        order = list(contenders) if r % 2 == 0 else list(contenders)[::-1]
        for name in order:
            profile = args.out.with_name(f"{args.out.stem}.{name}.round{r}.samples.json") if args.profile else None
            extra = shlex.split(args.this_args if name == "this" else args.baseline_args)
            row[name] = asyncio.run(_serve_once(args, texts, contenders[name], profile, extra))
            offline = row["offline"]["texts_per_s_batch_32"]
            row[name]["served_over_offline"] = round(row[name]["throughput_rps"] / offline, 3)
            sorted_pass = row["offline"]["texts_per_s_sorted"]
            row[name]["served_over_sorted"] = round(row[name]["throughput_rps"] / sorted_pass, 3)
            print(f"round {r + 1} {name}: {row[name]['throughput_rps']} req/s = {row[name]['served_over_offline']:.0%}"
                  f" of offline {offline} texts/s, CPU {row[name].get('server_cpu_ms_per_request')} ms/req, p50 "
                  f"{row[name]['p50_ms']} ms, load {row[name]['load_avg_1m']}", flush=True)
        rounds.append(row)
    ratio = [row["this"]["throughput_rps"] / row["baseline"]["throughput_rps"] for row in rounds]
    cpu = [row["this"]["server_cpu_ms_per_request"] / row["baseline"]["server_cpu_ms_per_request"] for row in rounds]
    result = {
        "run_id": f"serve-ab-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}",
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_model(), "logical_cores": os.cpu_count()},
        "settings": {k: str(v) for k, v in vars(args).items()},
        "rounds": rounds,
        "req_per_s_this_over_baseline": {"rounds": [round(x, 3) for x in ratio], "median": float(np.median(ratio))},
        "cpu_per_request_this_over_baseline": {"rounds": [round(x, 3) for x in cpu], "median": float(np.median(cpu))},
        "served_over_offline": {name: [row[name]["served_over_offline"] for row in rounds] for name in contenders},
        "served_over_sorted": {name: [row[name]["served_over_sorted"] for row in rounds] for name in contenders},
        "seconds": round(time.process_time(), 1),
    }
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    print(json.dumps({k: result[k] for k in ("req_per_s_this_over_baseline", "cpu_per_request_this_over_baseline",
                                             "served_over_offline", "served_over_sorted")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
