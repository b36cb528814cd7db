"""Keys of `task:` for `type: ranking` (a recommender's interest model)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from graftkit.tasks.common.classifier.config import ClassifierConfig


class RankingConfig(ClassifierConfig):
    """Score (user history, candidate item) pairs; trained on click logs (MIND folder) or a pairs CSV.

    ``architecture: cross_encoder`` (default) is the classification head on the joined pair, so
    class_weights etc. apply; multi_label does not. ``two_tower`` embeds the history and each candidate
    apart with one shared encoder (a bi-encoder: candidates can be embedded once and retrieved by cosine).
    """

    type: Literal["ranking"] = "ranking"  # type: ignore[assignment]
    architecture: Literal["cross_encoder", "two_tower"] = Field(
        "cross_encoder", description="cross_encoder: P(click) from (history, candidate) read together; two_tower: "
                                     "cosine of separately embedded history and candidate (candidate retrieval)")
    max_history: int = Field(10, ge=1, description="most recent history items joined into the history text")
    history_separator: str = Field(" ; ", description="between history item texts")
    negatives_per_positive: int | None = Field(4, ge=1, description="MIND: keep this many non-clicked candidates "
                                               "per click in training (None: all); evaluation keeps all. "
                                               "two_tower: the hard negatives each click is trained against")

    @model_validator(mode="after")
    def _two_tower_keys(self) -> RankingConfig:
        if self.architecture != "two_tower":
            return self
        if self.negatives_per_positive is None:
            raise ValueError("task.negatives_per_positive: two_tower needs a number (the hard negatives per click), "
                             "not null")
        if self.class_weights is not None:
            raise ValueError("task.class_weights: two_tower has no classes to weight (its loss ranks the click "
                             "above the negatives); remove it or use architecture: cross_encoder")
        return self
