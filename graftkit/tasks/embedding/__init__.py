"""Sentence embeddings (bi-encoder) for retrieval: (query, positive) pairs or same-label rows.

Unlike most tasks this one is trained by sentence-transformers' own trainer with an in-batch-negatives
loss (its capability is ``TrainsItself``, graftkit/tasks/embedding/capabilities.py). Its run folder is
a sentence-transformers model folder plus graftkit's files.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import AutoModel

from graftkit.data.dataset import Example, rows_to_examples
from graftkit.data.readers import Row
from graftkit.errors import DataError
from graftkit.tasks.base import Task
from graftkit.tasks.common.class_labels import parse_label as parse_class_label
from graftkit.tasks.embedding.capabilities import EmbeddingCard, EmbeddingEmbeds, EmbeddingRanks, EmbeddingTraining
from graftkit.tasks.embedding.config import EmbeddingConfig


class EmbeddingTask(Task):
    """Learns a text embedding in which a query lies close to its positives."""

    name = "embedding"
    config_class = EmbeddingConfig
    #: the run folder's root is a plain transformers encoder; sentence-transformers adds pooling on top
    model_class = AutoModel
    default_metric = "mrr@10"
    capabilities = (EmbeddingTraining, EmbeddingEmbeds, EmbeddingRanks, EmbeddingCard)

    def __init__(self, task_cfg=None, data_cfg=None):
        super().__init__(task_cfg, data_cfg)
        self.label_mode = not (data_cfg and data_cfg.text_pair_column)

    # -- data
    def examples_from_rows(self, rows: list[Row], cfg, with_labels: bool = True) -> tuple[list[Example], int]:
        """Rows (of a file or a hub split) → examples; labels are read only in label mode (pairs need none)."""
        return rows_to_examples(rows, cfg, self.parse_label, with_labels=self.label_mode)

    def parse_label(self, raw: Any, row: Row) -> str:
        return parse_class_label(raw, row, str(self.data_cfg.label_column), None)

    def strat_key(self, example: Example):
        return example.label if self.label_mode else "all"

    def fit(self, train: list[Example]) -> None:
        if len(train) < 2:
            raise DataError(train[0].path, "an embedding model needs at least two training rows (in-batch negatives)")

    # -- reporting and state: retrieval metrics are measured at training (graftkit/tasks/embedding/train.py)
    def report(self, examples, predictions, out_dir: Path | None, plots: bool = True) -> dict:
        return {"n": len(examples)}

    def state(self) -> dict:
        return {"mode": "labels" if self.label_mode else "pairs", "similarity": "cosine"}

    def load_state(self, state: dict) -> None:
        self.label_mode = state.get("mode") == "labels"
