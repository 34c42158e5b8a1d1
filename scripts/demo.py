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


def quick_bench(out_dir: Path, artifact: Path) -> None:
    banner("3/4  quick benchmark: PyTorch, pipeline, optimum int8 and kolite variants on 000")
    run(kolite_cli("bench", "--model", "000", "--artifact", str(artifact), "--quick", "--out", str(out_dir)))


def summary(artifacts: list[Path], smoke: list[dict]) -> str:
    by_path = {Path(row["artifact"]).name: row for row in smoke}
    header = "| model | source | variant | size MB | agreement with original | p50 bs1 ms |"
    rows = [header, "|" + "---|" * 6]
    for path in artifacts:
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        timing = by_path.get(path.name, {})
        variant = manifest["variants"].get(timing.get("variant", ""), {})
        gate = variant.get("validation", {})
        agreement = gate.get("label_agreement", gate.get("token_label_agreement"))
        source = manifest.get("source", {})
        origin = source.get("kind") or ("stand-in" if source.get("standin") else "hub")
        rows.append(
            f"| {manifest['name']} | {origin} | {variant.get('name', '?')} | {variant.get('size_bytes', 0) / 1e6:.1f} "
            f"| {'n/a' if agreement is None else f'{agreement:.2%}'} | {timing.get('p50_ms', float('nan')):.2f} |"
        )
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", type=Path, default=REPO / "artifacts")
    parser.add_argument("--standin-size", choices=("tiny", "full"), default="tiny",
                        help="size of the stand-ins the project builds for 001-003 when offline (default: tiny)")
    parser.add_argument("--skip-bench", action="store_true")
    parser.add_argument("--force", action="store_true", help="re-export even if valid artifacts exist")
    args = parser.parse_args()
    os.environ.setdefault("KOLITE_SHARED", str(REPO.parent / "shared"))
    started = time.perf_counter()
    export_all(args.out_dir, args.standin_size, args.force)
    artifacts = sorted(p.parent for p in args.out_dir.glob("[0-9][0-9][0-9]-*/manifest.json"))
    smoke = runtime_smoke(artifacts)
    if not args.skip_bench:
        quick_bench(REPO / "benchmarks" / "results" / "quick", artifacts[0])
    banner(f"4/4  summary ({time.perf_counter() - started:.0f} s)")
    print(summary(artifacts, smoke))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
