"""``kolite export`` and ``kolite standins`` (registered through the ``kolite.commands`` entry points).

Only argparse wiring lives at import time: torch and friends are imported inside the commands, so ``kolite
--help`` stays fast and works in the torch-free runtime venv.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from kolite_export.gates import DEFAULT_VALIDATION_SIZES

__all__ = ["register", "register_standins"]


def _progress(message: str) -> None:
    print(f"[kolite export] {message}", file=sys.stderr, flush=True)


def _variants(text: str) -> tuple[str, ...]:
    names = tuple(v.strip() for v in text.split(",") if v.strip())
    if not names:
        raise argparse.ArgumentTypeError("no variant named")
    return names


def _variants_help() -> str:
    from kolite_export.variants import VARIANTS, default_variants

    listed = "; ".join(f"{name}: {spec.summary}" for name, spec in VARIANTS.items())
    return f"comma list of variants (default: {','.join(default_variants())}). {listed}"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "export",
        help="PyTorch checkpoint (folder or hub id) → validated, quantized ONNX artifact",
        description="Export a checkpoint to a kolite artifact. Every variant is compared with the PyTorch original "
        "on real Korean text before it is written; exit 1 if a variant fails its gate (it is written marked "
        "failed), 2 on bad input (nothing is left in --out).",
    )
    parser.add_argument("source", nargs="?", help="checkpoint folder or Hugging Face hub id (owner/name)")
    parser.add_argument("--out", help="artifact folder to write (e.g. artifacts/NAME)")
    parser.add_argument(
        "--variants",
        type=_variants,
        default=None,
        help=_variants_help(),
    )
    parser.add_argument("--validation-data", help="nsmc, kote, klue-ner or a text file (default: by task)")
    parser.add_argument(
        "--validation-size",
        type=int,
        default=None,
        help="validation texts, spread over the set (default: "
        + ", ".join(f"{n:,} for {task}" for task, n in DEFAULT_VALIDATION_SIZES.items())
        + "; 0 = the whole set)",
    )
    parser.add_argument(
        "--no-repair",
        action="store_true",
        help="write an int8 variant that misses its gate as failed instead of keeping its most sensitive nodes in "
        "float until it passes",
    )
    parser.add_argument("--revision", help="hub revision (branch, tag or commit) to pin")
    parser.add_argument("--name", help="artifact name in the manifest (default: the --out folder name)")
    parser.add_argument("--force", action="store_true", help="re-export even if --out is already up to date")
    parser.add_argument("--shared", help="shared data folder (default: $KOLITE_SHARED or <repo>/../shared)")
    parser.add_argument("--all-seeds", action="store_true", help="export the five seed models into --out-dir")
    parser.add_argument("--out-dir", default="artifacts", help="with --all-seeds: where the artifacts go")
    parser.add_argument(
        "--size",
        choices=("tiny", "full"),
        default="full",
        help="with --all-seeds offline: size of the stand-ins kolite builds (000/004 use the trained stand-ins "
        "from $KOLITE_SHARED/standins whenever they are there)",
    )
    parser.add_argument("--seeds", default=None, help="with --all-seeds: comma list of seed ids (default: all)")
    parser.set_defaults(func=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    if args.all_seeds:
        from kolite_export.seeds_export import export_all_seeds

        return export_all_seeds(args, _progress)
    if not args.source or not args.out:
        print("kolite export: error: give SOURCE and --out (or --all-seeds)", file=sys.stderr)
        return 2
    from kolite_export.exporter import ExportOptions
    from kolite_export.report import export_and_report

    return export_and_report(args.source, Path(args.out), ExportOptions.from_args(args), _progress)


def register_standins(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "standins",
        help="write stand-in checkpoints of the five seeds (exact layouts, deterministic weights)",
        description="The hub is unreachable here: write checkpoints with each seed's architecture, vocabulary "
        "size, special-token ids, labels and file layout, weights from torch.manual_seed (answers are random).",
    )
    parser.add_argument("--size", choices=("tiny", "full"), default="tiny")
    parser.add_argument("--out", required=True, help="folder; each seed goes to OUT/<seed id>")
    parser.add_argument("--seeds", default="000,001,002,003,004", help="comma list of seed ids")
    parser.add_argument("--shared", help="shared data folder (default: $KOLITE_SHARED or <repo>/../shared)")
    parser.set_defaults(func=_run_standins)


def _run_standins(args: argparse.Namespace) -> int:
    from kolite_export.catalogue import SEEDS
    from kolite_export.standins import build_standin

    seeds = tuple(s.strip() for s in args.seeds.split(",") if s.strip())
    unknown = [s for s in seeds if s not in SEEDS]
    if unknown:
        print(
            f"kolite standins: error: unknown seed(s) {', '.join(unknown)}; known: {', '.join(SEEDS)}", file=sys.stderr
        )
        return 2
    for seed in seeds:
        try:
            path = build_standin(seed, args.size, Path(args.out) / seed, shared=args.shared)
        except FileNotFoundError as exc:
            print(f"kolite standins: error: {exc}", file=sys.stderr)
            return 2
        print(f"{seed}  {SEEDS[seed].layout:32s}  {path}")
    return 0
