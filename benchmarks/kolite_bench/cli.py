"""``kolite bench``: registered into the runtime CLI by entry point (``kolite.commands``)."""

from __future__ import annotations

import argparse
import json
import socket
import sys
from pathlib import Path
from typing import Any

from kolite.sources import is_offline

from kolite_bench.config import REPO_ROOT, SEEDS, BenchConfig, SeedModel, all_contenders, shared_dir

__all__ = ["register", "resolve_source", "run_command"]

QUICK = {"limit": 300, "latency_texts": 40, "latency_repeats": 2, "warmup": 1, "sweep_texts": 64,
         "sweep_batch_sizes": (1, 8, 32), "cold_start_repeats": 1, "throughput_texts": 128}


def _hub_reachable() -> bool:
    if is_offline():
        return False
    try:
        socket.create_connection(("huggingface.co", 443), timeout=2).close()
    except OSError:
        return False
    return True


def _local_kind(path: Path) -> str:
    if (path / "standin.json").is_file():
        return "standin"  # built by `kolite standins` (deterministic weights, untrained)
    if (path / "training_summary.json").is_file() and path.parent.name == "standins":
        return "trained-standin"
    return "local"


def _offline_standin(seed: SeedModel) -> Path:
    """The exporter's full-size stand-in (trained one from $KOLITE_SHARED for 000/004, else built once, cached)."""
    from kolite_export.seeds_export import standin_source

    if not seed.trained_standin:
        print(f"[kolite bench] hub unreachable: using the full-size stand-in of {seed.seed_id} (built once if"
              " missing)", file=sys.stderr)
    return Path(standin_source(seed, "full"))


def resolve_source(seed: SeedModel, source: str | None) -> tuple[str, str]:
    """The PyTorch original to compare against and what it is: (path or hub id, kind)."""
    if source:
        path = Path(source)
        return (source, _local_kind(path)) if path.exists() else (source, "hub")
    if seed.hub_id and _hub_reachable():
        from huggingface_hub import snapshot_download

        return snapshot_download(seed.hub_id), "hub"
    path = _offline_standin(seed)
    return str(path), _local_kind(path)


def _parse_limits(items: list[str]) -> dict[str, int]:
    limits = {}
    for item in items:
        name, _, value = item.partition("=")
        if name not in all_contenders() or not value.isdigit():
            raise SystemExit(
                f"kolite bench: --contender-limit wants NAME=N with NAME in {all_contenders()}, got {item!r}"
            )
        limits[name] = int(value)
    return limits


def build_config(args: argparse.Namespace) -> BenchConfig:
    seed = SEEDS[args.model]
    source, kind = resolve_source(seed, args.source)
    artifact = Path(args.artifact) if args.artifact else REPO_ROOT / "artifacts" / seed.artifact_name
    if not (artifact / "manifest.json").is_file():
        raise SystemExit(f"kolite bench: {artifact} is not an exported artifact; run"
                         f" `kolite export {source} --out {artifact}` first")
    quick: dict[str, Any] = QUICK if args.quick else {}
    limit = args.limit if args.limit is not None else quick.get("limit")
    extra = {k: v for k, v in quick.items() if k != "limit"}
    if args.latency_texts is not None:
        extra["latency_texts"] = args.latency_texts
    if args.sweep_texts is not None:
        extra["sweep_texts"] = args.sweep_texts
    if args.throughput_texts is not None:
        extra["throughput_texts"] = args.throughput_texts
    if args.rounds is not None:
        if args.rounds < 1:
            raise SystemExit("kolite bench: --rounds must be at least 1")
        extra["rounds"] = args.rounds
    return BenchConfig(seed=seed, artifact=artifact, source=source, source_kind=kind,
                       contenders=tuple(args.contenders), out_dir=Path(args.out), threads=args.threads,
                       batch_size=args.batch_size, limit=limit, contender_limits=_parse_limits(args.contender_limit),
                       quick=args.quick, resume=args.resume, gemm=not args.no_gemm,
                       install_size=not args.no_install_size, include_failed=args.include_failed,
                       data_dir=Path(args.data_dir) if args.data_dir else shared_dir() / "data", **extra)


