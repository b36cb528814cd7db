"""The classifier task: labels per text (or text pair), softmax or sigmoid over a linear head.

Classification is this task; ranking's cross-encoder is this task over (history, candidate) pairs.
Its capabilities live beside it (``capabilities.py``: training, decoding, calibration, ensembles,
card; ``trust.py``: explanations, robustness, label errors, distillation).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from graftkit.data.dataset import Example
from graftkit.data.readers import Row
from graftkit.errors import DataError
from graftkit.tasks.base import Task
from graftkit.tasks.common import class_labels
from graftkit.tasks.common.classifier import head, metrics


class ClassifierTask(Task):
    """One label per text (softmax) or a set of labels per text (sigmoid + per-label threshold)."""

    model_class = head.MODEL_CLASS
    default_metric = "macro_f1"

    def __init__(self, task_cfg=None, data_cfg=None):
        super().__init__(task_cfg, data_cfg)
        self.multi_label = bool(self.task_cfg.multi_label or (data_cfg and data_cfg.label_separator))
        self.labels: list[str] = []
        self.thresholds: list[float] = []
        #: temperature scaling (graftkit/evaluate/calibration.py): one T, or one per label for multi-label
        self.temperature: list[float] = [1.0]

    # -- data
    @property
    def label_column(self) -> str:
        return str(self.data_cfg.label_column) if self.data_cfg else "label"

    def parse_label(self, raw: Any, row: Row) -> Any:
        sep = self.data_cfg.label_separator if self.data_cfg else None
        if self.multi_label and sep is None and not isinstance(raw, (list, tuple)):
            sep = "|"
        return class_labels.parse_label(raw, row, self.label_column, sep)

    def strat_key(self, example: Example):
        return "|".join(example.label) if self.multi_label else example.label

    def fit(self, train: list[Example]) -> None:
        self.labels = class_labels.sort_labels(class_labels.label_set(train, self.multi_label))
        if len(self.labels) < 2 and not self.multi_label:
            raise DataError(train[0].path, f"training data has a single label {self.labels}; "
                            "classification needs at least two")
        self.thresholds = [self.task_cfg.threshold] * len(self.labels)

    @property
    def label2id(self) -> dict[str, int]:
        return {lab: i for i, lab in enumerate(self.labels)}

    def check(self, examples: list[Example]) -> None:
        class_labels.check_known(examples, self.label2id, self.multi_label, self.label_column)

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
