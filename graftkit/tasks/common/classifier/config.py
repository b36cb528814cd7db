"""Keys every classifier's `task:` section has (classification and ranking's cross-encoder add theirs)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from graftkit.config import TaskConfigBase


class ClassifierConfig(TaskConfigBase):
    """One label per input (softmax), or a set of labels (sigmoid + per-label threshold)."""

    multi_label: bool = False
    class_weights: Literal["balanced"] | dict[str, float] | None = None
    threshold: float = Field(0.5, gt=0.0, lt=1.0, description="multi-label decision threshold before tuning")
    tune_thresholds: bool = Field(True, description="multi-label: tune one threshold per label on validation")
