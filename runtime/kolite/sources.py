"""Where an artifact comes from: a local folder, or a Hugging Face Hub repo downloaded into the HF cache."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from kolite.errors import ModelNotFoundError, OfflineError
from kolite.manifest import MANIFEST_FILE

__all__ = ["ArtifactSource", "is_offline", "looks_like_hub_id", "offline_message", "resolve_source", "snapshot"]

# "owner/name" with the characters the Hub allows; anything else (./x, /abs, a/b/c, ~) is a path.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}$")
_ALWAYS = (MANIFEST_FILE, "tokenizer.json")


def looks_like_hub_id(ref: str) -> bool:
    """Whether ``ref`` (not an existing path) names a hub repo; the one rule for the runtime and export alike."""
    return bool(_HUB_ID.match(ref)) and not ref.startswith((".", "~")) and ".." not in ref


@dataclass(frozen=True)
class ArtifactSource:
    """A resolved artifact folder; for hub artifacts, files are fetched on demand (only the chosen variant)."""

    directory: Path
    hub_id: str | None = None
    revision: str | None = None

    def ensure(self, filename: str) -> Path:
        """Path of ``filename`` inside the artifact, downloading it first for hub artifacts."""
        path = self.directory / filename
        if self.hub_id is not None and not path.is_file():
            snapshot(self.hub_id, self.revision, allow_patterns=[filename])
        return path


def resolve_source(ref: str | os.PathLike[str], revision: str | None = None) -> ArtifactSource:
    """Turn a folder path or a hub id (``owner/name``) into a local artifact folder."""
    path = Path(ref).expanduser()
    if path.is_dir():
        return ArtifactSource(path)
    if path.is_file() and path.name == MANIFEST_FILE:
        return ArtifactSource(path.parent)
    text = str(ref)
    if not looks_like_hub_id(text):
        raise ModelNotFoundError(
            f"{text!r} is neither an artifact folder nor a Hugging Face Hub id (owner/name); "
            "check the path, or export a model first with `kolite export`"
        )
    directory = snapshot(text, revision, allow_patterns=list(_ALWAYS))
    return ArtifactSource(directory, hub_id=text, revision=revision)


def is_offline() -> bool:
    """``HF_HUB_OFFLINE`` as huggingface_hub reads it; kolite's one reading of it (runtime, export and bench)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def snapshot(repo_id: str, revision: str | None = None, *, allow_patterns: list[str] | None = None,
             ignore_patterns: list[str] | None = None) -> Path:
    """Download (or find in the HF cache) the files of hub repo ``repo_id``; the one place that turns the hub's
    failures into kolite errors: ``ModelNotFoundError`` (no such repo or revision, no access) or ``OfflineError``."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    offline = is_offline()
    options: dict[str, object] = {"allow_patterns": allow_patterns} if allow_patterns is not None else {}
    if ignore_patterns is not None:
        options["ignore_patterns"] = ignore_patterns
    if offline:  # the local cache only, never a network attempt (huggingface_hub reads the variable at import)
        options["local_files_only"] = True
    try:
        return Path(snapshot_download(repo_id, revision=revision, **options))
    except (RepositoryNotFoundError, RevisionNotFoundError, GatedRepoError) as exc:
        raise ModelNotFoundError(
            f"{repo_id!r} (revision {revision or 'main'}) is not on the Hugging Face Hub or is not accessible: "
            f"{type(exc).__name__}; check the id, or log in with `huggingface-cli login` for private repos"
        ) from exc
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as exc:
        why = "HF_HUB_OFFLINE is set" if offline else f"the Hub could not be reached ({type(exc).__name__})"
        raise OfflineError(offline_message(repo_id, why)) from exc


def offline_message(repo_id: str, why: str) -> str:
    return (
        f"cannot fetch {repo_id!r}: {why} and its files are not in the local HF cache. Fix: connect to the network "
        f"(unset HF_HUB_OFFLINE), or on a connected machine run `huggingface-cli download {repo_id} --local-dir DIR` "
        "and pass DIR instead of the hub id (a local checkpoint folder for export, e.g. a stand-in from "
        "`kolite standins`; an artifact folder for the runtime)"
    )
