"""Request/response models: they check the shape of bodies and document the API at /docs and /openapi.json.

Option values (``top_k``, ``function_to_apply``, ``aggregation``, ``long_text``, ``pooling``, ``stride``,
``ignore_labels``) are only typed here: the model's own ``options()`` validates them (one owner), and a bad value
answers 422 with its message.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from kolite.aggregation import AGGREGATIONS
from kolite.classification import FUNCTIONS, LONG_TEXT, POOLING

__all__ = [
    "EntityOut",
    "ErrorOut",
    "HFParameters",
    "HealthOut",
    "ModelInfo",
    "ModelsOut",
    "PipelineEntityOut",
    "PredictRequest",
    "PredictionOut",
    "TagRequest",
]

Inputs = StrictStr | list[StrictStr]


def _one_of(values: tuple[str, ...]) -> str:
    return ", ".join(f"`{value}`" for value in values)


class HFParameters(BaseModel):
    """The Hugging Face Inference API's ``parameters`` (what ``InferenceClient`` sends)."""

    model_config = ConfigDict(extra="ignore")

    top_k: StrictInt | None = Field(None, description="Classifiers: the top k labels (default: every label).")
    function_to_apply: StrictStr | None = Field(None, description=f"Classifiers: {_one_of(FUNCTIONS[1:])}.")
    aggregation_strategy: StrictStr | None = Field(None, description=f"NER: {_one_of(AGGREGATIONS)}.")
    ignore_labels: list[StrictStr] | None = Field(None, description="NER: labels left out (default `[\"O\"]`).")
    stride: StrictInt | None = Field(None, description="Overlap of long-text windows, in tokens.")


class _Request(BaseModel):
    # Unknown fields are ignored, as TEI (serde) does: TEI clients may send fields kolite has no use for.
    model_config = ConfigDict(extra="ignore")

    inputs: Inputs = Field(description="One text, or a list of texts (at most --max-items).",
                           examples=["이 영화 정말 최고였어요", ["재밌다", "시간 아깝다"]])
    model: StrictStr | None = Field(None, description="Model name (see GET /models); needed only when the "
                                                      "server serves several models.")
    truncate: StrictBool | None = Field(None, description="Cut texts over the length limits (true) or answer 413 "
                                                          "(false); default: the server's --truncate (true).")
    parameters: HFParameters | None = Field(None, description="Hugging Face Inference API options. A body with "
                                                              "`parameters` is answered in that API's shape.")


class TagRequest(_Request):
    """Body of /tag (token-classification models)."""

    aggregation: StrictStr | None = Field(None, description=f"How sub-word tags merge into entities: "
                                                            f"{_one_of(AGGREGATIONS)} (default `simple`).")
    stride: StrictInt | None = Field(None, description="Overlap of the windows a long text is split into, in "
                                                       "tokens (default: a quarter of a window).")
    ignore_labels: list[StrictStr] | None = Field(None, description="Labels left out (default `[\"O\"]`).")


class PredictRequest(TagRequest):
    """TEI's /predict body, plus the task options of the model it reaches (NER fields apply to NER models)."""

    raw_scores: StrictBool = Field(False, description="Return raw logits (the same as function_to_apply=none).")
    top_k: StrictInt | None = Field(None, description="The top k labels (default: every label, as TEI).")
    function_to_apply: StrictStr | None = Field(None, description=f"{_one_of(FUNCTIONS)} (default: softmax, "
                                                                  "or sigmoid for multi-label models).")
    long_text: StrictStr | None = Field(None, description=f"{_one_of(LONG_TEXT)}: texts over one window keep "
                                                          "their first window, or are read in overlapping "
                                                          "windows whose logits are pooled.")
    pooling: StrictStr | None = Field(None, description=f"How window logits are pooled: {_one_of(POOLING)}.")


class PredictionOut(BaseModel):
    label: str
    score: float


class EntityOut(BaseModel):
    label: str = Field(description="Entity type (BIO tag with aggregation=none).")
    score: float
    start: int = Field(description="Character offset into the original text.")
    end: int = Field(description="Character offset (exclusive) into the original text.")
    text: str
    index: int | None = Field(None, description="Token index; aggregation=none only.")


class PipelineEntityOut(BaseModel):
    """An entity in the transformers pipeline's (and the Inference API's) shape: bodies with `parameters`."""

    entity_group: str | None = Field(None, description="Entity type (aggregated strategies).")
    entity: str | None = Field(None, description="BIO tag (aggregation_strategy=none).")
    score: float
    word: str = Field(description="The text of the entity: original[start:end].")
    start: int
    end: int
    index: int | None = None


class ErrorOut(BaseModel):
    error: str
    error_type: str
    request_id: str = Field(description="The request's X-Request-ID (sent by the client or generated).")


class ModelInfo(BaseModel):
    name: str
    task: str | None = Field(description="None when the manifest itself could not be read (state `failed`).")
    labels: list[str]
    variant: str
    device: str
    max_length: int | None
    guard: bool = Field(False, description="Fidelity guard on: uncertain int8 rows are re-run in the float graph.")
    source: str
    state: Literal["loading", "ready", "failed"] = Field(description="Load state; a failed model is never served.")
    error: str | None = Field(None, description="Why the model failed to load.")


class ModelsOut(BaseModel):
    models: list[ModelInfo]


class HealthOut(BaseModel):
    status: Literal["ok"]
    models: list[str]
