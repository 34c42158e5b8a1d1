"""Shared fixtures: tiny stand-in checkpoints and exported tiny artifacts, cached across test runs.

``standin_dir("003")``       -> a tiny stand-in checkpoint of seed 003 in the seed's exact layout (needs torch)
``tiny_artifact("000")``     -> an exported artifact (fp32, fp32-opt, int8) of the tiny 000 stand-in
``shared_data``              -> the shared read-only data folder ($KOLITE_SHARED, default <repo>/../shared)

Both factories cache under ``<repo>/.cache/test-artifacts/`` and reuse what is still valid (stand-in format,
source fingerprint, kolite version, sha256 of every file). ``KOLITE_TEST_ARTIFACTS=/path`` makes
``tiny_artifact`` return ``/path/<seed>`` instead (prebuilt artifacts, for the torch-free venv). Without torch,
``tiny_artifact`` returns the cached artifact as it is; ``KOLITE_BLOCK_TORCH=1`` makes torch unimportable, to prove
that the fast lane needs none.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from kolite_export.paths import shared_dir

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".cache" / "test-artifacts"
TINY_VARIANTS = ("fp32", "fp32-opt", "int8", "int8-static")

if os.environ.get("KOLITE_BLOCK_TORCH") == "1":
    # Proves the fast lane (-m "not slow") needs no torch: any test that reaches for it fails.
    sys.path.insert(0, str(REPO / "scripts"))
    from block_heavy_imports import HeavyImportBlocker

    sys.meta_path.insert(0, HeavyImportBlocker(("torch", "transformers", "optimum")))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that needs torch (it exports or builds models) or starts Ray is slow by definition: the fast lane,
    ``-m "not slow"``, leaves it out."""
    for item in items:
        if item.get_closest_marker("torch") or item.get_closest_marker("ray"):
            item.add_marker(pytest.mark.slow)


def _torch_importable() -> bool:
    try:
        return importlib.util.find_spec("torch") is not None
    except ImportError:  # blocked (KOLITE_BLOCK_TORCH=1)
        return False


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder (read-only; never copy it into the repo)."""
    path = shared_dir()
    if not (path / "data").is_dir():
        pytest.fail(f"shared data not found at {path}: set KOLITE_SHARED to the folder holding data/ and standins/")
    return path


def _require_torch(what: str) -> None:
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        pytest.fail(
            f"{what} needs torch + transformers (the export environment) to build tiny stand-ins; in a torch-free "
            "venv set KOLITE_TEST_ARTIFACTS to a folder of prebuilt artifacts (000/ 001/ ... built with "
            "`kolite export --all-seeds --size tiny --out-dir DIR`), or deselect with -m 'not torch'"
        )


@contextmanager
def _cache_lock() -> Iterator[None]:
    # Several pytest processes may share the cache: build each entry once.
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_tiny_standin(seed: str, size: str = "tiny") -> Path:
    _require_torch(f"standin_dir({seed!r})")
    from kolite_export.standins import build_standin
    from kolite_export.standins.build import STANDIN_FORMAT, STANDIN_INFO

    out = CACHE / "standins" / size / seed
    with _cache_lock():
        info_path = out / STANDIN_INFO
        if info_path.is_file():
            info = json.loads(info_path.read_text(encoding="utf-8"))
            if info.get("format") == STANDIN_FORMAT and info.get("size") == size:
                return out
        return build_standin(seed, size, out, shared=shared_dir())  # vocabulary: kolite's own cache


def build_tiny_artifact(seed: str) -> Path:
    prebuilt = os.environ.get("KOLITE_TEST_ARTIFACTS")
    if prebuilt:
        # DIR/000 or DIR/000-<name> (the folder names `kolite export --all-seeds` writes)
        candidates = [Path(prebuilt) / seed, *sorted(Path(prebuilt).glob(f"{seed}-*"))]
        for path in candidates:
            if (path / "manifest.json").is_file():
                return path
        pytest.fail(f"KOLITE_TEST_ARTIFACTS={prebuilt}: neither {seed}/ nor {seed}-*/ holds a manifest.json")
    out = CACHE / "artifacts" / seed
    if (out / "manifest.json").is_file() and not _torch_importable():
        # Without torch (the fast lane) the artifacts an earlier full run built are used as they are.
        return out
    standin = build_tiny_standin(seed)
    from kolite_export.exporter import ExportOptions, export

    with _cache_lock():
        options = ExportOptions(variants=TINY_VARIANTS, validation_size=64, shared=str(shared_dir()))
        result = export(standin, out, options)
    if not result.ok:
        pytest.fail(f"tiny artifact {seed} failed its gates: {result.failures}")
    return out


@pytest.fixture(scope="session")
def standin_dir() -> Callable[..., Path]:
    """Factory: ``standin_dir(seed, size="tiny") -> Path`` of a stand-in checkpoint in the seed's layout."""
    return build_tiny_standin


@pytest.fixture(scope="session")
def tiny_artifact() -> Callable[[str], Path]:
    """Factory: ``tiny_artifact(seed) -> Path`` of an exported tiny artifact (TINY_VARIANTS)."""
    return build_tiny_artifact
