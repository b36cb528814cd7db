"""Request and response bodies of the HTTP API (they are the OpenAPI schema)."""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, create_model, model_validator


class PredictRequestBase(BaseModel):
    """Texts to predict; ``text_pairs`` for tasks trained on text pairs (one pair per text)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"texts": ["Operating profit rose to EUR 13.1 mn from EUR 8.7 mn."]}]})

    @model_validator(mode="after")
    def _pairs_match(self):
        pairs = getattr(self, "text_pairs", None)
        if pairs is not None and len(pairs) != len(self.texts):
            raise ValueError(f"text_pairs has {len(pairs)} items but texts has {len(self.texts)}; give one pair per text")
        return self


def predict_request_model(max_texts: int, max_chars: int) -> type[PredictRequestBase]:
    """The request schema with this service's limits (so the OpenAPI document states them)."""
    text = Annotated[str, StringConstraints(max_length=max_chars)]
    return create_model(
        "PredictRequest", __base__=PredictRequestBase,
        texts=(list[text], Field(..., min_length=1, max_length=max_texts,
                                 description=f"1 to {max_texts} texts of at most {max_chars} characters")),
        text_pairs=(list[text] | None, Field(None, max_length=max_texts,
                                             description="second text of each pair (pair tasks only)")),
    )


class PredictResponse(BaseModel):
    """One prediction dict per text, in order; its keys depend on the task (label/score, entities, scores)."""

    request_id: str
    model: str
    predictions: list[dict[str, Any]]


class ErrorResponse(BaseModel):
    error: str = Field(..., description="what went wrong, in one sentence")
    detail: list[dict[str, Any]] | None = Field(None, description="per-field problems (validation errors)")
    request_id: str | None = None


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    ready: bool
    model: str
    task: str
    backend: str


class ModelInfo(BaseModel):
    model: str
    task: str
    backend: str
    labels: list[str] | None = None
    max_texts: int
    max_chars: int
    max_batch_size: int
    pair_input: bool
