"""Exception types raised by kolite. Every error a user can trigger is a ``KoliteError``."""

from __future__ import annotations

__all__ = [
    "CorruptInputError",
    "CpuFeatureError",
    "IntegrityError",
    "InvalidInputError",
    "KoliteError",
    "ManifestError",
    "ModelNotFoundError",
    "OfflineError",
    "ProviderUnavailableError",
    "UnknownVariantError",
]


class KoliteError(Exception):
    """Base class of every error kolite raises on purpose."""


class ManifestError(KoliteError):
    """The artifact's manifest.json is missing, unreadable or does not follow the schema."""


class IntegrityError(KoliteError):
    """A file of the artifact does not match the sha256 recorded in the manifest (corrupt or tampered)."""


class ModelNotFoundError(KoliteError):
    """The given path or hub id names no kolite artifact or known checkpoint."""


class OfflineError(KoliteError):
    """A hub id was given but the hub cannot be reached (no network or HF_HUB_OFFLINE=1)."""


class ProviderUnavailableError(KoliteError):
    """The requested execution provider (e.g. CUDA) is not available in this onnxruntime build."""


class InvalidInputError(KoliteError, ValueError):
    """A text or a batch given to the model is not valid (None, not a string, empty list, too many items...)."""


class UnknownVariantError(KoliteError, ValueError):
    """The requested variant or device name is not one the artifact/runtime knows."""


class CpuFeatureError(KoliteError):
    """No variant of the artifact runs exactly on this CPU (its int8 recipes assume features, e.g. VNNI, it lacks)."""


class CorruptInputError(KoliteError):
    """An input file cannot be read on from some point (a truncated or corrupt .gz/.bz2/.xz, a broken Parquet page).

    Readers keep what they read before it; ``kolite label`` keeps those rows' parts and names the row reached."""
