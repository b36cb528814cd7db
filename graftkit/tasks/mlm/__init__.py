"""Masked-language-model pre-training (``task.type: mlm``) on unlabelled text.

Data: a ``.txt`` file holds one document per non-blank line; any other file is read by the
usual readers and ``data.text_column`` is the text. The result is a plain
``*ForMaskedLM`` folder, so another config can start from it (``model.name_or_path: runs/NAME``);
its task heads are then freshly initialised on the further-trained encoder.

Evaluation masks each validation/test text reproducibly (seeded by the text) and reports the
perplexity and accuracy of the hidden tokens. ``graftkit predict RUN "text with [MASK]"`` lists
the likeliest tokens for each ``[MASK]``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from graftkit.data.dataset import TEXT_SUFFIXES, Example, read_documents
from graftkit.errors import DataError
from graftkit.tasks.base import Task
from graftkit.tasks.mlm import head, metrics
from graftkit.tasks.mlm.capabilities import MlmCard, MlmDecoding, MlmTraining
from graftkit.tasks.mlm.config import MlmConfig


class MlmTask(Task):
    """Masked-LM on plain text, with whole-word masking (jieba words for Chinese)."""

    name = "mlm"
    config_class = MlmConfig
    model_class = head.MODEL_CLASS
    default_metric = "loss"
    capabilities = (MlmTraining, MlmDecoding, MlmCard)

    # -- data
    def read(self, path: str, data_cfg, with_labels: bool = True) -> tuple[list[Example], int]:
        if Path(path).suffix.lower() in TEXT_SUFFIXES and data_cfg.format == "auto":
            return read_documents(path, data_cfg.encoding), 0
        return super().read(path, data_cfg, with_labels=False)

    def parse_label(self, raw: Any, row) -> Any:
        return None

    def strat_key(self, example: Example):
        return "all"  # unlabelled: a seeded random split

    def fit(self, train: list[Example]) -> None:
        if not train:
            raise DataError(self.data_cfg.train if self.data_cfg else "train", "holds no text")

    def input_of(self, example: Example) -> Any:
        return example.text

    # -- reporting and state
    def report(self, examples, predictions, out_dir: Path | None, plots: bool = True) -> dict:
        return metrics.report(predictions, out_dir)

    def state(self) -> dict:
        return {"mlm_probability": self.task_cfg.mlm_probability, "whole_word_mask": self.task_cfg.whole_word_mask}

    def load_state(self, state: dict) -> None:
        return None  # everything the task needs at inference is in task.* of the run's config
