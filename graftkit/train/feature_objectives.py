"""Objectives on a classifier's features that help out-of-scope detection (``task.out_of_scope.objective``).

The features are the input of the model's output layer (graftkit/modeling/features.py: the pooled vector the
Mahalanobis and kNN detectors read). The term is added, times ``objective_weight``, to the classification
loss, which stays: the linear head, its logits and inference are unchanged.

* ``margin``: the large-margin cosine loss (LMCL, CosFace; Lin & Xu 2019 for unknown intents). With x the
  row's features and W_j the output layer's row of class j, cos_j = W_j·x / (|W_j| |x|); the loss is the
  cross-entropy of ``s (cos_j − m·[j = gold])``: the gold class must win by a cosine margin m, which gathers
  each class's features in a tight cone around its weight row and leaves room between classes.
* ``contrastive``: supervised contrastive loss (Khosla et al. 2020) over the batch's unit features: for each
  anchor with a same-class row in the batch, −mean over its positives p of log(exp(z·z_p/τ) / Σ_{a≠anchor}
  exp(z·z_a/τ)), averaged over such anchors. Under R-Drop each row also meets its second dropout view.

Rows labelled -100 (outlier exposure's out-of-scope rows) take no part; a batch with nothing to compare
adds zero. The term applies to training batches only: the validation loss stays the classification loss.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from graftkit.modeling.features import FeatureTap
from graftkit.tasks.base import Task
from graftkit.tasks.capabilities import DetectsOutOfScope
from graftkit.train.components import TrainingOnly

IGNORE = -100


def _zero(features: torch.Tensor) -> torch.Tensor:
    """A zero that keeps the graph (the step's backward still reaches the features, with zero)."""
    return features.sum() * 0.0


def margin_loss(features: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor, margin: float,
                scale: float) -> torch.Tensor:
    """LMCL: mean cross-entropy of ``scale * (cos(features, weight rows) − margin on the gold class)``."""
    keep = labels != IGNORE
    if not keep.any():
        return _zero(features)
    x, y = features[keep].float(), labels[keep]
    cos = F.normalize(x, dim=-1) @ F.normalize(weight.float(), dim=-1).T
    return F.cross_entropy(scale * (cos - margin * F.one_hot(y, cos.shape[-1])), y)


def supcon_loss(features: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """Supervised contrastive loss (Khosla et al. 2020, L_out) over the labelled rows of one batch."""
    keep = labels != IGNORE
    z, y = F.normalize(features[keep].float(), dim=-1), labels[keep]
    self_pair = torch.eye(len(y), dtype=torch.bool, device=z.device)
    positives = (y[:, None] == y[None, :]) & ~self_pair
    anchors = positives.any(dim=1)
    if not anchors.any():  # no two rows of one class: nothing to pull together
        return _zero(features)
    sim = (z @ z.T / temperature).masked_fill(self_pair, float("-inf"))  # an anchor is not its own candidate
    log_prob = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    per_anchor = log_prob.masked_fill(~positives, 0.0).sum(dim=1) / positives.sum(dim=1).clamp(min=1)
    return -per_anchor[anchors].mean()


class FeatureObjective(TrainingOnly):
    """A loss transform: the classification loss + ``weight`` × the margin or contrastive term on the features."""

    name = "feature_objective"
    needs = DetectsOutOfScope

    def __init__(self, settings):
        self.settings = settings

    def term(self, features: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        s = self.settings
        if s.objective == "margin":
            return margin_loss(features, weight, labels, s.margin, s.scale)
        return supcon_loss(features, labels, s.temperature)

    def training_loss(self, trainer, model, inputs, num_items, inner):
        with FeatureTap(trainer.model) as tap:  # trainer.model: the unwrapped model whose head the tap finds
            loss, outputs = inner(model, inputs, num_items)
        term = self.term(tap.value, inputs["labels"], tap.layer.weight)
        return loss + self.settings.objective_weight * term, outputs

    def record(self) -> dict:
        s = self.settings
        params = {"margin": s.margin, "scale": s.scale} if s.objective == "margin" else {"temperature": s.temperature}
        return {"feature_objective": {"objective": s.objective, "weight": s.objective_weight, **params}}


def feature_objective(task: Task) -> list[FeatureObjective]:
    """The component ``task.out_of_scope.objective`` asks for (none without it)."""
    detector = task.optional(DetectsOutOfScope)
    settings = detector.settings if detector is not None and detector.enabled else None
    if settings is None or settings.objective is None:
        return []
    return [FeatureObjective(settings)]
