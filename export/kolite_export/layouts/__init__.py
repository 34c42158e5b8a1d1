"""Checkpoint layouts, one module each, selected by ``detect_layout`` (no if-ladder)."""

from __future__ import annotations

from pathlib import Path

from kolite_export.layouts import electra_seq_cls, electra_token_cls, hf_generic, sroberta  # noqa: F401  (registers them)
from kolite_export.layouts.base import LAYOUTS, Layout, LoadedCheckpoint, detect_layout

__all__ = ["LAYOUTS", "Layout", "LoadedCheckpoint", "detect_layout", "load_checkpoint"]


def load_checkpoint(folder: Path) -> LoadedCheckpoint:
    """Detect ``folder``'s layout and load it."""
    return detect_layout(folder).load(folder)
