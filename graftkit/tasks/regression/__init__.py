"""Regression / scoring: one or more continuous targets per text or text pair (relevance, click-through)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
from transformers import DataCollatorWithPadding

from graftkit.data.dataset import Example
from graftkit.data.readers import Row
from graftkit.errors import DataError
from graftkit.tasks.base import TaskBase
from graftkit.tasks.classification.preprocess import encode_texts
from graftkit.tasks.regression import head, metrics, postprocess, preprocess
from graftkit.tasks.regression.config import RegressionConfig


class RegressionTask(TaskBase):
    """A linear head predicting every target column; MSE or Huber loss on optionally z-scored targets."""

    name = "regression"
    config_class = RegressionConfig
    model_class = head.MODEL_CLASS
    default_metric = "rmse"
    fixed_labels = True

    def __init__(self, task_cfg=None, data_cfg=None):
        super().__init__(task_cfg, data_cfg)
        col = data_cfg.label_column if data_cfg else "label"
        self.columns: list[str] = list(col) if isinstance(col, list) else [col]
        self.mean: list[float] = [0.0] * len(self.columns)
        self.std: list[float] = [1.0] * len(self.columns)
        self.binary: list[bool] = [False] * len(self.columns)

    # -- data
    def parse_label(self, raw: Any, row: Row) -> tuple[float, ...]:
        return preprocess.parse_targets(raw, row, self.columns)

    def strat_key(self, example: Example):
        return "all"  # continuous targets: a plain seeded shuffle

    def fit(self, train: list[Example]) -> None:
        y = preprocess.target_matrix(train)
        if len(train) < 2:
            raise DataError(train[0].path, "regression needs at least two training rows")
        self.mean, self.std = preprocess.fit_scaler(y, self.task_cfg.standardize)
        self.binary = preprocess.is_binary(y)

    # -- model and training
    def model_kwargs(self) -> dict:
        return {"num_labels": len(self.columns), "problem_type": "regression",
                "id2label": dict(enumerate(self.columns)), "label2id": {c: i for i, c in enumerate(self.columns)}}

    def scaled(self, examples: Sequence[Example]) -> np.ndarray:
        return ((preprocess.target_matrix(examples) - np.array(self.mean)) / np.array(self.std)).astype(np.float32)

    def build_dataset(self, examples: list[Example], tokenizer, max_length: int):
        import datasets

        cols = dict(encode_texts([self.input_of(e) for e in examples], tokenizer, max_length,
                                 padding=False, return_tensors=None))
        ds = datasets.Dataset.from_dict(cols)
        # float32 targets: the head's MSE needs the logits' dtype
        return ds.add_column("labels", self.scaled(examples).tolist(),
                             feature=datasets.List(datasets.Value("float32")))

    def collator(self, tokenizer):
        return DataCollatorWithPadding(tokenizer)

    def loss_fn(self, train: list[Example]):
        return head.make_loss(self.task_cfg.loss, self.task_cfg.huber_delta)

    def compute_metrics(self, eval_pred) -> dict[str, float]:
        out, gold = eval_pred.predictions, eval_pred.label_ids
        out = out[0] if isinstance(out, tuple) else out
        pred = postprocess.unscale(out, self.mean, self.std)
        gold = postprocess.unscale(gold, self.mean, self.std)
        return metrics.scores(gold, pred, self.columns, self.binary)

    # -- inference
    def encode(self, inputs: Sequence[Any], tokenizer, max_length: int):
        return dict(encode_texts(inputs, tokenizer, max_length)), None

    def decode(self, logits: np.ndarray, context: Any) -> list[dict]:
        return postprocess.decode(logits, self.columns, self.mean, self.std)

    # -- reporting and state
    def report(self, examples, predictions, out_dir: Path | None, plots: bool = True) -> dict:
        return metrics.report(examples, predictions, self.columns, self.binary, out_dir)

    def state(self) -> dict:
        return {"targets": self.columns, "mean": self.mean, "std": self.std, "binary": self.binary,
                "loss": self.task_cfg.loss, "standardize": self.task_cfg.standardize}

    def load_state(self, state: dict) -> None:
        self.columns = list(state["targets"])
        self.mean, self.std = list(state["mean"]), list(state["std"])
        self.binary = list(state.get("binary") or [False] * len(self.columns))
