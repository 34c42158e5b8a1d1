"""What every checkpoint layout hands to the exporter, and the registry that picks a layout for a folder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from kolite_export.errors import TokenizerMissingError, UnknownLayoutError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerFast

__all__ = ["LAYOUTS", "Layout", "LoadedCheckpoint", "detect_layout", "load_hf_tokenizer", "register_layout"]


@dataclass(frozen=True)
class LoadedCheckpoint:
    """A checkpoint ready to trace: ``module(*[inputs in order])`` returns logits."""

    layout: str
    task: str
    labels: tuple[str, ...]
    module: torch.nn.Module
    tokenizer: PreTrainedTokenizerFast
    inputs: tuple[str, ...]
    max_length: int
    problem_type: str
    # What onnxruntime's transformer optimizer needs to find attention heads.
    optimizer_model_type: str
    num_heads: int
    hidden_size: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pad_token_id(self) -> int:
        return int(self.tokenizer.pad_token_id)


class Layout(Protocol):
    name: str

    def detect(self, folder: Path) -> bool: ...

    def load(self, folder: Path) -> LoadedCheckpoint: ...


LAYOUTS: dict[str, Layout] = {}


def register_layout(layout: Layout) -> Layout:
    LAYOUTS[layout.name] = layout
    return layout


def detect_layout(folder: Path) -> Layout:
    """The one registered layout that recognises ``folder``."""
    matches = [layout for layout in LAYOUTS.values() if layout.detect(folder)]
    if len(matches) == 1:
        return matches[0]
    files = sorted(p.name for p in folder.iterdir())[:12] if folder.is_dir() else []
    if not matches:
        raise UnknownLayoutError(
            f"{folder} is no known checkpoint layout (files: {', '.join(files) or 'none'}); "
            f"known layouts: {', '.join(LAYOUTS)}"
        )
    raise UnknownLayoutError(f"{folder} matches several layouts: {', '.join(m.name for m in matches)}")


def load_hf_tokenizer(folder: Path, loader: Callable[[str], PreTrainedTokenizerFast]) -> PreTrainedTokenizerFast:
    """Load a *fast* tokenizer from ``folder`` (converted from vocab.txt when there is no tokenizer.json)."""
    if not any((folder / name).is_file() for name in ("tokenizer.json", "vocab.txt")):
        raise TokenizerMissingError(f"{folder} holds no tokenizer (neither tokenizer.json nor vocab.txt)")
    try:
        tokenizer = loader(str(folder))
    except (OSError, ValueError, KeyError) as exc:
        raise TokenizerMissingError(f"cannot load the tokenizer in {folder}: {exc}") from exc
    if not tokenizer.is_fast:
        raise TokenizerMissingError(f"{folder}: no fast tokenizer could be built (kolite needs tokenizer.json)")
    return tokenizer
