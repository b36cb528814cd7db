"""Keys of `task:` for `type: reward` (a reward model scoring (prompt, response) pairs)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from graftkit.config import TaskConfigBase


class RewardConfig(TaskConfigBase):
    """A one-output sequence-scoring head over any encoder or decoder, trained on preference pairs.

    The prompt is read from ``data.text_column``; the response that ``predict`` scores from
    ``data.text_pair_column`` (which a reward run must set: it makes every input a (prompt, response) pair).
    """

    type: Literal["reward"] = "reward"
    chosen_column: str = Field("chosen", description="column of the preferred response")
    rejected_column: str = Field("rejected", description="column of the dispreferred response")
    center_rewards_coefficient: float | None = Field(
        None, ge=0, description="trl's reward centring: adds coef * mean((r_chosen + r_rejected)^2) to the loss so "
        "rewards stay near zero (Eisenstein et al. 2023 use 0.01); None: off")
