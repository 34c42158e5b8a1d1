"""Where an artifact comes from: a local folder, or a Hugging Face Hub repo downloaded into the HF cache."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from kolite.errors import ModelNotFoundError, OfflineError
from kolite.manifest import MANIFEST_FILE

__all__ = ["ArtifactSource", "looks_like_hub_id", "resolve_source"]

# "owner/name" with the characters the Hub allows; anything else (./x, /abs, a/b/c, ~) is a path.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}$")
_ALWAYS = (MANIFEST_FILE, "tokenizer.json")


def looks_like_hub_id(ref: str) -> bool:
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
            _download(self.hub_id, self.revision, [filename])
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
    directory = _download(text, revision, list(_ALWAYS))
    return ArtifactSource(directory, hub_id=text, revision=revision)


def _download(repo_id: str, revision: str | None, files: list[str]) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=files))
    except (RepositoryNotFoundError, RevisionNotFoundError, GatedRepoError) as exc:
        raise ModelNotFoundError(
            f"{repo_id!r} (revision {revision or 'main'}) is not on the Hugging Face Hub or is not accessible: "
            f"{type(exc).__name__}; check the id, or log in with `huggingface-cli login` for private repos"
        ) from exc
    except (LocalEntryNotFoundError, OSError) as exc:
        # LocalEntryNotFoundError: offline (HF_HUB_OFFLINE=1 or no network) and not in the local HF cache.
        offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
        why = "HF_HUB_OFFLINE is set" if offline else "the Hub could not be reached"
        raise OfflineError(
            f"cannot fetch {files} of {repo_id!r}: {why} and the files are not in the local HF cache. "
            f"Fix: connect to the network (unset HF_HUB_OFFLINE), or on a connected machine run "
            f"`huggingface-cli download {repo_id} --local-dir DIR` and pass DIR instead of the hub id"
        ) from exc
