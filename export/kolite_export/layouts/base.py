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


def _is_fallback(layout: Layout) -> bool:
    return bool(getattr(layout, "fallback", False))


def detect_layout(folder: Path) -> Layout:
    """The one registered layout that recognises ``folder``. Fallback layouts (``fallback = True``, e.g. the generic
    transformers one) are consulted only when no other layout does, so a seed layout always wins for its folders
    whatever the registration order; within a tier, two matches are an error."""
    matches: list[Layout] = []
    for fallback_tier in (False, True):
        matches = [layout for layout in LAYOUTS.values() if _is_fallback(layout) == fallback_tier]
        matches = [layout for layout in matches if layout.detect(folder)]
        if matches:
            break
    if len(matches) == 1:
        return matches[0]
    files = sorted(p.name for p in folder.iterdir())[:12] if folder.is_dir() else []
    if not matches:
        known = ", ".join(getattr(layout, "summary", layout.name) for layout in LAYOUTS.values())
        raise UnknownLayoutError(
            f"{folder} is no known checkpoint layout (files: {', '.join(files) or 'none'}); known layouts: {known}"
        )
    raise UnknownLayoutError(f"{folder} matches several layouts: {', '.join(m.name for m in matches)}")


# The tokenizer files the seed layouts accept; the generic layout passes more (see hf_generic.TOKENIZER_SOURCES).
WORDPIECE_SOURCES: tuple[tuple[str, ...], ...] = (("tokenizer.json",), ("vocab.txt",))


def load_hf_tokenizer(
    folder: Path,
    loader: Callable[[str], PreTrainedTokenizerFast],
    sources: tuple[tuple[str, ...], ...] = WORDPIECE_SOURCES,
) -> PreTrainedTokenizerFast:
    """Load a *fast* tokenizer from ``folder``; ``sources`` are the file groups it may be built from (converted by
    transformers when there is no tokenizer.json: SentencePiece models need ``sentencepiece`` and ``protobuf``)."""
    if not any(all((folder / name).is_file() for name in group) for group in sources):
        wanted = " or ".join("+".join(group) for group in sources)
        raise TokenizerMissingError(f"{folder} holds no tokenizer (none of {wanted})")
    try:
        tokenizer = loader(str(folder))
    except ImportError as exc:
        first_line = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise TokenizerMissingError(
            f"building a fast tokenizer from {folder} needs a missing package ({first_line}); "
            "install kolite[export], which pins sentencepiece and protobuf"
        ) from exc
    except (OSError, ValueError, KeyError) as exc:
        raise TokenizerMissingError(f"cannot load the tokenizer in {folder}: {exc}") from exc
    if not tokenizer.is_fast:
        raise TokenizerMissingError(f"{folder}: no fast tokenizer could be built (kolite needs tokenizer.json)")
    return tokenizer
