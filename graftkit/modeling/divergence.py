"""Divergences between two outputs of one model on the same batch (R-Drop's two dropout passes), one per
kind of output: the task says which fits its logits (``TrainsWithTrainer.output_divergence``)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _symmetric_kl(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """0.5 (KL(p||q) + KL(q||p)) per position, summed over the last dimension."""
    return 0.5 * (F.kl_div(log_q, log_p, log_target=True, reduction="none")
                  + F.kl_div(log_p, log_q, log_target=True, reduction="none")).sum(-1)


def softmax_divergence(first: torch.Tensor, second: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """Mean symmetric KL of softmax distributions ((B, C) or (B, T, C)); token positions labelled -100 are
    left out when ``labels`` has the positions' shape."""
    per_position = _symmetric_kl(F.log_softmax(first.float(), -1), F.log_softmax(second.float(), -1))
    if per_position.dim() > 1 and labels is not None and labels.shape == per_position.shape:
        mask = labels != -100
        return per_position[mask].mean() if mask.any() else per_position.sum() * 0.0
    return per_position.mean()


def bernoulli_divergence(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Symmetric KL of independent Bernoulli outputs (one sigmoid per column), summed over columns, averaged."""
    pairs = [torch.stack([F.logsigmoid(-x.float()), F.logsigmoid(x.float())], -1) for x in (first, second)]
    return _symmetric_kl(*pairs).sum(-1).mean()


def squared_difference(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of real-valued outputs."""
    return F.mse_loss(first.float(), second.float())
