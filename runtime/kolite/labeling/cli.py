"""``kolite label``: label a CSV/TSV/JSONL/Parquet file with an exported model, locally or on a Ray cluster."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from kolite.cli import add_guard_option
from kolite.errors import KoliteError
from kolite.labeling.formats import format_names
from kolite.labeling.job import DEFAULT_PART_ROWS, DEFAULT_STALL_TIMEOUT, LabelJob, label_file

__all__ = ["register", "run"]

EPILOG = """\
Every input column is kept; the output adds label and score (entities, as JSON, for NER models) and error.
Rows that cannot be labelled (empty, null, non-text, undecodable, malformed) keep their place with a message in
the error column. The output is written in parts under OUTPUT.parts/: re-running the same command after an
interruption resumes where it stopped. Examples:

  kolite label reviews.tsv --model artifacts/000-koelectra-small-v3-nsmc --text-column document --out out.tsv
  kolite label data.parquet --model ART --text-column text --out labelled.parquet --engine ray --address auto
"""


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "label",
        help="label a CSV/TSV/JSONL/Parquet file (resumable; local cores or a Ray cluster)",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "input", type=Path, help="input file (.csv .tsv .txt .jsonl .parquet; .gz/.bz2/.xz for text formats)"
    )
    parser.add_argument("--model", required=True, help="artifact folder (or hub id) of an exported kolite model")
    parser.add_argument("--out", dest="output", required=True, type=Path, help="output file (format from extension)")
    parser.add_argument("--text-column", default="document", help="column holding the text (default: document)")
    parser.add_argument("--variant", default="auto", help="model variant (default: auto)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto (default: cpu)")
    parser.add_argument(
        "--input-format",
        choices=format_names(),
        help="override the input format (tsv-raw: TSV without quote processing, e.g. NSMC)",
    )
    parser.add_argument("--output-format", choices=format_names(), help="override the output format")
    parser.add_argument(
        "--encoding",
        default="auto",
        help="of CSV/TSV/JSONL input: auto (default: a BOM, else UTF-8 if valid, else detected, e.g. CP949 for "
        "Excel and Korean public-data files) or a codec name (cp949, euc-kr, utf-16...). Output is always UTF-8",
    )
    parser.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="local: worker processes on this machine; ray: Ray actors label, this process reads "
                             "and writes (default: local)")
    parser.add_argument(
        "--address", help="Ray cluster address (auto, ray://host:10001); default: start a new local Ray instance"
    )
    parser.add_argument(
        "--stall-timeout",
        type=float,
        default=DEFAULT_STALL_TIMEOUT,
        help=f"ray: stop with an error after this many seconds without progress (default: {DEFAULT_STALL_TIMEOUT:g})",
    )
    parser.add_argument("--batch-size", type=int, default=32, help="texts per model call (default: 32)")
    parser.add_argument(
        "--part-rows",
        type=int,
        default=DEFAULT_PART_ROWS,
        help=f"rows per output part = resume granularity (default: {DEFAULT_PART_ROWS})",
    )
    parser.add_argument("--workers", type=int,
                        help="worker processes (local) or Ray actors (ray) (default: local: the CPU budget divided "
                             "by --threads; ray: as many actors as the nodes' CPUs hold)")
    parser.add_argument("--threads", type=int,
                        help="ONNX Runtime intra-op threads per worker/actor (default: local: 1 per process, or the "
                             "CPU budget divided by --workers; ray: 1)")
    add_guard_option(parser)
    parser.add_argument(
        "--prefix",
        default="",
        help="prefix for the added columns, e.g. pred_ when the input already has a label column",
    )
    parser.add_argument(
        "--allow-empty",
        action="store_true",
        help="label empty/whitespace texts like the runtime does instead of flagging 'empty text'",
    )
    parser.add_argument("--long-text", choices=("truncate", "windows"),
                        help="classification: texts over max_length tokens are truncated (default) or classified "
                             "over overlapping windows whose logits are pooled")
    parser.add_argument("--pooling", choices=("mean", "max"), help="how windows combine (default: mean)")
    parser.add_argument("--stride", type=int, default=None,
                        help="overlap of long-text windows in tokens (NER; classification windows)")
    parser.add_argument("--restart", action="store_true", help="discard the parts of an earlier, different job")
    parser.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    parser.add_argument("--keep-parts", action="store_true", help="keep OUTPUT.parts/ after the final file is written")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    parser.add_argument("--summary-json", type=Path, help="also write the end-of-job summary as JSON here")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    job = LabelJob(
        input=args.input,
        output=args.output,
        model=args.model,
        text_column=args.text_column,
        variant=args.variant,
        device=args.device,
        input_format=args.input_format,
        output_format=args.output_format,
        batch_size=args.batch_size,
        part_rows=args.part_rows,
        workers=args.workers,
        threads=args.threads,
        prefix=args.prefix,
        allow_empty=args.allow_empty,
        restart=args.restart,
        overwrite=args.overwrite,
        keep_parts=args.keep_parts,
        progress=args.progress,
        engine=args.engine,
        address=args.address,
        long_text=args.long_text,
        pooling=args.pooling,
        stride=args.stride,
        encoding=args.encoding,
        stall_timeout=args.stall_timeout,
        guard=args.guard,
    )
    try:
        summary = label_file(job)
    except KoliteError as exc:
        print(f"kolite label: error: {exc}", file=sys.stderr)
        return 2
    print(summary.render(), file=sys.stderr)
    if args.summary_json:
        args.summary_json.write_text(summary.to_json() + "\n", encoding="utf-8")
    return 0
