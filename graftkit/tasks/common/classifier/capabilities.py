"""The classifier's training, decoding, calibration, ensemble and card capabilities."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from transformers import DataCollatorWithPadding

from graftkit.data.dataset import Example
from graftkit.modeling.divergence import bernoulli_divergence
from graftkit.tasks.capabilities import (
    Calibrates,
    DecodesLogits,
    GoldLabels,
    ScoresLabels,
    TrainsWithTrainer,
)
from graftkit.tasks.common import class_labels
from graftkit.tasks.common.card import StandardCard
from graftkit.tasks.common.classifier import head, metrics, postprocess
from graftkit.tasks.common.ensemble import SoftmaxMean
from graftkit.tasks.common.text import encode_texts


class ClassifierTraining(TrainsWithTrainer):
    """Token features of the text (pair), class-id or 0/1 targets, optional class weights."""

    def model_kwargs(self) -> dict:
        t = self.task
        return {"num_labels": len(t.labels), "id2label": dict(enumerate(t.labels)), "label2id": t.label2id,
                "problem_type": "multi_label_classification" if t.multi_label else "single_label_classification"}

    def build_dataset(self, examples: list[Example], tokenizer, max_length: int):
        import datasets

        t = self.task
        cols = dict(encode_texts([t.input_of(e) for e in examples], tokenizer, max_length, padding=False,
                                 return_tensors=None))
        cols["labels"] = self._targets(examples)
        return datasets.Dataset.from_dict(cols)

    def _targets(self, examples: list[Example]) -> list:
        """Class ids (0/1 vectors for multi-label); an example without a label (None: an out-of-scope row that
        outlier exposure trains) gets -100, which the cross-entropy ignores."""
        t = self.task
        known = iter(class_labels.targets([e for e in examples if e.label is not None], t.label2id, t.multi_label))
        return [-100 if e.label is None else next(known) for e in examples]

    def collator(self, tokenizer):
        return DataCollatorWithPadding(tokenizer)

    def loss_fn(self, train: list[Example]):
        t = self.task
        w = class_labels.class_weights(train, t.labels, t.multi_label, t.task_cfg.class_weights)
        return head.make_loss(w, t.multi_label)

    @property
    def smooths_labels(self) -> bool:
        return not self.task.multi_label

    def output_divergence(self, first, second, labels=None):
        if self.task.multi_label:
            return bernoulli_divergence(first, second)
        return super().output_divergence(first, second, labels)

    def compute_metrics(self, eval_pred) -> dict[str, float]:
        logits, gold = eval_pred.predictions, eval_pred.label_ids
        logits = logits[0] if isinstance(logits, tuple) else logits
        if self.task.multi_label:
            pred = (postprocess.sigmoid(logits) >= np.array(self.task.thresholds)).astype(int)
            return metrics.scores(gold.astype(int), pred, True)
        return metrics.scores(gold, logits.argmax(-1), False)


class ClassifierDecoding(DecodesLogits):
    """Logits divided by the fitted temperature (torch and ONNX alike), then softmax or sigmoid."""

    def encode(self, inputs: Sequence[Any], tokenizer, max_length: int):
        return dict(encode_texts(inputs, tokenizer, max_length)), None

    def decode(self, logits: np.ndarray, context: Any):
        t = self.task
        scaled = np.asarray(logits, dtype=np.float64) / np.asarray(t.temperature)
        return postprocess.decode(scaled, t.labels, t.multi_label, t.thresholds)


class ClassifierLabels(ScoresLabels):
    @property
    def labels(self) -> list[str]:
        return list(self.task.labels)

    @property
    def multi_label(self) -> bool:
        return self.task.multi_label


class ClassifierCalibration(Calibrates):
    """One temperature (one per label for multi-label); multi-label thresholds tuned on validation."""

    def temperature_targets(self, examples: list[Example]) -> np.ndarray:
        t = self.task
        return np.asarray(class_labels.targets(examples, t.label2id, t.multi_label))

    @property
    def temperature(self) -> list[float]:
        return list(self.task.temperature)

    def set_temperature(self, temperature: list[float]) -> None:
        t = self.task
        want = len(t.labels) if t.multi_label else 1
        if len(temperature) != want:
            raise ValueError(f"expected {want} temperature(s), got {len(temperature)}")
        t.temperature = [float(x) for x in temperature]

    def tune_decision(self, examples: list[Example], predictions) -> str | None:
        t = self.task
        if not (t.multi_label and t.task_cfg.tune_thresholds and examples):
            return None
        probs = np.array([[p.scores[lab] for lab in t.labels] for p in predictions])
        gold = np.array(class_labels.targets(examples, t.label2id, True))
        t.thresholds = postprocess.tune_thresholds(probs, gold, t.task_cfg.threshold)
        return ("the per-label thresholds were tuned on the validation split, so its scores are optimistic; the test "
                "split is held out")


class ClassifierMean(SoftmaxMean):
    """The members' probabilities averaged: softmax for one label, per-label sigmoid for multi-label."""

    def combine_mean(self, logits: list[torch.Tensor]) -> torch.Tensor:
        if not self.task.multi_label:
            return super().combine_mean(logits)
        return torch.logit(torch.sigmoid(torch.stack([x.float() for x in logits])).mean(0), eps=1e-7)


class ClassifierGold(GoldLabels):
    def gold_key(self, example: Example):
        return example.label


class ClassifierCard(StandardCard):
    hub_pipeline = "text-classification"

    def notes(self, results: dict) -> list[str]:
        if self.task.multi_label and results.get("validation"):
            return ["Multi-label thresholds (and the temperature) were tuned on the validation split, so its "
                    "figures are optimistic; the test split is the held-out estimate."]
        return []
