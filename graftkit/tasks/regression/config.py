"""Keys of `task:` for `type: regression`."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from graftkit.config import TaskConfigBase


class RegressionConfig(TaskConfigBase):
    """One or more real-valued targets per text (or text pair)."""

    type: Literal["regression"] = "regression"
    loss: Literal["mse", "huber"] = Field("mse", description="loss on the (standardised) targets")
    huber_delta: float = Field(1.0, gt=0, description="Huber loss delta")
    standardize: bool = Field(True, description="train on z-scored targets (mean/std kept in labels.json)")
