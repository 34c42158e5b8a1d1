"""Load-test results → markdown table and PNG plot (throughput and latency vs concurrency, batching on/off)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["markdown_table", "plot"]


def markdown_table(rows: list[dict[str, Any]], levels: list[int]) -> str:
    """One line per concurrency level; CPU = server CPU time per answered request (robust to a busy machine)."""
    by = {(r["mode"], r["concurrency"]): r for r in rows}
    lines = ["| clients | batching req/s | p50 ms | p99 ms | mean batch | CPU ms/req | no batching req/s | p50 ms "
             "| p99 ms | CPU ms/req | speed-up |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for c in levels:
        on, off = by.get(("batching", c)), by.get(("no-batching", c))
        if not on or not off:
            continue
        ratio = on["throughput_rps"] / max(off["throughput_rps"], 1e-9)
        lines.append(f"| {c} | {on['throughput_rps']:.0f} | {on['p50_ms']:.1f} | {on['p99_ms']:.1f} | "
                     f"{on['mean_batch_items']:.1f} | {on.get('server_cpu_ms_per_request', '')} | "
                     f"{off['throughput_rps']:.0f} | {off['p50_ms']:.1f} | {off['p99_ms']:.1f} | "
                     f"{off.get('server_cpu_ms_per_request', '')} | {ratio:.2f}x |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    """Throughput, latency (p50 dashed, p99 solid) and server CPU per request vs concurrency, per mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, middle, right) = plt.subplots(1, 3, figsize=(15, 4))
    for mode, marker, color in (("batching", "o", "tab:blue"), ("no-batching", "s", "tab:orange")):
        data = sorted((r for r in rows if r["mode"] == mode), key=lambda r: r["concurrency"])
        xs = [r["concurrency"] for r in data]
        style = {"marker": marker, "color": color}
        left.plot(xs, [r["throughput_rps"] for r in data], label=mode, **style)
        middle.plot(xs, [r["p99_ms"] for r in data], label=f"{mode} p99", **style)
        middle.plot(xs, [r["p50_ms"] for r in data], linestyle="--", label=f"{mode} p50", **style)
        right.plot(xs, [r.get("server_cpu_ms_per_request", float("nan")) for r in data], label=mode, **style)
    axes = ((left, "requests / s"), (middle, "latency (ms)"), (right, "server CPU ms / request"))
    for axis, label in axes:
        axis.set_xscale("log", base=2)
        axis.set_xlabel("concurrent clients")
        axis.set_ylabel(label)
        axis.grid(True, alpha=0.3)
        axis.legend()
    middle.set_yscale("log")
    left.set_ylim(bottom=0)
    right.set_ylim(bottom=0)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
