"""Regression / scoring: one or more continuous targets per text or text pair (relevance, click-through)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from graftkit.data.dataset import Example
from graftkit.data.readers import Row
from graftkit.errors import DataError
from graftkit.tasks.base import Task
from graftkit.tasks.common.augment import TextAugments
from graftkit.tasks.common.export import TokenizerGraph
from graftkit.tasks.regression import head, metrics, preprocess
from graftkit.tasks.regression.capabilities import (
    RegressionCard,
    RegressionDecoding,
    RegressionExplains,
    RegressionGold,
    RegressionMean,
    RegressionPerturbs,
    RegressionTraining,
)
from graftkit.tasks.regression.config import RegressionConfig


class RegressionTask(Task):
    """A linear head predicting every target column; MSE or Huber loss on optionally z-scored targets."""

    name = "regression"
    config_class = RegressionConfig
    model_class = head.MODEL_CLASS
    default_metric = "rmse"
    capabilities = (RegressionTraining, RegressionDecoding, RegressionMean, RegressionGold, RegressionCard,
                    RegressionExplains, RegressionPerturbs, TextAugments, TokenizerGraph)

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
