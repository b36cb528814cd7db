"""R-Drop (Liang et al. 2021): regularise with the disagreement of two dropout passes.

Every training batch is run twice in one forward call (the batch concatenated with itself, so
dropout masks differ); the task loss averages both halves and ``train.rdrop`` times the
symmetric divergence between the halves' outputs is added. The divergence follows the task's
output: symmetric KL of softmax distributions (single-label and token classification, token
positions labelled -100 left out), of Bernoulli distributions (multi-label), mean squared
difference (regression).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def double_batch(inputs: dict) -> dict:
    """The batch concatenated with itself along the first dimension (non-tensors as they are)."""
    return {k: torch.cat([v, v]) if torch.is_tensor(v) and v.dim() > 0 else v for k, v in inputs.items()}


def _symmetric_kl(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """0.5 (KL(p||q) + KL(q||p)) per position, summed over the last dimension."""
    return 0.5 * (F.kl_div(log_q, log_p, log_target=True, reduction="none")
                  + F.kl_div(log_p, log_q, log_target=True, reduction="none")).sum(-1)


def divergence(first: torch.Tensor, second: torch.Tensor, problem_type: str | None,
               labels: torch.Tensor | None = None) -> torch.Tensor:
    """Mean divergence between the two passes' logits.

    Args:
        first, second: logits of the two passes, same shape ((B, C) or (B, T, C)).
        problem_type: the model config's ``problem_type`` (regression, multi_label_classification, ...).
        labels: for token-level logits, the labels of one pass; positions with -100 are ignored.
    """
    first, second = first.float(), second.float()
    if problem_type == "regression":
        return F.mse_loss(first, second)
    if problem_type == "multi_label_classification":
        pairs = [torch.stack([F.logsigmoid(-x), F.logsigmoid(x)], -1) for x in (first, second)]
        return _symmetric_kl(*pairs).sum(-1).mean()
    per_position = _symmetric_kl(F.log_softmax(first, -1), F.log_softmax(second, -1))
    if per_position.dim() > 1 and labels is not None and labels.shape == per_position.shape:
        mask = labels != -100
        return per_position[mask].mean() if mask.any() else per_position.sum() * 0.0
    return per_position.mean()
