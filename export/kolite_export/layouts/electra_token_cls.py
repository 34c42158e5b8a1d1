"""ELECTRA token classification (NER) in transformers' ``save_pretrained`` layout (seed 004)."""

from __future__ import annotations

from pathlib import Path

from kolite_export.layouts._hf import has_architecture
from kolite_export.layouts.base import LoadedCheckpoint, register_layout
from kolite_export.layouts.electra_seq_cls import electra_checkpoint

__all__ = ["ElectraTokenClassification"]


class ElectraTokenClassification:
    name = "electra-token-classification"

    def detect(self, folder: Path) -> bool:
        return has_architecture(folder, "electra", "ElectraForTokenClassification")

    def load(self, folder: Path) -> LoadedCheckpoint:
        checkpoint = electra_checkpoint(folder, self.name, "token-classification", "ElectraForTokenClassification")
        return checkpoint


register_layout(ElectraTokenClassification())
