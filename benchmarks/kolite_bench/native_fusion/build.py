"""Compile ``fused_ops.cc`` into a shared library with the system C++ compiler; cached by source and flags.

    python -m kolite_bench.native_fusion.build [--out DIR]

Nothing from onnxruntime is linked or included: the library gets the C API at ``RegisterCustomOps`` time. The
vector code carries its own ``target("avx2,fma")`` / ``target("avx512f,...")`` attributes instead of a global
``-march``, so the ``.so`` loads on any x86-64 and refuses registration (the caller keeps the unfused graph)
where AVX2/FMA are missing.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["FLAGS", "HEADERS", "SOURCE", "build_library", "compiler"]

SOURCE = Path(__file__).with_name("fused_ops.cc")
HEADERS = (Path(__file__).with_name("gelu_quantize.h"),)
# -ffp-contract=off: the kernel must round exactly where onnxruntime's does, so the compiler may not fuse a
# multiply and an add that onnxruntime keeps apart (every intended FMA is an explicit intrinsic).
# -Wno-maybe-uninitialized: GCC 12's own avx512fintrin.h trips it (its _mm512_undefined_* idiom), not our code.
FLAGS = ("-std=c++17", "-O3", "-ffp-contract=off", "-fPIC", "-shared", "-fvisibility=hidden", "-Wall", "-Wextra",
         "-Wno-maybe-uninitialized")


def compiler() -> str | None:
    """The C++ compiler to use (``$CXX``, else ``g++``), or None when there is none."""
    return shutil.which(os.environ.get("CXX", "g++"))


def build_library(out_dir: str | Path | None = None) -> Path:
    """Build (or reuse) the library; its file name carries a hash of source and flags so edits rebuild."""
    cxx = compiler()
    if cxx is None:
        raise RuntimeError("no C++ compiler (g++ or $CXX) on PATH: the native fusion library cannot be built")
    if platform.machine().lower() not in ("x86_64", "amd64"):
        raise RuntimeError(f"the native fusion kernel is x86-64 only (AVX2/FMA); this is {platform.machine()}")
    sources = b"".join(p.read_bytes() for p in (SOURCE, *HEADERS))
    key = hashlib.sha256(sources + " ".join(FLAGS).encode()).hexdigest()[:12]
    out = Path(out_dir) if out_dir is not None else Path(tempfile.gettempdir()) / "kolite-native"
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"libkolite_native-{key}.so"
    if target.exists():
        return target
    partial = out / f".{target.name}.{os.getpid()}.tmp"  # rename at the end: a parallel build never sees half a file
    done = subprocess.run([cxx, *FLAGS, "-o", str(partial), str(SOURCE)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{cxx} failed ({done.returncode}) building {SOURCE.name}:\n{done.stderr[-4000:]}")
    partial.replace(target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kolite_bench.native_fusion.build", description=__doc__)
    parser.add_argument("--out", type=Path, default=None)
    print(build_library(parser.parse_args(argv).out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
