"""Exception types raised by kolite: the one registry of errors.

Every error a user can trigger is a ``KoliteError``. Each class says, as class attributes, what the HTTP server
answers when it escapes a request: ``http_status`` and ``error_type`` (text-embeddings-inference's names where TEI
has one). Raise sites only raise; ``kolite.server.errors.render_error`` turns any of these into the one JSON body
``{"error", "error_type", "request_id"}``. ``registry()`` lists the classes (the docs' error table is generated from
it, so a class's docstring is its "when").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

__all__ = [
    "BackendError",
    "CorruptInputError",
    "CpuFeatureError",
    "EmptyInputError",
    "HeadersTooLargeError",
    "IntegrityError",
    "InvalidInputError",
    "KoliteError",
    "LoadError",
    "MalformedRequestError",
    "ManifestError",
    "MethodNotAllowedError",
    "ModelNotFoundError",
    "ModelUnavailableError",
    "NotFoundError",
    "OfflineError",
    "OverloadedError",
    "PayloadTooLargeError",
    "ProviderUnavailableError",
    "RequestTimeoutError",
    "ResultTimeoutError",
    "TooManyConnectionsError",
    "UnauthorizedError",
    "UnknownVariantError",
    "UnsupportedMediaTypeError",
    "registry",
]


class KoliteError(Exception):
    """Base class of every error kolite raises on purpose. Over HTTP, one not classified further is a server fault."""

    http_status: ClassVar[int] = 500
    error_type: ClassVar[str] = "Backend"
    # Response headers every answer of this kind carries (e.g. Retry-After on 429).
    http_headers: ClassVar[Mapping[str, str]] = {}
    # Set on an instance when the rest of the request cannot be read safely: the server closes the connection.
    close_connection: bool = False

    http_status: int = 500
    error_type: str = "Backend"


# ---- artifacts and loading (raised by kolite.load; `kolite serve` refuses to start or marks the model failed) ----


class LoadError(KoliteError):
    """An artifact, or the machine it is loaded on, cannot serve the model (raised by ``kolite.load``, never by a
    request: the server reports it per model in /models and /health)."""


class ManifestError(LoadError):
    """The artifact's manifest.json is missing, unreadable, does not follow the schema, or does not fit its graph."""


class IntegrityError(LoadError):
    """A file of the artifact does not match the sha256 recorded in the manifest (corrupt or tampered)."""


class ModelNotFoundError(LoadError):
    """The given path or hub id names no kolite artifact or known checkpoint."""

    http_status = 404
    error_type = "NotFound"


class OfflineError(LoadError):
    """A hub id was given but the hub cannot be reached (no network or HF_HUB_OFFLINE=1)."""

    http_status = 503
    error_type = "Unhealthy"


class ProviderUnavailableError(LoadError):
    """The requested execution provider (e.g. CUDA) is not available in this onnxruntime build."""


class CpuFeatureError(LoadError):
    """No variant of the artifact runs exactly on this CPU (its int8 recipes assume features, e.g. VNNI, it lacks)."""


class UnknownVariantError(LoadError, ValueError):
    """The requested variant or device name is not one the artifact/runtime knows."""

    http_status = 422
    error_type = "Validation"


# ---- a request's input (Python API and HTTP) ----


class InvalidInputError(KoliteError, ValueError):
    """A text, a batch or an option is not valid (None, not a string, too many items, ``top_k: 0``, wrong JSON
    fields or types, an option given twice with different values, ``/tag`` on a classifier...)."""

    http_status = 422
    error_type = "Validation"


class EmptyInputError(InvalidInputError):
    """``inputs`` is an empty list: there is nothing to classify."""

    http_status = 400
    error_type = "Empty"


class MalformedRequestError(InvalidInputError):
    """The request body is empty or not valid JSON."""

    http_status = 400
    error_type = "Validation"


class PayloadTooLargeError(InvalidInputError):
    """The body is over ``--max-body-bytes``, the request has more than ``--max-items`` texts, or a text is over
    ``--max-text-chars`` (or the model's ``max_length`` tokens) where it may not be cut."""

    http_status = 413
    error_type = "PayloadTooLarge"


class UnsupportedMediaTypeError(InvalidInputError):
    """The body was sent without ``Content-Type: application/json`` (or ``application/*+json``)."""

    http_status = 415
    error_type = "Validation"


class CorruptInputError(KoliteError):
    """An input file cannot be read on from some point (a truncated or corrupt .gz/.bz2/.xz, a broken Parquet page).

    Readers keep what they read before it; ``kolite label`` keeps those rows' parts and names the row reached."""


# ---- HTTP only (kolite serve) ----


class UnauthorizedError(KoliteError):
    """``--api-key`` is set and the request has no ``Authorization: Bearer <key>`` or a wrong key."""

    http_status = 401
    error_type = "Unauthorized"
    http_headers: ClassVar[Mapping[str, str]] = {"WWW-Authenticate": "Bearer"}


class NotFoundError(KoliteError):
    """No such route, or no served model of that name (``model`` field or ``/models/{name}/...`` path)."""

    http_status = 404
    error_type = "NotFound"


class MethodNotAllowedError(KoliteError):
    """The route exists but not for this HTTP method."""

    http_status = 405
    error_type = "MethodNotAllowed"


class RequestTimeoutError(KoliteError):
    """The request headers did not arrive within ``--header-timeout-s``, or the body stopped arriving for
    ``--body-timeout-s``; the connection is closed."""

    http_status = 408
    error_type = "RequestTimeout"
    close_connection = True


class OverloadedError(KoliteError):
    """The model already holds ``--max-queue`` queued or running requests, or ``--max-queue-tokens`` of their tokens;
    retry later."""

    http_status = 429
    error_type = "Overloaded"
    http_headers: ClassVar[Mapping[str, str]] = {"Retry-After": "1"}


class HeadersTooLargeError(KoliteError):
    """The request headers together are over ``--max-header-bytes`` (one huge header line or many); the connection
    is closed."""

    http_status = 431
    error_type = "HeadersTooLarge"
    close_connection = True


class BackendError(KoliteError):
    """A bug or a failure inside the server (logged with its traceback); a client can never cause it on purpose."""


class ModelUnavailableError(KoliteError):
    """The models are still loading or warming up, a model failed to load, or the server is shutting down."""

    http_status = 503
    error_type = "Unhealthy"


class TooManyConnectionsError(KoliteError):
    """More than ``--max-connections`` connections are open: a new one is answered at once and closed."""

    http_status = 503
    error_type = "Overloaded"
    http_headers: ClassVar[Mapping[str, str]] = {"Retry-After": "1"}
    close_connection = True


class ResultTimeoutError(KoliteError):
    """The request waited longer than ``--timeout-s`` for its result (the server is overloaded); it is dropped."""

    http_status = 504
    error_type = "Timeout"


def registry() -> list[type[KoliteError]]:
    """Every error class of this module, ``KoliteError`` first, then by HTTP status and name: the source of the
    docs' error table and of the server's status mapping."""
    classes = [cls for cls in globals().values()
               if isinstance(cls, type) and issubclass(cls, KoliteError) and cls.__module__ == __name__]
    return sorted(classes, key=lambda cls: (cls is not KoliteError, cls.http_status, cls.__name__))

