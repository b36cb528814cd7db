"""R-Drop (Liang et al. 2021): regularise with the disagreement of two dropout passes.

Every training batch is run twice in one forward call (the batch concatenated with itself, so
dropout masks differ); the task loss averages both halves and ``train.rdrop`` times the
symmetric divergence between the halves' outputs is added. The divergence follows the task's
output (``TrainsWithTrainer.output_divergence``, graftkit/modeling/divergence.py): symmetric KL of
softmax distributions (single-label and token classification, token positions labelled -100 left
out), of Bernoulli distributions (multi-label), mean squared difference (regression).
"""
from __future__ import annotations

from typing import Callable

import torch

from graftkit.errors import ConfigError
from graftkit.train.components import TrainingOnly


def double_batch(inputs: dict) -> dict:
    """The batch concatenated with itself along the first dimension (non-tensors as they are)."""
    return {k: torch.cat([v, v]) if torch.is_tensor(v) and v.dim() > 0 else v for k, v in inputs.items()}


class RDrop(TrainingOnly):
    """A loss transform: the task loss over the doubled batch + ``weight`` × the halves' divergence."""

    name = "rdrop"
    keys = ("train.rdrop",)

    def __init__(self, weight: float, divergence: Callable):
        self.weight, self.divergence = weight, divergence

    @classmethod
    def for_model(cls, weight: float, divergence: Callable, model: torch.nn.Module) -> "RDrop":
        """Raises ConfigError when ``model`` has no active dropout (both passes would be equal)."""
        if not any(m.p > 0 for m in model.modules() if isinstance(m, torch.nn.Dropout)):
            raise ConfigError("train.rdrop: R-Drop compares two dropout passes, but this model has no active dropout "
                              "(model.dropout is 0); set model.dropout > 0 or train.rdrop to 0")
        return cls(weight, divergence)

    def training_loss(self, trainer, model, inputs, num_items, inner):
        doubled_items = None if num_items is None else 2 * num_items
        loss, outputs = inner(model, double_batch(inputs), doubled_items)
        first, second = outputs.logits.chunk(2)
        return loss + self.weight * self.divergence(first, second, inputs.get("labels")), outputs
