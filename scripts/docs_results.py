"""The benchmark results page, rendered from the committed results JSON in ``benchmarks/results/`` only.

Each measured number on the page comes out of a results file, and each section names its file, run id, date and
machine; the tables are drawn by the bench's own renderers (``kolite_bench.summary``, ``report_speed``,
``loadtest_report``, ``soak``, ``long_text``), so a table here is the one ``kolite bench`` writes beside the JSON.
A number appears once: the interpretation lives in the benchmarks guide, which links here instead of quoting.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

__all__ = ["benchmark_results_page", "latest_runs"]

_BENCH_RUN = re.compile(r"^(\d{3})-(\d{8}T\d{6}Z)\.json$")


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def latest_runs(results_dir: Path) -> dict[str, Path]:
    """Seed id → its newest full ``NNN-<UTC stamp>.json`` results file (the stamp sorts as time). A full run has
    the ``kolite-int8`` contender the summary's columns start from; focused runs (a few contenders, e.g. the fair
    OpenVINO comparisons of docs/guides/benchmarks.md) are rendered on their own page, not here."""
    latest: dict[str, Path] = {}
    for path in sorted(results_dir.glob("*.json")):
        match = _BENCH_RUN.match(path.name)
        if match and "kolite-int8" in json.loads(path.read_text(encoding="utf-8")).get("contenders", {}):
            latest[match.group(1)] = path  # sorted by name = by stamp, so the last one wins
    return dict(sorted(latest.items()))


def _when(stamp: str) -> str:
    return f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]} {stamp[9:11]}:{stamp[11:13]} UTC"


def _machine(env: dict[str, Any]) -> str:
    flags = "AMX" if "amx_int8" in env.get("cpu_flags", []) else "VNNI" if env.get("vnni") else "no VNNI"
    vendor = f"{env['cpu_vendor']}, " if env.get("cpu_vendor") else ""
    cores, memory = env.get("logical_cores"), env.get("memory_gb")
    return f"{env.get('cpu_model', '?')} ({vendor}{flags}), {cores} logical cores, {memory} GB"


def _load_average(env: dict[str, Any]) -> str:
    start, end = env.get("load_average_start"), env.get("load_average_end")
    return "–" if not start else f"{start[0]:.1f} → {end[0]:.1f}" if end else f"{start[0]:.1f} at start"


def _runs_table(runs: dict[str, tuple[Path, dict[str, Any]]]) -> list[str]:
    lines = ["| seed | results file | run id | started | machine | 1-min load average | threads |",
             "|---|---|---|---|---|---|---:|"]
    for seed, (path, results) in runs.items():
        env = results["environment"]
        lines.append(f"| {seed} | `benchmarks/results/{path.name}` | `{results['run_id']}` | "
                     f"{_when(results['created_at'])} | {_machine(env)} | {_load_average(env)} | "
                     f"{results['settings'].get('threads', '–')} |")
    return lines


def _run_note(run: dict[str, Any], path: Path) -> str:
    return (f"From `benchmarks/results/{path.name}`: run `{run['run_id']}`, {run['date']}, on {run['machine']}; "
            f"{run['conditions']}.")


def _bs1_rows(results: dict[str, Any]) -> list[str]:
    """Batch-1 latency of a schema-1 run (one pass per contender, no rounds)."""
    rows = ["| contender | bs1 p50 ms | bs1 p99 ms |", "|---|---:|---:|"]
    for name, result in results["contenders"].items():
        if "latency_bs1" in result:
            ms = result["latency_bs1"]["ms"]
            rows.append(f"| {name} | {ms['p50']:.2f} | {ms['p99']:.2f} |")
    return rows


def _seed_section(seed: str, path: Path, results: dict[str, Any]) -> list[str]:
    from kolite_bench.report import accuracy_rows
    from kolite_bench.report_speed import render_speed

    model, data = results["model"], results["dataset"]
    kind = {"trained-standin": "trained stand-in", "standin": "untrained stand-in"}.get(model["source_kind"],
                                                                                        model["source_kind"])
    lines = [f"## {seed}: every contender (run `{results['run_id']}`)", "",
             f"`benchmarks/results/{path.name}`, started {_when(results['created_at'])} on "
             f"{_machine(results['environment'])}; model {model['hub_id'] or 'custom'} ({kind}), data {data['name']} "
             f"({data['n_texts']:,} texts). Latency percentiles, plots and the physical limit: "
             f"`benchmarks/results/{seed}.md`."]
    if results.get("schema") == "kolite-bench/2":
        lines += [line.replace("#### ", "### ") for line in render_speed(results)]
    else:
        lines += ["", "### Speed: one pass per contender (results schema 1, before rotated rounds)", "",
                  *_bs1_rows(results)]
    return [*lines, "", "### Accuracy, whole-set pass and footprint", "", *accuracy_rows(results), ""]


def _loadtest_section(path: Path) -> list[str]:
    from kolite_bench.loadtest_report import markdown_table

    result = _load(path)
    ceiling = result["inference_ceiling"]
    return ["## Serving load test", "", _run_note(result["run"], path), "",
            f"The model alone, same conditions, through its seams: {ceiling['texts_per_s_batch_32']:,} texts/s at "
            f"batch 32 ({ceiling['cpu_ms_per_text_batch_32']} ms of CPU per text; {ceiling['cpu_ms_per_text_batch_1']}"
            " ms one text per call).", "",
            markdown_table(result["rows"], result["settings"]["concurrency"]).rstrip(), ""]


def _soak_section(path: Path) -> list[str]:
    from kolite_bench.soak import render

    result = _load(path)
    return ["## Soak: memory under 30 minutes of load", "", _run_note(result["run"], path), "",
            render(result, "kolite serve, 000 stand-in, int8-static").replace("### ", "### Soak: ").rstrip(), ""]


def _long_text_section(paths: list[Path]) -> list[str]:
    from kolite_bench.long_text import render

    lines = ["## Long texts: truncation against windows", ""]
    for path in paths:
        result = _load(path)
        lines += [_run_note(result["run"], path), "", render(result, "KOTE, 000 stand-in").rstrip(), ""]
    return lines


def _ner_decode_section(path: Path) -> list[str]:
    result = _load(path)
    lines = ["## NER decoding: objects against arrays", "", _run_note(result["run"], path), "",
             f"{result['texts']:,} KLUE-NER sentences, the same model outputs decoded both ways, median of "
             f"{result['rounds']} rounds.", "",
             "| aggregation | per-token objects, ms | arrays, ms | speed-up |", "|---|---:|---:|---:|"]
    for strategy in ("simple", "first", "average"):
        median = result[strategy]["median_seconds"]
        lines.append(f"| `{strategy}` | {median['objects'] * 1000:.0f} | {median['array'] * 1000:.0f} | "
                     f"{result[strategy]['speedup']:.1f}× |")
    return [*lines, ""]


def benchmark_results_page(results_dir: Path) -> str:
    """The whole page; ``results_dir`` is ``benchmarks/results``."""
    runs = {seed: (path, _load(path)) for seed, path in latest_runs(results_dir).items()}
    files = " ".join(f"benchmarks/results/{path.name}" for path, _ in runs.values())
    lines = [
        "<!-- generated by scripts/gen_docs.py from benchmarks/results/*.json; do not edit by hand -->", "",
        "# Benchmark results", "",
        "Every number on this page is rendered from a results file committed in `benchmarks/results/`; each section"
        " names the file, its run id, date and machine. How the numbers are taken: [Benchmarks](benchmarks.md).",
        "No machine of this project reaches the model hub: every model here is a stand-in (see "
        "[the seeds](../getting-started.md#the-seeds)); runs on different machines or days are not comparable.", "",
        "## The runs", "",
        "The newest results file of each seed; every section below comes from one of them.", "",
        *_runs_table(runs), "",
        "One table over all five (kolite's dynamic `int8`, the one kolite variant every run has, against the "
        "originals and the peers) is `benchmarks/results/summary.md`, rendered from the same files by:", "",
        "```bash", f"kolite bench --summary {files}", "```", "",
    ]
    for seed, (path, results) in runs.items():
        lines += _seed_section(seed, path, results)
    lines += _loadtest_section(results_dir / "loadtest-000.json")
    lines += _soak_section(results_dir / "soak-000.json")
    lines += _long_text_section(sorted(results_dir.glob("long-text-000-window*.json"), reverse=True))
    lines += _ner_decode_section(results_dir / "ner-decode-004.json")
    return "\n".join(lines)
