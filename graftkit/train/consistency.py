"""The consistency term of self-training (``train.self_training.consistency``), after UDA (Xie et al. 2020):
each training batch is also seen as an augmented copy, and the divergence of the copy's prediction from the
original's (held fixed) joins the loss, so the model learns to answer the same when the wording shifts.

The copy is made from the batch's own tokens (decoded, edited with graftkit's word operations, encoded again),
so it needs no second dataset; the divergence is the task's (``TrainsWithTrainer.output_divergence``).
"""
from __future__ import annotations

import random
from typing import Callable

import torch

from graftkit.config import SelfTrainingConfig
from graftkit.data.augment import variant
from graftkit.modeling.outputs import output_logits
from graftkit.tasks.capabilities import SelfTrains
from graftkit.train.components import TrainingOnly


class Consistency(TrainingOnly):
    """A loss transform: the task loss + ``weight`` × divergence(original's logits fixed, copy's logits)."""

    name = "consistency"
    #: the whole section: self-training itself runs around the Trainer (graftkit/train/self_training.py)
    keys = tuple(f"train.self_training.{name}" for name in SelfTrainingConfig.model_fields)
    needs = SelfTrains

    def __init__(self, settings, tokenizer, max_length: int, divergence: Callable, seed: int):
        self.weight, self.ops, self.rate = settings.consistency, list(settings.consistency_ops), settings.consistency_rate
        self.tokenizer, self.max_length, self.divergence = tokenizer, max_length, divergence
        self.rng = random.Random(seed)

    def copies(self, input_ids: torch.Tensor) -> list[str]:
        texts = self.tokenizer.batch_decode(input_ids, skip_special_tokens=True)
        return [variant(t, self.rng.choice(self.ops), self.rng, self.rate, None) for t in texts]

    def training_loss(self, trainer, model, inputs, num_items, inner):
        loss, outputs = inner(model, inputs, num_items)
        encoded = self.tokenizer(self.copies(inputs["input_ids"]), truncation=True, max_length=self.max_length,
                                 padding=True, return_tensors="pt").to(inputs["input_ids"].device)
        copy_logits = output_logits(model(**encoded))
        original = output_logits(outputs).detach()
        return loss + self.weight * self.divergence(original, copy_logits, inputs.get("labels")), outputs

    def record(self) -> dict:
        return {"weight": self.weight, "ops": self.ops, "rate": self.rate}
