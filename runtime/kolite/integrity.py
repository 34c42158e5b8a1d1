"""sha256 verification of artifact files, done before any file reaches onnxruntime or tokenizers."""

from __future__ import annotations

import hashlib
from pathlib import Path

from kolite.errors import IntegrityError, ManifestError

__all__ = ["safe_member", "sha256_file", "verify_file"]

_CHUNK = 1 << 20


def sha256_file(path: str | Path) -> str:
    """Streamed sha256 (constant memory, fine for GB-sized fp32 graphs)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def safe_member(directory: Path, filename: str) -> Path:
    """Refuse manifest file names that escape the artifact folder (``../../etc/passwd``)."""
    path = (directory / filename).resolve()
    if not path.is_relative_to(directory.resolve()):
        raise ManifestError(f"manifest names a file outside the artifact folder: {filename!r}")
    return directory / filename


def verify_file(path: Path, sha256: str, size_bytes: int | None = None) -> None:
    """Raise IntegrityError unless ``path`` exists with the recorded size and sha256."""
    if not path.is_file():
        raise IntegrityError(f"{path} is missing from the artifact (the manifest lists it); re-download or re-export")
    if size_bytes is not None and size_bytes >= 0 and path.stat().st_size != size_bytes:
        raise IntegrityError(
            f"{path} has {path.stat().st_size} bytes, the manifest records {size_bytes}: "
            "the file is truncated, corrupt or was replaced; re-download or re-export the artifact"
        )
    actual = sha256_file(path)
    if actual != sha256.lower():
        raise IntegrityError(
            f"{path} sha256 {actual} does not match the manifest ({sha256}): "
            "the file is corrupt or was tampered with; re-download or re-export the artifact"
        )
