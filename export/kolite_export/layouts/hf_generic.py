"""Any transformers ``*ForSequenceClassification`` / ``*ForTokenClassification`` checkpoint of the common encoder
families (``save_pretrained`` layout: config.json + weights + tokenizer files), detected from config.json.

What differs between families is data (``FAMILIES``), not branches:
- graph inputs: ``token_type_ids`` only when the model has more than one segment embedding (``type_vocab_size``);
  RoBERTa/XLM-R (1) and DeBERTa-v3 (0) take ``input_ids, attention_mask`` only.
- positions: RoBERTa-style embeddings number positions from ``pad_token_id + 1`` and derive them from which ids
  are the pad id, so the tokenizer's pad id must be the config's (the runtime pads with the manifest's
  ``pad_token_id``) and ``max_length`` loses ``pad_token_id + 1`` of ``max_position_embeddings`` (514 → 512).
- graph fusions: onnxruntime's transformer optimizer has no DeBERTa type; its ``bert`` fusions still apply the
  LayerNorm/SkipLayerNorm/Gelu rewrites to DeBERTa's graph but find no attention to fuse (disentangled attention),
  so DeBERTa's int8 graph quantizes its MatMuls only. The gates decide whether the result is served.

A seed layout that recognises a folder wins over this one (``fallback``): ELECTRA checkpoints go through the seed
ELECTRA layouts, which read the same config fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kolite_export.errors import CheckpointError, TokenizerMissingError
from kolite_export.layouts._hf import LogitsOnly, load_pretrained, read_config
from kolite_export.layouts.base import LoadedCheckpoint, load_hf_tokenizer, register_layout

__all__ = ["FAMILIES", "HEADS", "Family", "HfGeneric"]


@dataclass(frozen=True)
class Family:
    model_type: str  # config.json's model_type
    class_prefix: str  # transformers' class names are f"{class_prefix}{head}"
    positions_after_pad: bool  # RoBERTa-style position ids: pad_token_id + 1 + index, non-pad tokens only
    # onnxruntime.transformers.optimizer model_type: it has none for DeBERTa, whose graph gets bert's generic fusions
    optimizer_model_type: str = "bert"


FAMILIES: dict[str, Family] = {
    family.model_type: family
    for family in (
        Family("bert", "Bert", positions_after_pad=False),
        Family("electra", "Electra", positions_after_pad=False),
        Family("roberta", "Roberta", positions_after_pad=True),
        Family("xlm-roberta", "XLMRoberta", positions_after_pad=True),
        Family("deberta-v2", "DebertaV2", positions_after_pad=False),
    )
}
HEADS = {"ForSequenceClassification": "text-classification", "ForTokenClassification": "token-classification"}
PROBLEM_TYPES = ("single_label_classification", "multi_label_classification")
# transformers' "no limit" model_max_length (VERY_LARGE_INTEGER) and anything like it means: not set.
_UNSET_MAX_LENGTH = 100_000
# Files transformers builds a fast tokenizer from (each group complete), tokenizer.json first.
TOKENIZER_SOURCES = (
    ("tokenizer.json",),
    ("vocab.txt",),
    ("vocab.json", "merges.txt"),
    ("sentencepiece.bpe.model",),  # XLM-R
    ("spm.model",),  # DeBERTa-v2/v3
)
# Without tokenizer.json, transformers converts a SentencePiece model through the slow tokenizer (sentencepiece)
# and the model's protobuf; without them it fails with an unrelated AttributeError, so check first.
CONVERSION_PACKAGES = {
    "sentencepiece.bpe.model": ("sentencepiece", "google.protobuf"),
    "spm.model": ("sentencepiece", "google.protobuf"),
}


def _architecture(config: dict[str, Any] | None) -> tuple[Family, str] | None:
    """(family, transformers class name) when config.json names exactly one supported head of a known family."""
    config = config or {}
    family = FAMILIES.get(config.get("model_type", ""))
    if family is None:
        return None
    names = [f"{family.class_prefix}{head}" for head in HEADS]
    found = [name for name in names if name in (config.get("architectures") or ())]
    return (family, found[0]) if len(found) == 1 else None


def _labels(config: Any) -> tuple[str, ...]:
    id2label = {int(k): str(v) for k, v in config.id2label.items()}
    if sorted(id2label) != list(range(config.num_labels)):
        raise CheckpointError(f"config.json id2label ids {sorted(id2label)} are not 0..{config.num_labels - 1}")
    labels = tuple(id2label[i] for i in range(config.num_labels))
    if len(set(labels)) != len(labels) or not all(labels):
        raise CheckpointError(f"config.json id2label names must be unique and non-empty: {labels}")
    return labels


def _problem_type(config: Any, task: str) -> str:
    problem_type = config.problem_type or "single_label_classification"
    if problem_type not in PROBLEM_TYPES:
        raise CheckpointError(
            f"problem_type {problem_type!r} is not supported (kolite serves {', '.join(PROBLEM_TYPES)})"
        )
    if task == "token-classification" and problem_type != "single_label_classification":
        raise CheckpointError(f"token classification with problem_type {problem_type!r} is not supported")
    return problem_type


def _importable(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its parent package (google) is missing
        return False


def _check_conversion_packages(folder: Path) -> None:
    if (folder / "tokenizer.json").is_file():
        return
    for name, packages in CONVERSION_PACKAGES.items():
        missing = [p for p in packages if (folder / name).is_file() and not _importable(p)]
        if missing:
            raise TokenizerMissingError(
                f"{folder} has {name} but no tokenizer.json; converting it needs {' and '.join(missing)}: "
                "install kolite[export], which pins them"
            )


def _pad_token_id(tokenizer: Any, config: Any, family: Family) -> None:
    """Give the tokenizer the config's pad token if it has none; where positions derive from it, they must agree."""
    if tokenizer.pad_token_id is None:
        if config.pad_token_id is None:
            raise CheckpointError("neither the tokenizer nor config.json names a pad token")
        tokenizer.pad_token = tokenizer.convert_ids_to_tokens(int(config.pad_token_id))
    if family.positions_after_pad and tokenizer.pad_token_id != config.pad_token_id:
        raise CheckpointError(
            f"tokenizer pad id {tokenizer.pad_token_id} != config pad_token_id {config.pad_token_id}: "
            f"{family.model_type} derives position ids from the pad id, so answers would silently change"
        )


