"""Where kolite_export finds the shared read-only data and its own caches (never hard-coded absolute paths)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir", "repo_root", "shared_dir"]


def repo_root() -> Path:
    """The checkout root (``export/kolite_export`` lives two levels below it)."""
    return Path(__file__).resolve().parents[2]


def shared_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The shared data folder: ``override``, else ``$KOLITE_SHARED``, else ``<repo>/../shared``."""
    if override is not None:
        return Path(override)
    env = os.environ.get("KOLITE_SHARED")
    return Path(env) if env else repo_root().parent / "shared"


def cache_dir() -> Path:
    """Cache for learnt stand-in vocabularies: ``$KOLITE_CACHE``, else ``~/.cache/kolite``."""
    env = os.environ.get("KOLITE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "kolite"
