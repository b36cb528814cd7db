"""Averaging ensemble members whose logits are scores of mutually exclusive classes (or tags)."""
from __future__ import annotations

import torch

from graftkit.tasks.capabilities import AveragesMembers


class SoftmaxMean(AveragesMembers):
    """The members' softmax probabilities averaged; the result's log is the ensemble's logits."""

    def combine_mean(self, logits: list[torch.Tensor]) -> torch.Tensor:
        stacked = torch.stack([x.float() for x in logits])
        return torch.log(torch.softmax(stacked, dim=-1).mean(0).clamp_min(1e-12))
