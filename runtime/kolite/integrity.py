"""sha256 verification of artifact files, done before any file reaches onnxruntime or tokenizers."""

from __future__ import annotations

import hashlib
from pathlib import Path

from kolite.errors import IntegrityError, ManifestError

__all__ = ["read_verified", "safe_member", "sha256_file", "verify_file"]

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
    if not isinstance(filename, str) or not filename or "\x00" in filename:
        raise ManifestError(f"manifest names an invalid file {filename!r}")
    path = (directory / filename).resolve()
    if not path.is_relative_to(directory.resolve()):
        raise ManifestError(f"manifest names a file outside the artifact folder: {filename!r}")
    return directory / filename


def read_verified(path: Path, sha256: str | None, size_bytes: int | None, max_bytes: int) -> bytes:
    """The bytes of ``path`` after checking its size and (unless ``sha256`` is None) its hash: one read, so the
    bytes that are used are the bytes that were checked."""
    if not path.is_file():
        raise IntegrityError(f"{path} is missing from the artifact (the manifest lists it); re-download or re-export")
    size = path.stat().st_size
    if size > max_bytes:
        raise IntegrityError(f"{path} has {size} bytes, over the {max_bytes} a kolite artifact file may have")
    _check_size(path, size, size_bytes)
    data = path.read_bytes()
    if sha256 is not None:
        _check_digest(path, hashlib.sha256(data).hexdigest(), sha256)
    return data


def _check_size(path: Path, size: int, size_bytes: int | None) -> None:
    if size_bytes is not None and size_bytes >= 0 and size != size_bytes:
        raise IntegrityError(
            f"{path} has {size} bytes, the manifest records {size_bytes}: "
            "the file is truncated, corrupt or was replaced; re-download or re-export the artifact"
        )


def _check_digest(path: Path, actual: str, sha256: str) -> None:
    if actual != str(sha256).lower():
        raise IntegrityError(
            f"{path} sha256 {actual} does not match the manifest ({sha256}): "
            "the file is corrupt or was tampered with; re-download or re-export the artifact"
        )


def verify_file(path: Path, sha256: str, size_bytes: int | None = None) -> None:
    """Raise IntegrityError unless ``path`` exists with the recorded size and sha256."""
    if not path.is_file():
        raise IntegrityError(f"{path} is missing from the artifact (the manifest lists it); re-download or re-export")
    _check_size(path, path.stat().st_size, size_bytes)
    _check_digest(path, sha256_file(path), sha256)
