"""Sizes on disk: the install size of each contender's environment.

kolite's number is measured for real: a virtual environment installed the way kolite ships its runtime (the
complete runtime lock ``requirements/runtime.txt`` with ``--no-deps``, then ``pip install --no-deps <repo>``, no
extras), built once and cached under ``.cache/bench/runtime-venv``. The baselines' numbers sum
the installed files (RECORD) of their dependency closure in the current environment (e.g. torch + transformers).
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["closure_size", "folder_bytes", "runtime_venv_size"]

_TOOLING = {"pip", "setuptools", "wheel", "_distutils_hack", "pkg_resources"}


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure_size(roots: list[str]) -> dict[str, Any]:
    """Bytes of the installed files of ``roots`` and everything they require (extras named in roots included)."""
    from packaging.requirements import Requirement

    seen: dict[str, int] = {}
    stack = [Requirement(r) for r in roots]
    while stack:
        req = stack.pop()
        name = _norm(req.name)
        if name in seen:
            continue
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            continue
        seen[name] = sum(f.size or 0 for f in (dist.files or ()))
        for spec in dist.requires or ():
            child = Requirement(spec)
            extras = req.extras or {""}
            if child.marker is None or any(child.marker.evaluate({"extra": e}) for e in extras):
                stack.append(child)
    return {"method": "sum of installed files of the dependency closure (current environment)",
            "roots": roots, "bytes": sum(seen.values()), "packages": len(seen)}


def _site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python*/site-packages"))
    if not found:
        raise FileNotFoundError(f"no site-packages under {venv}")
    return found[0]


def runtime_venv_size(repo: Path, cache: Path, build: bool = True) -> dict[str, Any]:
    """Measure (building once if needed) a venv holding only the locked runtime and kolite itself."""
    lock = repo / "requirements" / "runtime.txt"
    key = hashlib.sha256((repo / "pyproject.toml").read_bytes() + lock.read_bytes()).hexdigest()[:16]
    venv = cache / "runtime-venv"
    marker = venv / ".kolite-bench-key"
    if not (marker.is_file() and marker.read_text() == key):
        if not build:
            return {"method": "not measured (runtime venv not built; run without --no-install-size)", "bytes": None}
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-cache-dir", "--no-deps"]
        subprocess.run([*pip, "-r", str(lock)], check=True)
        subprocess.run([*pip, str(repo)], check=True)
        marker.write_text(key)
    site = _site_packages(venv)
    runtime_bytes = sum(folder_bytes(p) if p.is_dir() else p.stat().st_size for p in site.iterdir()
                        if p.name.split("-")[0].split(".")[0] not in _TOOLING)
    return {"method": "venv with the runtime lock (requirements/runtime.txt, --no-deps) and kolite, no extras; "
                      "site-packages without pip/setuptools", "bytes": runtime_bytes, "venv_bytes": folder_bytes(venv),
            "path": str(venv)}