def _max_length(tokenizer: Any, config: Any, family: Family) -> int:
    positions = int(config.max_position_embeddings)
    if family.positions_after_pad:
        positions -= int(config.pad_token_id) + 1
    model_max = int(tokenizer.model_max_length)
    return positions if model_max >= _UNSET_MAX_LENGTH else min(model_max, positions)


class HfGeneric:
    name = "hf-generic"
    fallback = True  # consulted only when no seed layout recognises the folder
    summary = f"{name} ({', '.join(FAMILIES)} × {'/'.join(HEADS)})"

    def detect(self, folder: Path) -> bool:
        return _architecture(read_config(folder)) is not None

    def load(self, folder: Path) -> LoadedCheckpoint:
        import transformers

        found = _architecture(read_config(folder))
        if found is None:
            raise CheckpointError(f"{folder}/config.json names no supported architecture")
        family, class_name = found
        task = next(task for head, task in HEADS.items() if class_name.endswith(head))
        _check_conversion_packages(folder)
        model = load_pretrained(getattr(transformers, class_name), folder)
        tokenizer = load_hf_tokenizer(folder, transformers.AutoTokenizer.from_pretrained, TOKENIZER_SOURCES)
        config = model.config
        _pad_token_id(tokenizer, config, family)
        # One segment embedding (RoBERTa) or none (DeBERTa-v3): token_type_ids would be a constant, not an input.
        inputs = ("input_ids", "attention_mask") + (("token_type_ids",) if config.type_vocab_size > 1 else ())
        return LoadedCheckpoint(
            layout=self.name,
            task=task,
            labels=_labels(config),
            module=LogitsOnly(model, inputs).eval(),
            tokenizer=tokenizer,
            inputs=inputs,
            max_length=_max_length(tokenizer, config, family),
            problem_type=_problem_type(config, task),
            optimizer_model_type=family.optimizer_model_type,
            num_heads=int(config.num_attention_heads),
            hidden_size=int(config.hidden_size),
            extra={"config": read_config(folder), "family": family.model_type, "architecture": class_name},
        )


register_layout(HfGeneric())
