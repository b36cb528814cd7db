"""Reward models: a one-output sequence-scoring head over any encoder or decoder, trained on preference pairs
(prompt, chosen, rejected) with the Bradley–Terry loss of trl's ``RewardTrainer``.

Training runs on graftkit's one Trainer path (the loss is the task's ``loss_fn``; trl's preference collator
batches the pairs), so LoRA, early stopping and every other Trainer component apply as for any task; trl's
``RewardTrainer`` is a second ``Trainer`` subclass that would bypass them. ``predict`` scores (prompt, response)
pairs; evaluation scores both responses of each pair and reports pairwise accuracy and reward margins.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import AutoModelForSequenceClassification

from graftkit.data.dataset import Example
from graftkit.data.readers import Row
from graftkit.errors import ConfigError, DataError
from graftkit.tasks.base import Task
from graftkit.tasks.common.export import TokenizerGraph
from graftkit.tasks.reward import metrics, preprocess
from graftkit.tasks.reward.capabilities import RewardCard, RewardDecoding, RewardScores, RewardTraining
from graftkit.tasks.reward.config import RewardConfig


class RewardTask(Task):
    """Scores how good a response is for a prompt; learns it from which of two responses people preferred."""

    name = "reward"
    config_class = RewardConfig
    model_class = AutoModelForSequenceClassification
    default_metric = "accuracy"
    capabilities = (RewardTraining, RewardDecoding, RewardScores, RewardCard, TokenizerGraph)

    def __init__(self, task_cfg=None, data_cfg=None):
        super().__init__(task_cfg, data_cfg)
        if data_cfg is not None and not data_cfg.text_pair_column:
            raise ConfigError("task.type reward scores (prompt, response) pairs: set data.text_pair_column to the "
                              "response column of the files you will score (e.g. response); data.text_column is "
                              "the prompt column")

    # -- data
    def examples_from_rows(self, rows: list[Row], data_cfg, with_labels: bool = True) -> tuple[list[Example], int]:
        """Preference pairs (with labels), or (prompt, response) inputs (without); invalid rows are errors, or
        dropped and counted with ``data.drop_invalid``."""
        if not rows:
            raise DataError("", "no rows")
        t, out, dropped = self.task_cfg, [], 0
        for row in rows:
            try:
                out.append(preprocess.row_example(row, data_cfg.text_column, t.chosen_column, t.rejected_column)
                           if with_labels else preprocess.scored_example(row, data_cfg.text_column,
                                                                         data_cfg.text_pair_column))
            except DataError:
                if not data_cfg.drop_invalid:
                    raise
                dropped += 1
        if not out:
            raise DataError(rows[0].path, f"no usable rows ({dropped} invalid rows dropped)")
        return out, dropped

    def parse_label(self, raw: Any, row: Row) -> Any:
        return raw

    def strat_key(self, example: Example):
        return "all"  # no classes: a seeded random split of the pairs

    def fit(self, train: list[Example]) -> None:
        return None  # no label state: the head has one output

    def input_of(self, example: Example) -> Any:
        """A preference pair is scored on both responses; an unlabelled row on its one response."""
        rejected = example.extra.get("rejected")
        return (example.text, example.text_pair) if rejected is None else (example.text, example.text_pair, rejected)

    # -- reporting and state
    def report(self, examples, predictions, out_dir: Path | None, plots: bool = True) -> dict:
        return metrics.report(examples, predictions, out_dir)

    def state(self) -> dict:
        return {}

    def load_state(self, state: dict) -> None:
        return None
