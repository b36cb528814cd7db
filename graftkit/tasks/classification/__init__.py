"""Sequence classification: sentiment, topic, intent; single- or multi-label; text or text pair."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
from transformers import DataCollatorWithPadding

from graftkit.data.dataset import Example
from graftkit.data.readers import Row
from graftkit.errors import DataError
from graftkit.tasks.base import TaskBase
from graftkit.tasks.classification import head, metrics, postprocess, preprocess
from graftkit.tasks.classification.config import ClassificationConfig


class ClassificationTask(TaskBase):
    """One label per text (softmax) or a set of labels per text (sigmoid + per-label threshold)."""

    name = "classification"
    config_class = ClassificationConfig
    model_class = head.MODEL_CLASS
    default_metric = "macro_f1"
    fixed_labels = True

    def __init__(self, task_cfg=None, data_cfg=None):
        super().__init__(task_cfg, data_cfg)
        self.multi_label = bool(self.task_cfg.multi_label or (data_cfg and data_cfg.label_separator))
        self.labels: list[str] = []
        self.thresholds: list[float] = []
        #: temperature scaling (graftkit/evaluate/calibration.py): one T, or one per label for multi-label
        self.temperature: list[float] = [1.0]

    # -- data
    @property
    def _column(self) -> str:
        return self.data_cfg.label_column if self.data_cfg else "label"

    def parse_label(self, raw: Any, row: Row) -> Any:
        sep = self.data_cfg.label_separator if self.data_cfg else None
        if self.multi_label and sep is None and not isinstance(raw, (list, tuple)):
            sep = "|"
        return preprocess.parse_label(raw, row, self._column, sep)

    def strat_key(self, example: Example):
        return "|".join(example.label) if self.multi_label else example.label

    def fit(self, train: list[Example]) -> None:
        self.labels = preprocess.sort_labels(preprocess.label_set(train, self.multi_label))
        if len(self.labels) < 2 and not self.multi_label:
            raise DataError(train[0].path, f"training data has a single label {self.labels}; "
                            "classification needs at least two")
        self.thresholds = [self.task_cfg.threshold] * len(self.labels)

    @property
    def label2id(self) -> dict[str, int]:
        return {lab: i for i, lab in enumerate(self.labels)}

    def check(self, examples: list[Example]) -> None:
        preprocess.check_known(examples, self.label2id, self.multi_label, self._column)

    # -- model and training
    def model_kwargs(self) -> dict:
        return {"num_labels": len(self.labels), "id2label": dict(enumerate(self.labels)),
                "label2id": self.label2id,
                "problem_type": "multi_label_classification" if self.multi_label else "single_label_classification"}

    def build_dataset(self, examples: list[Example], tokenizer, max_length: int):
        import datasets

        enc = preprocess.encode_texts([self.input_of(e) for e in examples], tokenizer, max_length,
                                      padding=False, return_tensors=None)
        cols = dict(enc)
        cols["labels"] = preprocess.targets(examples, self.label2id, self.multi_label)
        return datasets.Dataset.from_dict(cols)

    def collator(self, tokenizer):
        return DataCollatorWithPadding(tokenizer)

    def loss_fn(self, train: list[Example]):
        w = preprocess.class_weights(train, self.labels, self.multi_label, self.task_cfg.class_weights)
        return head.make_loss(w, self.multi_label)

    def compute_metrics(self, eval_pred) -> dict[str, float]:
        logits, gold = eval_pred.predictions, eval_pred.label_ids
        logits = logits[0] if isinstance(logits, tuple) else logits
        if self.multi_label:
            pred = (postprocess.sigmoid(logits) >= np.array(self.thresholds)).astype(int)
            return metrics.scores(gold.astype(int), pred, True)
        return metrics.scores(gold, logits.argmax(-1), False)

    # -- inference
    def encode(self, inputs: Sequence[Any], tokenizer, max_length: int):
        return dict(preprocess.encode_texts(inputs, tokenizer, max_length)), None

    def decode(self, logits: np.ndarray, context: Any) -> list[dict]:
        scaled = np.asarray(logits, dtype=np.float64) / np.asarray(self.temperature)  # torch and ONNX alike
        return postprocess.decode(scaled, self.labels, self.multi_label, self.thresholds)

    def temperature_targets(self, examples: list[Example]) -> np.ndarray | None:
        return np.asarray(preprocess.targets(examples, self.label2id, self.multi_label))

    def set_temperature(self, temperature: list[float]) -> None:
        if len(temperature) != (len(self.labels) if self.multi_label else 1):
            raise ValueError(f"expected {len(self.labels) if self.multi_label else 1} temperature(s), "
                             f"got {len(temperature)}")
        self.temperature = [float(t) for t in temperature]

    def calibrate(self, examples: list[Example], predictions: list[dict]) -> None:
        if not (self.multi_label and self.task_cfg.tune_thresholds and examples):
            return
        probs = np.array([[p["scores"][lab] for lab in self.labels] for p in predictions])
        gold = np.array(preprocess.targets(examples, self.label2id, True))
        self.thresholds = postprocess.tune_thresholds(probs, gold, self.task_cfg.threshold)

    # -- reporting and state
    def report(self, examples, predictions, out_dir: Path | None, plots: bool = True) -> dict:
        return metrics.report(examples, predictions, self.labels, self.multi_label, out_dir, plots)

    def state(self) -> dict:
        return {"labels": self.labels, "multi_label": self.multi_label, "thresholds": self.thresholds,
                "temperature": self.temperature}

    def load_state(self, state: dict) -> None:
        self.labels = list(state["labels"])
        self.multi_label = bool(state["multi_label"])
        self.thresholds = list(state.get("thresholds") or [self.task_cfg.threshold] * len(self.labels))
        self.temperature = [float(t) for t in state.get("temperature") or [1.0]]  # runs from before calibration
