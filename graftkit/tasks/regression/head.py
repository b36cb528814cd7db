"""Model class and loss for regression: transformers' linear head with ``problem_type="regression"``."""
from __future__ import annotations

import torch
from transformers import AutoModelForSequenceClassification

MODEL_CLASS = AutoModelForSequenceClassification


def make_loss(kind: str, delta: float):
    """Huber loss on (standardised) targets; None keeps the model's built-in MSE."""
    if kind == "mse":
        return None

    def loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.huber_loss(logits, labels.to(logits.dtype).view_as(logits), delta=delta)

    return loss
