"""Exception types raised by kolite. Every error a user can trigger is a ``KoliteError``."""

from __future__ import annotations

__all__ = [
    "CpuFeatureError",
    "IntegrityError",
    "InvalidInputError",
    "KoliteError",
    "ManifestError",
    "ModelNotFoundError",
    "OfflineError",
    "ProviderUnavailableError",
    "UnknownVariantError",
    "registry",
]


class KoliteError(Exception):
    """Base class of every error kolite raises on purpose."""

    http_status: int = 500
    error_type: str = "Backend"


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


# What each error means over HTTP, one place per class (the errors reference page is generated from this).
_HTTP: dict[type[KoliteError], tuple[int, str]] = {
    KoliteError: (500, "Backend"),
    ManifestError: (500, "Backend"),
    IntegrityError: (500, "Backend"),
    ModelNotFoundError: (404, "NotFound"),
    OfflineError: (503, "Unhealthy"),
    ProviderUnavailableError: (503, "Unhealthy"),
    InvalidInputError: (422, "Validation"),
    UnknownVariantError: (422, "Validation"),
    CpuFeatureError: (503, "Unhealthy"),
}
for _cls, (_status, _type) in _HTTP.items():
    _cls.http_status, _cls.error_type = _status, _type


def registry() -> list[type[KoliteError]]:
    """Every ``KoliteError`` class (the base first, then its subclasses by name); each carries ``http_status``
    and ``error_type``."""
    found: list[type[KoliteError]] = []
    pending: list[type[KoliteError]] = [KoliteError]
    while pending:
        cls = pending.pop()
        if cls not in found:
            found.append(cls)
            pending.extend(cls.__subclasses__())
    return [KoliteError, *sorted(found[1:], key=lambda cls: cls.__name__)]
