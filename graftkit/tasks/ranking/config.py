"""Keys of `task:` for `type: ranking` (a recommender's interest model)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from graftkit.tasks.classification.config import ClassificationConfig


class RankingConfig(ClassificationConfig):
    """Score (user history, candidate item) pairs; trained on click logs (MIND folder) or a pairs CSV.

    The model is the classification head on pairs, so class_weights etc. apply; multi_label does not.
    """

    type: Literal["ranking"] = "ranking"  # type: ignore[assignment]
    max_history: int = Field(10, ge=1, description="most recent history items joined into the history text")
    history_separator: str = Field(" ; ", description="between history item texts")
    negatives_per_positive: int | None = Field(4, ge=1, description="MIND: keep this many non-clicked candidates "
                                               "per click in training (None: all); evaluation keeps all")
