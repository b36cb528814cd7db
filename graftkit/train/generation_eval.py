"""Validation by generating text, for tasks that ``Generates``: an evaluation hook (graftkit/train/components.py)."""
from __future__ import annotations

from graftkit.data.dataset import Example
from graftkit.tasks.capabilities import Generates
from graftkit.train.components import Component


class GenerationMetrics(Component):
    """At each evaluation, generate the validation inputs' outputs and score them (ROUGE, BLEU, chrF, exact
    match: ``eval_rougeL``, ...); early stopping and best-checkpoint selection read them like any metric."""

    name = "generation_metrics"

    def __init__(self, generates: Generates, tokenizer, examples: list[Example]):
        self.generates, self.tokenizer, self.examples = generates, tokenizer, examples

    def evaluate(self, trainer) -> dict[str, float]:
        model = trainer.accelerator.unwrap_model(trainer.model)
        return self.generates.evaluate_generation(model, self.tokenizer, self.examples)
