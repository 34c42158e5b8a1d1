"""What a request asks of the model: its task options, gathered from the body's own fields (kolite and TEI) and
from the Hugging Face Inference API's ``parameters``, and the shape its answer takes.

The options are passed to the model untouched (``model.options(**options)`` validates them and refuses those of
the other task); nothing here ranks, activates or groups.
"""

from __future__ import annotations

from typing import Any

from kolite.errors import InvalidInputError
from kolite.results import Entity
from kolite.server.schemas import PredictRequest, TagRequest

__all__ = ["pipeline_entity", "predict_options", "tag_options"]

_TAG_FIELDS = ("aggregation", "stride", "ignore_labels")
_PREDICT_FIELDS = (*_TAG_FIELDS, "top_k", "function_to_apply", "long_text", "pooling")
# The Inference API's names of kolite's options.
_HF_NAMES = {"top_k": "top_k", "function_to_apply": "function_to_apply", "aggregation_strategy": "aggregation",
             "ignore_labels": "ignore_labels", "stride": "stride"}


def _gather(body: TagRequest, fields: tuple[str, ...]) -> dict[str, Any]:
    options = {name: value for name in fields if (value := getattr(body, name)) is not None}
    if body.parameters is not None:
        for hf_name, name in _HF_NAMES.items():
            value = getattr(body.parameters, hf_name)
            if value is None or name not in fields:
                continue
            if name in options and options[name] != value:
                raise InvalidInputError(f"{name}={options[name]!r} and parameters.{hf_name}={value!r} disagree: "
                                        "give one of them")
            options[name] = value
    return options


def predict_options(body: PredictRequest) -> dict[str, Any]:
    """/predict (and ``/``, ``/invocations``): every label, highest first, unless ``top_k`` says otherwise (TEI);
    ``raw_scores`` is ``function_to_apply="none"``."""
    options = _gather(body, _PREDICT_FIELDS)
    if body.raw_scores:
        if options.get("function_to_apply", "none") != "none":
            raise InvalidInputError(f"raw_scores=true returns logits, but function_to_apply="
                                    f"{options['function_to_apply']!r} was asked: give one of them")
        options["function_to_apply"] = "none"
    options.setdefault("top_k", None)
    return options


def tag_options(body: TagRequest) -> dict[str, Any]:
    return _gather(body, _TAG_FIELDS)


def pipeline_entity(entity: Entity, aggregation: str) -> dict[str, Any]:
    """An entity as the transformers pipeline (and the Inference API) writes it: ``entity_group`` for aggregated
    strategies, ``entity`` (the BIO tag) and ``index`` with ``none``; ``word`` is the original text's slice."""
    out: dict[str, Any] = {"entity" if aggregation == "none" else "entity_group": entity.label,
                           "score": entity.score, "word": entity.text, "start": entity.start, "end": entity.end}
    if entity.index is not None:
        out["index"] = entity.index
    return out
