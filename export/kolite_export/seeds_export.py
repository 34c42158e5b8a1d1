"""``kolite export --all-seeds``: the five seeds from the hub, or from stand-ins when the hub is unreachable."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from kolite.errors import OfflineError
from kolite.sources import is_offline

from kolite_export.catalogue import SEEDS, SeedModel
from kolite_export.exporter import ExportOptions
from kolite_export.paths import cache_dir, shared_dir
from kolite_export.report import export_and_report

__all__ = ["export_all_seeds", "standin_source"]


def standin_source(seed: SeedModel, size: str, shared: str | None = None) -> Path:
    """The offline source of a seed: its trained stand-in where the data folder has one, else a project-built one.

    A trained stand-in always wins over a built one, whatever ``size``: it is the only kind whose answers mean
    something, and ``size`` only chooses how big the *built* stand-ins are.
    """
    if seed.trained_standin:
        path = shared_dir(shared) / "standins" / seed.trained_standin
        if path.is_dir():
            return path
    from kolite_export.standins import build_standin
    from kolite_export.standins.build import STANDIN_FORMAT, STANDIN_INFO

    out = cache_dir() / "standins" / size / seed.seed_id
    info = out / STANDIN_INFO
    if info.is_file() and f'"format": {STANDIN_FORMAT}' in info.read_text(encoding="utf-8"):
        return out
    return build_standin(seed.seed_id, size, out, shared=shared)


def export_all_seeds(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    from kolite_export.exporter import ExportOptions

    seeds = [SEEDS[s.strip()] for s in args.seeds.split(",")] if args.seeds else list(SEEDS.values())
    worst = 0
    for seed in seeds:
        options = ExportOptions.from_args(
            args, name=seed.artifact_name, validation_data=args.validation_data or seed.dataset
        )
        out = Path(args.out_dir) / seed.artifact_name
        if seed.hub_id and not is_offline():
            code = _try_hub(seed, out, options, progress)
            if code is not None:
                worst = max(worst, code)
                continue
        source = standin_source(seed, args.size, args.shared)
        progress(f"{seed.seed_id}: offline, using the stand-in {source}")
        worst = max(worst, export_and_report(str(source), out, options, progress))
    return worst


def _try_hub(seed: SeedModel, out: Path, options: ExportOptions, progress: Callable[[str], None]) -> int | None:
    """Export from the hub; None when the hub cannot be reached (the caller falls back to the stand-in)."""
    from kolite_export.sources import resolve_source

    try:
        source = resolve_source(seed.hub_id or "", options.revision)
    except OfflineError as exc:
        progress(f"{seed.seed_id}: {exc}")
        return None
    return export_and_report(str(source.folder), out, options, progress)
