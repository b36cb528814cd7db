"""The pieces ``GraftTrainer`` composes, and the one order in which their hooks run.

A technique (distillation, R-Drop, adversarial training, the token budget, validation by generating,
PEFT, augmentation, ...) is a :class:`Component`. It declares the dotted config keys it consumes
(``keys``: what the Trainer path honours is derived from them, graftkit/train/keys.py), optionally the
task capability those keys need (``needs``), and implements only the hooks it uses. ``GraftTrainer``
calls each hook on every component, in the order of its component list (``build_trainer`` orders a
run's components as graftkit/train/trainer.py ``COMPONENT_TYPES`` lists their kinds):

When the Trainer is built (once):
  1. ``arguments(args)``: changes to ``TrainingArguments`` (later components see earlier changes).
  2. ``callbacks()``: Trainer callbacks the technique needs (run by the Trainer at its events).
When training starts (once):
  3. ``train_dataloader(trainer)``: a batch sampler's DataLoader; the first component that returns one
     replaces the Trainer's own (the token budget).
Per training step:
  4. ``loss(trainer, model, inputs, num_items, inner)``: the loss chain. Each component wraps the loss
     of the components before it (``inner``); the innermost is the model's own loss. The task's loss
     (``TaskLoss``) comes first and replaces it, then the loss transforms wrap it: the feature objective
     (margin / contrastive), outlier exposure (it pops the batch's ``is_outlier`` column, so every
     component inside it sees model inputs and labels only), distillation, R-Drop (outermost: its
     doubled batch reaches all of them). The chain runs for evaluation batches too; transforms that
     only train (``TrainingOnly``) pass evaluation batches through.
  5. backward and gradient accumulation: the Trainer.
  6. ``after_backward(trainer, model, inputs, step)``: extra passes whose gradients add to this
     step's (adversarial FGM / PGD); ``step()`` runs forward (the loss chain) and backward once more.
  7. the optimiser step, then callbacks' ``on_optimizer_step`` / ``on_step_end``: the Trainer.
Per evaluation:
  8. the Trainer's loss loop, the task's ``compute_metrics``, then ``evaluate(trainer)`` of each
     component: all join the metrics (``eval_<name>``) before they are logged and before early
     stopping and best-checkpoint selection read them (through ``Trainer(compute_metrics=...)``; for a
     task that reads no logits, ``prediction_step`` gives the Trainer one placeholder per row instead).
After the Trainer is built (once):
  9. ``record()``: the component's part of ``training_setup.json``, written once per run.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable, ClassVar

import torch
from transformers import TrainerCallback

#: ``inner(model, inputs, num_items_in_batch) -> (loss, outputs)``: the loss chain up to a component
LossFn = Callable[[Any, dict, Any], tuple[torch.Tensor, Any]]


class Component:
    """One technique ``GraftTrainer`` composes; every hook is optional (the defaults change nothing)."""

    #: the name ``training_setup.json`` lists it under (``components``)
    name: ClassVar[str] = ""
    #: dotted config keys (leaves) this component consumes: the Trainer path honours them
    keys: ClassVar[tuple[str, ...]] = ()
    #: the task capability its keys need (e.g. ``Distills``); a task without it refuses them by name
    needs: ClassVar[type | None] = None

    def arguments(self, args) -> dict:
        """``TrainingArguments`` fields to change."""
        return {}

    def callbacks(self) -> list[TrainerCallback]:
        return []

    def train_dataloader(self, trainer):
        """The training DataLoader, or None to leave batching to the Trainer (or a later component)."""
        return None

    def loss(self, trainer, model, inputs: dict, num_items, inner: LossFn) -> tuple[torch.Tensor, Any]:
        """(loss, outputs) of one batch; ``inner`` computes the loss of the chain before this component."""
        return inner(model, inputs, num_items)

    def after_backward(self, trainer, model, inputs: dict, step: Callable[[], torch.Tensor]) -> None:
        """Runs after the step's backward; ``step()`` runs one more forward + backward of the same batch."""

    def evaluate(self, trainer) -> dict[str, float]:
        """Validation metrics (without the ``eval_`` prefix) joining the Trainer's at each evaluation."""
        return {}

    def record(self) -> dict:
        """What ``training_setup.json`` records of this component."""
        return {}


class TrainingOnly(Component, ABC):
    """A loss transform that applies to training batches only: evaluation keeps the task loss, so
    validation numbers stay comparable with a run without the transform."""

    def loss(self, trainer, model, inputs, num_items, inner):
        if not model.training:
            return inner(model, inputs, num_items)
        return self.training_loss(trainer, model, inputs, num_items, inner)

    @abstractmethod
    def training_loss(self, trainer, model, inputs: dict, num_items, inner: LossFn) -> tuple[torch.Tensor, Any]:
        """(loss, outputs) of one training batch."""


class TaskLoss(Component):
    """The task's own ``loss(logits, labels)`` (class weights, ...) in place of the model's."""

    name = "task_loss"

    def __init__(self, loss_fn: Callable):
        self.loss_fn = loss_fn

    def loss(self, trainer, model, inputs, num_items, inner):
        inputs = dict(inputs)  # the caller's batch keeps its labels (a later transform reads them)
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        return self.loss_fn(outputs.logits, labels), outputs


class Callbacks(Component):
    """Trainer callbacks that a setting turns on (early stopping, TensorBoard, new token rows' rate)."""

    def __init__(self, callbacks: list[TrainerCallback]):
        self._callbacks = list(callbacks)

    def callbacks(self) -> list[TrainerCallback]:
        return self._callbacks
