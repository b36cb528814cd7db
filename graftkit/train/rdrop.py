"""R-Drop (Liang et al. 2021): regularise with the disagreement of two dropout passes.

Every training batch is run twice in one forward call (the batch concatenated with itself, so
dropout masks differ); the task loss averages both halves and ``train.rdrop`` times the
symmetric divergence between the halves' outputs is added. The divergence follows the task's
output (``TrainsWithTrainer.output_divergence``, graftkit/modeling/divergence.py): symmetric KL of
softmax distributions (single-label and token classification, token positions labelled -100 left
out), of Bernoulli distributions (multi-label), mean squared difference (regression).
"""
from __future__ import annotations

import torch


def double_batch(inputs: dict) -> dict:
    """The batch concatenated with itself along the first dimension (non-tensors as they are)."""
    return {k: torch.cat([v, v]) if torch.is_tensor(v) and v.dim() > 0 else v for k, v in inputs.items()}
