"""Shared loading of transformers ``save_pretrained`` folders (config.json + weights + tokenizer files)."""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from kolite_export.errors import CheckpointError

__all__ = ["CORRUPT_FILE_ERRORS", "WEIGHT_FILES", "LogitsOnly", "has_architecture", "load_pretrained", "read_config"]

WEIGHT_FILES = ("pytorch_model.bin", "model.safetensors")
# Unpicklers fed garbage bytes fail with whatever built-in error the broken stream triggers.
CORRUPT_FILE_ERRORS = (
    OSError,
    RuntimeError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    pickle.UnpicklingError,
    zipfile.BadZipFile,
)


def read_config(folder: Path) -> dict[str, Any] | None:
    path = folder / "config.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def has_architecture(folder: Path, model_type: str, architecture: str) -> bool:
    config = read_config(folder)
    return bool(
        config and config.get("model_type") == model_type and architecture in (config.get("architectures") or ())
    )


def load_pretrained(model_class: Any, folder: Path) -> torch.nn.Module:
    """``model_class.from_pretrained`` with eager attention; a corrupt or missing checkpoint is a CheckpointError."""
    if not any((folder / name).is_file() for name in WEIGHT_FILES):
        raise CheckpointError(f"{folder} has no weights ({' or '.join(WEIGHT_FILES)})")
    try:
        model = model_class.from_pretrained(str(folder), attn_implementation="eager")
    except CORRUPT_FILE_ERRORS as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"cannot load the checkpoint in {folder}: {first_line}") from exc
    return model.eval()


class LogitsOnly(torch.nn.Module):
    """Trace a transformers model with positional inputs and a single ``logits`` output."""

    def __init__(self, model: torch.nn.Module, input_names: tuple[str, ...]) -> None:
        super().__init__()
        self.model = model
        self.input_names = input_names

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self.model(**dict(zip(self.input_names, tensors, strict=True))).logits
