"""Request/response models: they validate bodies and document the API at /docs and /openapi.json."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

__all__ = [
    "AGGREGATIONS",
    "EntityOut",
    "ErrorOut",
    "HealthOut",
    "ModelInfo",
    "ModelsOut",
    "PredictRequest",
    "PredictionOut",
    "TagRequest",
]

AGGREGATIONS = ("none", "simple", "first", "average", "max")
Inputs = StrictStr | list[StrictStr]


class _Request(BaseModel):
    # Unknown fields are ignored, as TEI (serde) does: TEI clients may send fields kolite has no use for.
    model_config = ConfigDict(extra="ignore")

    inputs: Inputs = Field(description="One text, or a list of texts (at most --max-items).",
                           examples=["이 영화 정말 최고였어요", ["재밌다", "시간 아깝다"]])
    model: StrictStr | None = Field(None, description="Model name (see GET /models); needed only when the "
                                                      "server serves several models.")
    truncate: StrictBool | None = Field(None, description="Cut texts over the length limits (true) or answer 413 "
                                                          "(false); default: the server's --truncate (true).")


class PredictRequest(_Request):
    """TEI's /predict body. ``raw_scores`` returns logits instead of probabilities."""

    raw_scores: StrictBool = Field(False, description="Return raw logits instead of softmax/sigmoid scores.")
    aggregation: Literal["none", "simple", "first", "average", "max"] = Field(
        "simple", description="Token-classification models only: how sub-word tags are merged into entities.")


class TagRequest(_Request):
    """Body of /tag (token-classification models)."""

    aggregation: Literal["none", "simple", "first", "average", "max"] = Field(
        "simple", description="How sub-word tags are merged into entities (transformers' strategies).")


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


class ErrorOut(BaseModel):
    error: str
    error_type: str


class ModelInfo(BaseModel):
    name: str
    task: str
    labels: list[str]
    variant: str
    device: str
    max_length: int
    source: str
    state: Literal["loading", "ready", "failed"] = Field(description="Load state; a failed model is never served.")
    error: str | None = Field(None, description="Why the model failed to load.")


class ModelsOut(BaseModel):
    models: list[ModelInfo]


class HealthOut(BaseModel):
    status: Literal["ok"]
    models: list[str]
