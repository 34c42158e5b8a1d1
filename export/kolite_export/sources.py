"""Where a checkpoint comes from: a local folder, or a hub id downloaded with huggingface_hub."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from kolite.errors import ModelNotFoundError, OfflineError
from kolite.sources import is_offline, looks_like_hub_id, offline_message, snapshot

__all__ = ["Source", "fingerprint_folder", "resolve_hub_config", "resolve_source"]

T = TypeVar("T")
# Other frameworks' weights a hub repo may also ship: never needed for a PyTorch export.
_UNUSED_WEIGHTS = ("*.h5", "*.msgpack", "*.onnx", "*.ot", "*.tflite", "*.gguf")


@dataclass(frozen=True)
class Source:
    """A checkpoint folder on disk and where it came from."""

    folder: Path
    id: str
    revision: str | None
    kind: str  # "local" or "hub"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "revision": self.revision, "kind": self.kind}


def resolve_source(source: str | os.PathLike[str], revision: str | None = None) -> Source:
    """A local folder as is; a hub id (``owner/name``, the runtime's rule) through ``kolite.sources.snapshot``."""
    path = Path(source).expanduser()
    if path.is_dir():
        return Source(path.resolve(), str(source), None, "local")
    text = str(source)
    if not looks_like_hub_id(text):
        raise ModelNotFoundError(f"{text!r} is neither a folder nor a hub id (owner/name)")
    folder = snapshot(text, revision, ignore_patterns=list(_UNUSED_WEIGHTS))
    return Source(folder, text, revision, "hub")


def resolve_hub_config(hub_id: str, loader: Callable[[str], T]) -> T:
    """Load a config by hub id (used when a custom checkpoint names its base model instead of embedding it)."""
    if is_offline():
        raise OfflineError(offline_message(hub_id, "HF_HUB_OFFLINE is set"))
    try:
        return loader(hub_id)
    except OSError as exc:
        raise OfflineError(offline_message(hub_id, f"the Hub could not be reached ({type(exc).__name__})")) from exc


def fingerprint_folder(folder: Path) -> str:
    """sha256 over the names, sizes and contents of the files in ``folder`` (recursive, sorted)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode())
        digest.update(str(path.stat().st_size).encode())
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()
