"""ONNX Runtime's own profiler → the slowest ops of an artifact variant, as a markdown table.

    python -m kolite_bench.profile_ops artifacts/000-koelectra-small-v3-nsmc --variant int8 --batch-size 1 \
        --texts 200 --threads 1 [--by node] [--top 15] [--json out.json]

Texts are real NSMC test reviews (``$KOLITE_SHARED``) tokenised by kolite itself and padded exactly as kolite pads
(per batch, to the batch's longest), so the profile is the one `kolite bench` measures. The session is built with
kolite's own options (``kolite.session.build_session_options``) plus ``enable_profiling``; kernel times
(``*_kernel_time`` events) are summed per op type (or per node) and shown with their share of all kernel time.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["OpTime", "markdown_table", "profile_artifact", "summarize_profile"]


@dataclass(frozen=True)
class OpTime:
    name: str  # op type, or node name with --by node
    op_type: str
    calls: int
    total_us: float
    share: float  # of all kernel time in the profile

    @property
    def mean_us(self) -> float:
        return self.total_us / self.calls if self.calls else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "mean_us": self.mean_us}


def summarize_profile(events: Iterable[dict[str, Any]], by: str = "op", runs: int = 1) -> tuple[list[OpTime], float]:
    """Kernel time per op type (``by="op"``) or per node (``by="node"``), slowest first; and the mean wall time of
    one ``model_run`` in µs (0 when the profile holds none). ``runs`` divides totals so they read per inference."""
    totals: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    op_types: dict[str, str] = {}
    run_times: list[float] = []
    for event in events:
        if event.get("cat") == "Session" and event.get("name") == "model_run":
            run_times.append(float(event["dur"]))
        if event.get("cat") != "Node" or not str(event.get("name", "")).endswith("_kernel_time"):
            continue
        op_type = str(event.get("args", {}).get("op_name", "?"))
        key = op_type if by == "op" else str(event["name"])[: -len("_kernel_time")]
        totals[key] += float(event["dur"])
        calls[key] += 1
        op_types[key] = op_type
    grand = sum(totals.values()) or 1.0
    rows = [
        OpTime(key, op_types[key], calls[key] // max(runs, 1), totals[key] / max(runs, 1), totals[key] / grand)
        for key in totals
    ]
    rows.sort(key=lambda row: row.total_us, reverse=True)
    mean_run = sum(run_times) / len(run_times) if run_times else 0.0
    return rows, mean_run


def markdown_table(rows: Sequence[OpTime], top: int = 15) -> str:
    lines = [
        "| op | type | calls / inference | µs / inference | mean µs / call | share of kernel time |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for row in rows[:top]:
        lines.append(
            f"| {row.name} | {row.op_type} | {row.calls} | {row.total_us:.1f} | {row.mean_us:.1f} | "
            f"{row.share * 100:.1f}% |"
        )
    rest = rows[top:]
    if rest:
        rest_us, rest_share = sum(r.total_us for r in rest), sum(r.share for r in rest)
        lines.append(f"| ({len(rest)} more) | | | {rest_us:.1f} | | {rest_share * 100:.1f}% |")
    return "\n".join(lines)


def _nsmc_texts(count: int) -> list[str]:
    from kolite_export.catalogue import read_dataset

    return list(read_dataset("nsmc").texts[:count])


def profile_artifact(
    artifact: str | Path,
    texts: Sequence[str],
    variant: str = "int8",
    batch_size: int = 1,
    threads: int = 1,
    warmup: int = 20,
    by: str = "op",
    model_file: str | Path | None = None,
) -> tuple[list[OpTime], float, int]:
    """Profile ``texts`` through ``artifact``'s variant at ``batch_size``; returns (rows, mean run µs, runs).

    ``model_file`` profiles another graph with the same inputs (a candidate recipe) using the artifact's tokenizer.
    """
    import kolite
    import numpy as np
    from kolite.batching import pad_batch, plan_batches
    from kolite.providers import cpu_device
    from kolite.session import build_session_options, open_session

    model = kolite.load(artifact, variant=variant, threads=threads)
    encoded = model.encoder.encode(list(texts))
    sequences = encoded.sequences
    batches = []
    for indices in plan_batches(encoded.lengths, batch_size):
        feeds = pad_batch([sequences[i] for i in indices], model.manifest.pad_token_id)
        batches.append({name: feeds.get(name, np.zeros_like(feeds["input_ids"])) for name in model.session.input_names})
    model_path = Path(model_file) if model_file else Path(model.artifact_dir) / model.variant.file
    model.close()

    with tempfile.TemporaryDirectory(prefix="kolite-profile-") as scratch:
        # Exactly the session kolite builds on CPU (kolite.session.open_session: its options, the fusions it
        # turns off, from the graph's bytes), plus profiling.
        graph = model_path.read_bytes()
        session = open_session(graph, build_session_options(threads), cpu_device(), str(model_path))
        for feeds in batches[:warmup]:
            session.run(None, feeds)
        options = build_session_options(threads)
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(scratch) / "ort")
        session = open_session(graph, options, cpu_device(), str(model_path))
        for feeds in batches[:warmup]:  # the profiled session warms up too; its first runs are dropped below
            session.run(None, feeds)
        for feeds in batches:
            session.run(None, feeds)
        events = json.loads(Path(session.end_profiling()).read_text())
    # Drop warm-up runs: keep the last len(batches) model_run windows and the kernels inside them.
    runs = [e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"]
    kept = runs[-len(batches) :]
    start = min(e["ts"] for e in kept)
    rows, mean_run = summarize_profile((e for e in events if e.get("ts", 0) >= start), by=by, runs=len(kept))
    return rows, mean_run, len(kept)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kolite_bench.profile_ops", description=__doc__.split("\n")[0])
    parser.add_argument("artifact")
    parser.add_argument("--variant", default="int8")
    parser.add_argument("--texts", type=int, default=200, help="NSMC test texts (file order)")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--by", choices=("op", "node"), default="op")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--model-file", type=Path, help="profile this .onnx instead (same inputs; candidate recipes)")
    args = parser.parse_args(argv)
    texts = _nsmc_texts(args.texts)
    rows, mean_run, runs = profile_artifact(
        args.artifact,
        texts,
        args.variant,
        args.batch_size,
        args.threads,
        by=args.by,
        model_file=args.model_file,
    )
    kernel = sum(r.total_us for r in rows)
    print(
        f"{args.artifact} [{args.variant}] batch {args.batch_size}, {args.threads} thread(s), {runs} runs over "
        f"{len(texts)} NSMC texts: model_run {mean_run:.0f} µs, kernels {kernel:.0f} µs "
        f"({kernel / mean_run * 100 if mean_run else 0:.0f}%) per inference\n"
    )
    print(markdown_table(rows, args.top))
    if args.json:
        payload = {
            "artifact": str(args.artifact),
            "variant": args.variant,
            "batch_size": args.batch_size,
            "threads": args.threads,
            "texts": len(texts),
            "runs": runs,
            "model_run_us": mean_run,
            "kernel_us": kernel,
            "rows": [r.to_dict() for r in rows],
        }
        args.json.write_text(json.dumps(payload, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
