"""Typed predictions: what a task's decoding (or a generator, or an embedder) returns for one input.

Each kind is a small frozen dataclass; ``to_dict()`` is its JSON form, the one written to
``predictions.jsonl``, printed by ``graftkit predict`` and answered by the HTTP service (field order
is the JSON key order). Code that needs a task-specific reading of a prediction asks the task's
capability for it rather than inspecting which kind it got.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Prediction:
    """Base of every prediction kind."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (nested dataclasses become dicts too); optional fields that are unset are left out."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass(frozen=True)
class LabelPrediction(Prediction):
    """Single-label classification: the chosen label, its probability and every label's probability; for a
    run with an out-of-scope detector, whether the input is out of scope and the detector's score."""

    label: str
    score: float
    scores: dict[str, float]
    out_of_scope: bool | None = None
    out_of_scope_score: float | None = None


@dataclass(frozen=True)
class LabelSetPrediction(Prediction):
    """Multi-label classification: the labels over their thresholds and every label's probability."""

    labels: list[str]
    scores: dict[str, float]


@dataclass(frozen=True)
class Entity:
    """One entity span: type, character offsets (end exclusive), surface text, mean tag probability."""

    label: str
    start: int
    end: int
    text: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class EntitiesPrediction(Prediction):
    """Named-entity recognition: the entities of one text, in text order."""

    entities: list[Entity]


@dataclass(frozen=True)
class ValuePrediction(Prediction):
    """Regression: the first target's value and every target's value by column."""

    value: float
    values: dict[str, float]


@dataclass(frozen=True)
class ScorePrediction(Prediction):
    """A ranking score of one (history, candidate) pair (two-tower: cosine in [-1, 1])."""

    score: float


@dataclass(frozen=True)
class RewardPrediction(Prediction):
    """A reward model's score of one (prompt, response); for a scored preference pair, the rejected one's too."""

    reward: float
    rejected_reward: float | None = None


@dataclass(frozen=True)
class MaskFillPrediction(Prediction):
    """Masked LM on a text with ``[MASK]``: per mask, its position and the likeliest tokens."""

    masks: list[dict[str, Any]]


@dataclass(frozen=True)
class MaskScorePrediction(Prediction):
    """Masked LM on a text without ``[MASK]``: the fixed evaluation mask's hidden tokens, hits and NLL."""

    masked: int
    correct: int
    nll: float


@dataclass(frozen=True)
class GeneratedText(Prediction):
    """Generation: the text a causal_lm or seq2seq run produced."""

    generated: str


@dataclass(frozen=True)
class EmbeddingPrediction(Prediction):
    """Embedding: one unit-length vector."""

    embedding: list[float]
