"""Outlier exposure (``task.out_of_scope.outlier_exposure``): the out-of-scope training rows join training.

``set_aside`` keeps the rows labelled ``task.out_of_scope.label`` out of every split; with outlier exposure the
train split's ones come back into the training set with label -100 (the classification loss ignores them) and
an ``is_outlier`` column set to 1. The column reaches the batches because the component turns the Trainer's
column filter off (``remove_unused_columns``: the classifier's dataset holds model inputs only, and
``DataCollatorWithPadding`` stacks a per-row number like the labels); the component pops it before the model
sees the batch and adds ``weight`` × its term:

* ``uniform`` (Hendrycks et al. 2019): the out-of-scope rows' mean KL(uniform ‖ softmax(logits)), i.e. the
  cross-entropy to the uniform distribution minus its floor log K: zero when their output is uniform.
* ``energy`` (Liu et al. 2020), with E(x) = −logsumexp(logits): mean over in-scope rows of
  max(0, E − m_in)² + mean over out-of-scope rows of max(0, m_out − E)², so in-scope energies sit below m_in
  and out-of-scope ones above m_out (the energy detector's score is this E).

Terms are means over the batch's rows of each kind (zero when it has none); a batch of out-of-scope rows only
has no classification loss (its cross-entropy would be 0/0), only the term. Evaluation batches hold in-scope
rows only, so the validation loss stays the plain classification loss.
"""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Callable

import datasets
import torch
import torch.nn.functional as F

from graftkit.data.dataset import Example, Splits
from graftkit.errors import ConfigError
from graftkit.tasks.base import Task
from graftkit.tasks.capabilities import DetectsOutOfScope
from graftkit.train.components import Component

OUTLIER_COLUMN = "is_outlier"
#: the papers' weights (λ), used when ``outlier_weight`` is null
DEFAULT_WEIGHT = {"uniform": 0.5, "energy": 0.1}


def _mean(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.mean() if values.numel() else like.sum() * 0.0


def uniform_loss(logits: torch.Tensor, outlier: torch.Tensor) -> torch.Tensor:
    """Mean KL(uniform ‖ softmax) over the outlier rows: −mean_k log p_k − log K."""
    log_p = F.log_softmax(logits[outlier].float(), dim=-1)
    return _mean(-log_p.mean(dim=-1) - math.log(logits.shape[-1]), logits)


def energy(logits: torch.Tensor) -> torch.Tensor:
    """E(x) = −logsumexp(logits), per row: the energy detector's score (higher: more out of scope)."""
    return -torch.logsumexp(logits.float(), dim=-1)


def energy_loss(logits: torch.Tensor, outlier: torch.Tensor, m_in: float, m_out: float) -> torch.Tensor:
    """Liu et al. 2020's squared hinges: in-scope energies above ``m_in``, out-of-scope ones below ``m_out``."""
    e = energy(logits)
    return _mean(F.relu(e[~outlier] - m_in) ** 2, logits) + _mean(F.relu(m_out - e[outlier]) ** 2, logits)


class OutlierExposure(Component):
    """A loss transform over training batches that hold out-of-scope rows (``is_outlier``)."""

    name = "outlier_exposure"
    needs = DetectsOutOfScope

    def __init__(self, settings, rows: int):
        self.kind, self.rows = settings.outlier_exposure, rows
        self.weight = settings.outlier_weight or DEFAULT_WEIGHT[self.kind]
        self.m_in, self.m_out = settings.energy_in, settings.energy_out

    def arguments(self, args) -> dict:
        return {"remove_unused_columns": False}  # the Trainer's filter would drop is_outlier (no forward takes it)

    def term(self, logits: torch.Tensor, outlier: torch.Tensor) -> torch.Tensor:
        if self.kind == "uniform":
            return uniform_loss(logits, outlier)
        return energy_loss(logits, outlier, self.m_in, self.m_out)

    def loss(self, trainer, model, inputs, num_items, inner):
        inputs = dict(inputs)  # the caller's batch keeps its column (an outer transform may read it again)
        outlier = inputs.pop(OUTLIER_COLUMN, None)
        loss, outputs = inner(model, inputs, num_items)
        if not model.training or outlier is None:
            return loss, outputs
        outlier = outlier.bool()
        if outlier.all():  # no in-scope row: the cross-entropy is 0/0; its graph is left out of the backward
            loss = outputs.logits.sum() * 0.0
        return loss + self.weight * self.term(outputs.logits, outlier), outputs

    def record(self) -> dict:
        record = {"kind": self.kind, "weight": self.weight, "rows": self.rows}
        if self.kind == "energy":
            record.update(m_in=self.m_in, m_out=self.m_out)
        return {"outlier_exposure": record}


def _settings(task: Task):
    detector = task.optional(DetectsOutOfScope)
    settings = detector.settings if detector is not None and detector.enabled else None
    return settings if settings is not None and settings.outlier_exposure is not None else None


def check_outlier_rows(cfg, task: Task, splits: Splits) -> None:
    """Refuse, in one line naming the key, outlier exposure without out-of-scope training rows or beside
    distillation (whose teacher would set those rows' targets too)."""
    settings = _settings(task)
    if settings is None:
        return
    if not splits.out_of_scope.get("train"):
        raise ConfigError(f"task.out_of_scope.outlier_exposure: the train split has no out-of-scope rows (label "
                          f"{settings.label!r}) to expose; add some, or set outlier_exposure to null")
    if cfg.train.distill:
        raise ConfigError("task.out_of_scope.outlier_exposure: train.distill also trains the out-of-scope rows "
                          "(toward its teacher's outputs); set one of them off")


def with_outliers(task: Task, splits: Splits, train_ds, build: Callable[[list[Example]], datasets.Dataset],
                  log: Callable[[str], None] = print) -> tuple[list[OutlierExposure], datasets.Dataset]:
    """(the OutlierExposure component, the training set with the out-of-scope training rows marked), or no
    component and the set as it was. ``build`` makes the task's training features of unlabelled examples."""
    settings = _settings(task)
    if settings is None:
        return [], train_ds
    rows = splits.out_of_scope["train"]
    outliers = build([replace(e, label=None) for e in rows])  # no class: the classification loss ignores them
    marked = [ds.add_column(OUTLIER_COLUMN, [flag] * len(ds)) for ds, flag in ((train_ds, 0), (outliers, 1))]
    log(f"task.out_of_scope.outlier_exposure: {len(rows)} out-of-scope rows join training ({settings.outlier_exposure})")
    return ([OutlierExposure(settings, len(rows))],
            datasets.concatenate_datasets([marked[0], marked[1].cast(marked[0].features)]))
