"""Model class and loss for classification: a linear head on the pooled output (transformers' own)."""
from __future__ import annotations

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification

MODEL_CLASS = AutoModelForSequenceClassification


def make_loss(weights: np.ndarray | None, multi_label: bool):
    """Weighted cross-entropy or BCE; None when the model's built-in loss already fits."""
    if weights is None:
        return None
    w = torch.tensor(weights)

    def loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if multi_label:
            return torch.nn.functional.binary_cross_entropy_with_logits(
                logits, labels.to(logits.dtype), pos_weight=w.to(logits.device, logits.dtype))
        return torch.nn.functional.cross_entropy(logits, labels, weight=w.to(logits.device, logits.dtype))

    return loss
