"""kolite: torch-free runtime for Korean text classifiers exported to ONNX.

import kolite
model = kolite.load("artifacts/000-koelectra-small-v3-nsmc")   # folder or hub id
model.classify(["영화 최고", "별로"])                              # or model.tag(...) for NER
"""

from __future__ import annotations

from kolite.api import load
from kolite.classification import TextClassifier
from kolite.errors import (
    IntegrityError,
    InvalidInputError,
    KoliteError,
    ManifestError,
    ModelNotFoundError,
    OfflineError,
    ProviderUnavailableError,
    UnknownVariantError,
)
from kolite.manifest import Manifest, Variant, load_manifest
from kolite.model import KoliteModel
from kolite.results import Entity, Prediction
from kolite.token_classification import TokenClassifier

__version__ = "0.1.0"

__all__ = [
    "Entity",
    "IntegrityError",
    "InvalidInputError",
    "KoliteError",
    "KoliteModel",
    "Manifest",
    "ManifestError",
    "ModelNotFoundError",
    "OfflineError",
    "Prediction",
    "ProviderUnavailableError",
    "TextClassifier",
    "TokenClassifier",
    "UnknownVariantError",
    "Variant",
    "__version__",
    "load",
    "load_manifest",
]
