"""ELECTRA sequence classification in transformers' ``save_pretrained`` layout (seeds 000, 001, 002)."""

from __future__ import annotations

from pathlib import Path

from kolite_export.layouts._hf import LogitsOnly, has_architecture, load_pretrained, read_config
from kolite_export.layouts.base import LoadedCheckpoint, load_hf_tokenizer, register_layout

__all__ = ["ElectraSequenceClassification", "electra_checkpoint"]

ELECTRA_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def electra_checkpoint(folder: Path, layout: str, task: str, model_class_name: str) -> LoadedCheckpoint:
    import transformers

    model = load_pretrained(getattr(transformers, model_class_name), folder)
    tokenizer = load_hf_tokenizer(folder, transformers.AutoTokenizer.from_pretrained)
    config = model.config
    labels = tuple(config.id2label[i] for i in range(config.num_labels))
    model_max = tokenizer.model_max_length if tokenizer.model_max_length < 100_000 else 512
    return LoadedCheckpoint(
        layout=layout,
        task=task,
        labels=labels,
        module=LogitsOnly(model, ELECTRA_INPUTS).eval(),
        tokenizer=tokenizer,
        inputs=ELECTRA_INPUTS,
        max_length=min(int(model_max), int(config.max_position_embeddings)),
        problem_type=config.problem_type or "single_label_classification",
        optimizer_model_type="bert",
        num_heads=int(config.num_attention_heads),
        hidden_size=int(config.hidden_size),
        extra={"config": read_config(folder)},
    )


class ElectraSequenceClassification:
    name = "electra-sequence-classification"

    def detect(self, folder: Path) -> bool:
        return has_architecture(folder, "electra", "ElectraForSequenceClassification")

    def load(self, folder: Path) -> LoadedCheckpoint:
        return electra_checkpoint(folder, self.name, "text-classification", "ElectraForSequenceClassification")


register_layout(ElectraSequenceClassification())