def run_command(args: argparse.Namespace) -> int:
    from kolite_bench.runner import run_bench

    if args.summary:
        from kolite_bench.summary import write_summary

        target = write_summary([Path(p) for p in args.summary], Path(args.out))
        print(target.read_text(encoding="utf-8"))
        return 0
    if args.render:
        results = json.loads(Path(args.render).read_text(encoding="utf-8"))
        return write_outputs(results, Path(args.out))
    return write_outputs(run_bench(build_config(args)), Path(args.out))


def write_outputs(results: dict[str, Any], out: Path) -> int:
    """Results JSON (per run and a stable "latest" copy), the markdown table and the plots."""
    from kolite_bench.plots import write_plots
    from kolite_bench.report import render_markdown

    stem = f"{results['model']['seed_id']}{'-quick' if results['settings']['quick'] else ''}"
    out.mkdir(parents=True, exist_ok=True)
    # One file per run (run_id) plus a stable "latest" copy the README links to.
    for name in (results["run_id"], stem):
        (out / f"{name}.json").write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")
    markdown = render_markdown(results)
    (out / f"{stem}.md").write_text(markdown, encoding="utf-8")
    plots = write_plots(results, out / "plots", stem)
    print(markdown)
    print(f"results: {out / (results['run_id'] + '.json')}; table: {out / (stem + '.md')}; plots: "
          + ", ".join(str(p) for p in plots))
    failed = [n for n, r in results["contenders"].items() if "error" in r]
    if failed:
        print(f"kolite bench: contenders failed: {failed}", file=sys.stderr)
    return 1 if failed else 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "bench", help="accuracy and speed of kolite's variants against the PyTorch original, optimum and OpenVINO",
        description="Run every contender on the same texts: PyTorch original (seed-card recipe and padding to"
        " longest), transformers pipeline, optimum int8, OpenVINO NNCF int8 (latency and throughput hints), and"
        " kolite's variants. Speed is measured in rotated rounds, each contender alone in a fresh process."
        " Writes JSON, markdown and plots.")
    parser.add_argument("--model", choices=sorted(SEEDS), default="000", help="seed model id (default 000)")
    parser.add_argument("--artifact", help="kolite artifact folder (default artifacts/<seed name>)")
    parser.add_argument("--source", help="the PyTorch original: local folder or hub id (default: hub if reachable,"
                        " else the stand-in)")
    contenders = all_contenders()
    parser.add_argument("--contenders", nargs="+", choices=contenders, default=list(contenders), metavar="NAME",
                        help=f"subset of {', '.join(contenders)}")
    parser.add_argument("--quick", action="store_true", help="a few hundred texts, fewer repeats (CI smoke test)")
    parser.add_argument("--limit", type=int, help="use the first N texts of the data set")
    parser.add_argument("--contender-limit", action="append", default=[], metavar="NAME=N",
                        help="cap one contender's whole-set pass at N texts (e.g. torch=5000 for the slow recipe)")
    parser.add_argument("--latency-texts", type=int, help="texts timed at batch 1 (default 300)")
    parser.add_argument("--sweep-texts", type=int, help="texts of the throughput-vs-batch-size sweep (default 384)")
    parser.add_argument("--rounds", type=int, help="speed rounds, contender order rotated each round (default 3)")
    parser.add_argument("--throughput-texts", type=int, help="texts per round of the sorted and file-order batch"
                        " passes (default 1024; each round takes the next group)")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads for every contender (default 2)")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size of the whole-set pass (default 32)")
    parser.add_argument("--data-dir", help="data folder (default $KOLITE_SHARED/data)")
    parser.add_argument("--out", default=str(REPO_ROOT / "benchmarks" / "results"), help="results folder")
    parser.add_argument("--resume", metavar="RUN_ID", help="reuse the contenders an interrupted run finished"
                        " (results/raw/RUN_ID)")
    parser.add_argument("--render", metavar="RESULTS_JSON", help="only re-write the table and plots of a results"
                        " file")
    parser.add_argument("--summary", nargs="+", metavar="RESULTS_JSON",
                        help="only write one table over several seeds' results files (OUT/summary.md)")
    parser.add_argument("--include-failed", action="store_true",
                        help="also time kolite variants that failed their export gate (marked as such)")
    parser.add_argument("--no-gemm", action="store_true", help="skip the GEMM micro-benchmark / physical limit")
    parser.add_argument("--no-install-size", action="store_true",
                        help="do not build the runtime-only venv to measure install size")
    parser.set_defaults(func=run_command)
    return parser
