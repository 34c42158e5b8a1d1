"""Artifact folder mechanics: hashes, atomic publication, and the "already exported" check."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kolite.errors import KoliteError
from kolite.manifest import SCHEMA_VERSION, FileRef, Manifest, load_manifest

__all__ = ["file_ref", "reusable_manifest", "sha256_file", "staging_dir"]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_ref(folder: Path, name: str) -> FileRef:
    path = folder / name
    return FileRef(file=name, sha256=sha256_file(path), size_bytes=path.stat().st_size)


def _default_dir_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o777 & ~umask


@contextmanager
def staging_dir(out: Path) -> Iterator[Path]:
    """A temp folder beside ``out``; on success it replaces ``out`` by rename, on any error it vanishes."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        yield tmp
        tmp.chmod(_default_dir_mode())  # mkdtemp makes it private (0700); a published artifact is not
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            out.rename(old / out.name)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _files_verify(folder: Path, manifest: Manifest) -> bool:
    refs = [manifest.tokenizer, *(FileRef(v.file, v.sha256, v.size_bytes) for v in manifest.variants.values())]
    for ref in refs:
        path = folder / ref.file
        if not path.is_file() or path.stat().st_size != ref.size_bytes or sha256_file(path) != ref.sha256:
            return False
    return True


def reusable_manifest(
    out: Path,
    fingerprint: str,
    kolite_version: str,
    variants: tuple[str, ...],
    recipes: dict[str, dict[str, Any]] | None = None,
    validation_request: dict[str, Any] | None = None,
) -> Manifest | None:
    """The manifest in ``out`` if it was exported from the same source by this kolite version, holds every
    requested variant as passed, was quantized with the recipes this export would use now (``recipes``: variant →
    recipe fields), was validated on the texts asked for now (``validation_request``), and every file still matches
    its sha256; else None."""
    try:
        manifest = load_manifest(out)
    except KoliteError:
        return None
    if manifest.source.get("fingerprint") != fingerprint or manifest.tools.get("kolite") != kolite_version:
        return None
    if manifest.schema_version != SCHEMA_VERSION:  # written before this schema's fields (1.2: max_positions, guard)
        return None
    if validation_request is not None and manifest.validation.get("request") != validation_request:
        return None
    if any(name not in manifest.variants or not manifest.variants[name].passed for name in variants):
        return None
    for name, expected in (recipes or {}).items():
        if name in variants and any(manifest.variants[name].recipe.get(k) != v for k, v in expected.items()):
            return None
    return manifest if _files_verify(out, manifest) else None
