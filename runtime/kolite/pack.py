"""``kolite pack``: a copy of an artifact that holds only the variants that will be served.

An exported artifact carries every variant (fp32, fp32-opt, int8, int8-static: ~165 MB for a small ELECTRA); a
container or an edge box serves one. The packed copy keeps the manifest's schema and every field of the kept
variants as written by export (gates, recipe, rank, cpu_features): only the other variants' entries go. Every
copied file is checked against its recorded sha256, and the copy is built in a temporary folder beside the
destination and renamed into place, so a failed pack leaves nothing half-written.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kolite.errors import KoliteError
from kolite.integrity import safe_member, verify_file
from kolite.manifest import MANIFEST_FILE, MAX_MANIFEST_BYTES, load_manifest

__all__ = ["pack", "register"]


def pack(artifact: str | Path, variants: Sequence[str], out: str | Path) -> Path:
    """Copy ``artifact`` to ``out`` with only ``variants``; returns ``out``. ``out`` must not exist yet (or be an
    empty folder). Raises KoliteError on an unknown or failed variant, a file that does not verify, or an ``out``
    that would overwrite something."""
    source, target = Path(artifact), Path(out)
    manifest = load_manifest(source)  # validates the schema before anything is copied
    wanted = list(dict.fromkeys(variants))
    if not wanted:
        raise KoliteError("pack: name at least one variant to keep (--variants int8-static)")
    unknown = [name for name in wanted if name not in manifest.variants]
    if unknown:
        raise KoliteError(f"pack: {manifest.name} has no variant {', '.join(map(repr, unknown))}; "
                          f"it has {', '.join(manifest.variants)}")
    failed = [name for name in wanted if not manifest.variants[name].passed]
    if failed:
        raise KoliteError(f"pack: variant {', '.join(map(repr, failed))} failed validation; packing it would ship a "
                          "model kolite refuses to pick")
    if target.resolve() == source.resolve():
        raise KoliteError("pack: --out must differ from the artifact folder")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise KoliteError(f"pack: {target} already exists and is not an empty folder; choose a new --out")

    data = _raw_manifest(source)
    data["variants"] = {name: entry for name, entry in data["variants"].items() if name in wanted}
    for name, entry in data["variants"].items():
        # A fidelity guard re-runs uncertain rows in its float variant: without that graph it cannot run, so the
        # packed variant serves unguarded (its gate numbers are still the ones export measured).
        float_variant = (entry.get("guard") or {}).get("float_variant")
        if float_variant and float_variant not in wanted:
            entry.pop("guard")
            print(f"kolite pack: {name} keeps no fidelity guard: its float graph {float_variant} is not packed "
                  f"(add it to --variants to keep the guard, about its size in memory)", file=sys.stderr)
    files = [manifest.tokenizer] + [manifest.variants[name] for name in wanted]

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    staging.chmod(0o755)  # mkdtemp's 0700 would hide the model from a server running as another user
    try:
        for ref in files:
            copied = safe_member(staging, ref.file)
            copied.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(safe_member(source, ref.file), copied)
            verify_file(copied, ref.sha256, ref.size_bytes)  # the bytes shipped are the bytes validated
        (staging / MANIFEST_FILE).write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        load_manifest(staging)
        if target.exists():
            target.rmdir()  # empty, checked above
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _raw_manifest(source: Path) -> dict[str, Any]:
    """The manifest as written (unknown fields of a newer 1.x writer included), not re-serialised by this reader."""
    path = source / MANIFEST_FILE
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise KoliteError(f"{path} is over {MAX_MANIFEST_BYTES} bytes")
    return json.loads(path.read_text(encoding="utf-8"))


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``pack`` subcommand to the kolite CLI."""
    parser = subparsers.add_parser(
        "pack",
        help="copy an artifact with only the variants to serve (smaller images and edge installs)",
        description="Write a copy of ARTIFACT that holds only --variants (plus the tokenizer and the manifest, "
                    "which keeps its schema and the kept variants' gate results). Every file is verified.",
    )
    parser.add_argument("artifact", type=Path, help="artifact folder")
    parser.add_argument("--variants", required=True,
                        help="comma-separated variants to keep, e.g. int8-static or int8-static,fp32")
    parser.add_argument("--out", required=True, type=Path, help="new folder to write (must not exist, or be empty)")
    parser.set_defaults(func=run_pack)
    return parser


def run_pack(args: argparse.Namespace) -> int:
    variants = [name.strip() for name in args.variants.split(",") if name.strip()]
    out = pack(args.artifact, variants, args.out)
    size = sum(path.stat().st_size for path in out.iterdir())
    print(f"kolite pack: wrote {out} ({', '.join(variants)}; {size / 1e6:.1f} MB)", file=sys.stderr)
    return 0
