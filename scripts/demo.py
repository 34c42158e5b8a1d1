"""kolite's main job, end to end: `./kolite.sh demo`.

1. export the five seed models (from the hub when reachable; offline from stand-ins, and says which, loudly),
   validating every variant against the PyTorch original (the export's accuracy gate);
2. classify and tag a handful of Korean sentences with each through the torch-free runtime (in a subprocess where
   torch cannot be imported) and time batch-1 latency;
3. run the quick benchmark (every contender on the 000 model);
4. print one summary table.
Safe to re-run: exports that are still valid are reused.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "scripts"


def banner(text: str) -> None:
    line = "=" * max(60, len(text) + 4)
    print(f"\n{line}\n  {text}\n{line}", file=sys.stderr, flush=True)


def kolite_cli(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "kolite"), *args]


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    print("$ " + " ".join(Path(cmd[0]).name if i == 0 else c for i, c in enumerate(cmd)), file=sys.stderr, flush=True)
    return subprocess.run(cmd, cwd=REPO, check=True, **kwargs)


def export_all(out_dir: Path, size: str, force: bool) -> None:
    banner("1/4  export the five seed models (validated against PyTorch)")
    cmd = kolite_cli("export", "--all-seeds", "--out-dir", str(out_dir), "--size", size)
    run([*cmd, "--force"] if force else cmd)


def runtime_smoke(artifacts: list[Path]) -> list[dict]:
    banner("2/4  classify and tag through the torch-free runtime (torch made unimportable)")
    proc = run([sys.executable, str(SCRIPTS / "block_heavy_imports.py"), str(SCRIPTS / "runtime_smoke.py"),
                *map(str, artifacts)], stdout=subprocess.PIPE, text=True)
    return json.loads(proc.stdout)


def quick_bench(out_dir: Path, artifact: Path, rebench: bool) -> None:
    banner("3/4  quick benchmark: PyTorch, pipeline, optimum int8 and kolite variants on 000")
    # The same artifact measured by the same harness gives the same table: a re-run shows it instead of
    # spending minutes re-measuring (--rebench forces a new run).
    manifest = json.loads((artifact / "manifest.json").read_text(encoding="utf-8"))
    stamp = json.dumps(sorted(v["sha256"] for v in manifest["variants"].values()))
    stamp_file, table = out_dir / "demo-stamp.json", out_dir / "000-quick.md"
    if not rebench and table.is_file() and stamp_file.is_file() and stamp_file.read_text() == stamp:
        print(f"(artifact unchanged: showing {table.relative_to(REPO)}; --rebench re-measures)", file=sys.stderr)
    else:
        run(kolite_cli("bench", "--model", "000", "--artifact", str(artifact), "--quick", "--out", str(out_dir)))
        stamp_file.write_text(stamp)
    print(table.read_text(encoding="utf-8"), file=sys.stderr)


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def origin_of(source: dict) -> str:
    """Where an artifact came from, said plainly: the hub, a trained stand-in, or a stand-in kolite built."""
    if source.get("kind") == "hub":
        return f"hub {source.get('id')}"
    path = Path(str(source.get("id", "")))
    if (path / "standin.json").is_file():
        info = json.loads((path / "standin.json").read_text(encoding="utf-8"))
        return f"stand-in built by kolite ({info.get('size', '?')}, random weights)"
    if path.parent.name == "standins":
        return "trained stand-in (shared/standins)"
    return f"local folder {path.name}"


def announce_sources(artifacts: list[Path]) -> None:
    origins = {
        path.name: origin_of(json.loads((path / "manifest.json").read_text(encoding="utf-8")).get("source", {}))
        for path in artifacts
    }
    if all(origin.startswith("hub ") for origin in origins.values()):
        return
    banner("OFFLINE: the model hub was not reachable, so these are STAND-INS, not the seed models' weights")
    for name, origin in origins.items():
        print(f"  {name:<34} {origin}", file=sys.stderr)


def summary(artifacts: list[Path], smoke: list[dict]) -> str:
    by_path = {Path(row["artifact"]).name: row for row in smoke}
    header = "| model | source | variant | size MB | agreement with original | entity agreement | p50 bs1 ms |"
    rows = [header, "|" + "---|" * 7]
    for path in artifacts:
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        timing = by_path.get(path.name, {})
        variant = manifest["variants"].get(timing.get("variant", ""), {})
        gate = variant.get("validation", {})
        agreement = gate.get("label_agreement", gate.get("token_label_agreement"))
        entities = gate.get("entity_agreement")
        rows.append(
            f"| {manifest['name']} | {origin_of(manifest.get('source', {}))} | {variant.get('name', '?')} "
            f"| {variant.get('size_bytes', 0) / 1e6:.1f} | {percent(agreement)} | {percent(entities)} "
            f"| {timing.get('p50_ms', float('nan')):.2f} |"
        )
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", type=Path, default=REPO / "artifacts")
    parser.add_argument("--standin-size", choices=("tiny", "full"), default="tiny",
                        help="size of the stand-ins the project builds for 001-003 when offline (default: tiny)")
    parser.add_argument("--skip-bench", action="store_true")
    parser.add_argument("--force", action="store_true", help="re-export even if valid artifacts exist")
    parser.add_argument("--rebench", action="store_true", help="re-run the quick benchmark even if nothing changed")
    args = parser.parse_args()
    os.environ.setdefault("KOLITE_SHARED", str(REPO.parent / "shared"))
    started = time.perf_counter()
    export_all(args.out_dir, args.standin_size, args.force)
    artifacts = sorted(p.parent for p in args.out_dir.glob("[0-9][0-9][0-9]-*/manifest.json"))
    announce_sources(artifacts)
    smoke = runtime_smoke(artifacts)
    if not args.skip_bench:
        quick_bench(REPO / "benchmarks" / "results" / "quick", artifacts[0], args.rebench)
    banner(f"4/4  summary ({time.perf_counter() - started:.0f} s)")
    print(summary(artifacts, smoke))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
