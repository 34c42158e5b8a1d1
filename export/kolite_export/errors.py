"""Typed export errors (in the optimum style: the gate that failed names itself and carries its numbers)."""

from __future__ import annotations

from kolite.errors import KoliteError, ModelNotFoundError

__all__ = [
    "AtolError",
    "CheckpointError",
    "EntityAgreementError",
    "ExportError",
    "LabelAgreementError",
    "ShapeError",
    "TokenizerMissingError",
    "TokenizerParityError",
    "UnknownLayoutError",
    "ValidationError",
]


class ExportError(KoliteError):
    """An export could not be carried out."""


class UnknownLayoutError(ExportError, ModelNotFoundError):
    """The source folder matches no known checkpoint layout."""


class CheckpointError(ExportError):
    """The checkpoint's weights or config are missing, corrupt or do not fit the architecture."""


class TokenizerMissingError(ExportError):
    """The source has no usable tokenizer files."""


class ValidationError(ExportError):
    """A variant failed its accuracy gate against the PyTorch original."""

    def __init__(self, message: str, numbers: dict[str, float] | None = None) -> None:
        super().__init__(message)
        self.numbers = dict(numbers or {})


class ShapeError(ValidationError):
    """The ONNX output shape differs from the PyTorch output shape."""


class AtolError(ValidationError):
    """Logits differ by more than the allowed absolute tolerance."""


class LabelAgreementError(ValidationError):
    """Predicted labels (argmax) agree with PyTorch on too few inputs."""


class EntityAgreementError(ValidationError):
    """Token-classification entities agree with PyTorch on too few sentences."""


class TokenizerParityError(ValidationError):
    """tokenizer.json (through `tokenizers`) gives other ids than the original HF tokenizer."""
