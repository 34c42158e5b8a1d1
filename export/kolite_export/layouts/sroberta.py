"""ko-sroberta custom checkpoint (seed 003): ``best.pt`` state dict + ``tokenizer/`` + ``label_mapping.json``
+ ``model_config.json`` (and the repo's ``inference_config.json``). The exported graph holds the pooling and head.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kolite_export.errors import CheckpointError
from kolite_export.layouts._hf import CORRUPT_FILE_ERRORS
from kolite_export.layouts.base import LoadedCheckpoint, load_hf_tokenizer, register_layout

__all__ = ["SRobertaMeanPooling"]

SROBERTA_INPUTS = ("input_ids", "attention_mask")


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"{path.parent} lacks {path.name}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} is not readable JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} must hold a JSON object")
    return data


def _labels(mapping: dict[str, Any]) -> tuple[str, ...]:
    if "id2label" in mapping:
        id2label = {int(k): v for k, v in mapping["id2label"].items()}
    elif "label2id" in mapping:
        id2label = {int(v): k for k, v in mapping["label2id"].items()}
    else:  # a bare {label: id} mapping
        id2label = {int(v): k for k, v in mapping.items()}
    if sorted(id2label) != list(range(len(id2label))):
        raise CheckpointError(f"label ids {sorted(id2label)} are not 0..n-1")
    return tuple(id2label[i] for i in range(len(id2label)))


def _encoder_config(model_config: dict[str, Any]) -> Any:
    from transformers import AutoConfig, RobertaConfig

    if "encoder_config" in model_config:
        return RobertaConfig.from_dict(model_config["encoder_config"])
    base = model_config.get("base_model")
    if not base:
        raise CheckpointError("model_config.json names neither encoder_config nor base_model")
    from kolite_export.sources import resolve_hub_config

    return resolve_hub_config(base, AutoConfig.from_pretrained)


class SRobertaMeanPooling:
    name = "sroberta-mean-pooling"

    def detect(self, folder: Path) -> bool:
        return (folder / "best.pt").is_file() and (folder / "label_mapping.json").is_file()

    def load(self, folder: Path) -> LoadedCheckpoint:
        import torch
        from transformers import AutoTokenizer

        from kolite_export.sroberta import SentenceTypeClassifier

        labels = _labels(_read_json(folder / "label_mapping.json"))
        model_config = _read_json(folder / "model_config.json")
        inference_config = (
            _read_json(folder / "inference_config.json") if (folder / "inference_config.json").is_file() else {}
        )
        tokenizer_dir = folder / inference_config.get("tokenizer_dir", "tokenizer")
        tokenizer = load_hf_tokenizer(tokenizer_dir, AutoTokenizer.from_pretrained)
        encoder_config = _encoder_config(model_config)
        module = SentenceTypeClassifier(encoder_config, len(labels), float(model_config.get("dropout", 0.1)))
        try:
            state = torch.load(folder / "best.pt", map_location="cpu", weights_only=True)
            if isinstance(state, dict) and "model_state_dict" in state:  # a training checkpoint wrapping it
                state = state["model_state_dict"]
            module.load_state_dict(state)
        except CORRUPT_FILE_ERRORS as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(f"cannot load {folder / 'best.pt'}: {first_line}") from exc
        if tokenizer.pad_token_id != encoder_config.pad_token_id:
            raise CheckpointError(
                f"tokenizer pad id {tokenizer.pad_token_id} != encoder pad id {encoder_config.pad_token_id}: "
                "RoBERTa derives position ids from the pad id, so answers would silently change"
            )
        max_length = int(model_config.get("max_length", inference_config.get("max_length", 128)))
        return LoadedCheckpoint(
            layout=self.name,
            task="text-classification",
            labels=labels,
            module=module.eval(),
            tokenizer=tokenizer,
            inputs=SROBERTA_INPUTS,
            max_length=max_length,
            problem_type="single_label_classification",
            optimizer_model_type="bert",
            num_heads=int(encoder_config.num_attention_heads),
            hidden_size=int(encoder_config.hidden_size),
            extra={"model_config": model_config, "tokenizer_dir": tokenizer_dir.name},
        )


register_layout(SRobertaMeanPooling())
