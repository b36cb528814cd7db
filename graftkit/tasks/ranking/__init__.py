"""Ranking (a recommender's interest model) over (user history, candidate item) pairs.

Training data is a MIND folder (news.tsv + behaviors.tsv; each impression's candidates become
(history, candidate, clicked) pairs) or a CSV of history text, candidate text, label 0/1 and an
optional ``impression`` column. ``task.architecture`` picks the variant:

- ``cross_encoder`` (default, this class): P(click) from a classifier over the joined pair;
- ``two_tower`` (:class:`~graftkit.tasks.ranking.two_tower.TwoTowerRankingTask`): cosine of a shared
  encoder's embeddings of history and candidate, for candidate retrieval.

Both reports add MIND's per-impression metrics (AUC, MRR, nDCG@5, nDCG@10). Give validation/test as
their own folders or files: a row split of one folder would cut impressions apart.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from graftkit.data.dataset import Example
from graftkit.data.readers import Row
from graftkit.errors import DataError
from graftkit.report.ranking import mind_metrics
from graftkit.tasks.common.classifier import ClassifierTask
from graftkit.tasks.ranking import preprocess
from graftkit.tasks.ranking.capabilities import CROSS_ENCODER_CAPABILITIES
from graftkit.tasks.ranking.config import RankingConfig
from graftkit.tasks.ranking.two_tower import TwoTowerRankingTask

POSITIVE = preprocess.POSITIVE


class RankingTask(ClassifierTask):
    """P(click | history, candidate) from a pair classifier; MIND metrics per impression."""

    name = "ranking"
    config_class = RankingConfig
    capabilities = CROSS_ENCODER_CAPABILITIES
    variants = (TwoTowerRankingTask,)

    @classmethod
    def variant_for(cls, task_cfg):
        return TwoTowerRankingTask if getattr(task_cfg, "architecture", "") == "two_tower" else cls

    def __init__(self, task_cfg=None, data_cfg=None):
        super().__init__(task_cfg, data_cfg)
        self.multi_label = False

    # -- data
    def read(self, path: str, data_cfg, with_labels: bool = True) -> tuple[list[Example], int]:
        """Pairs from a MIND folder or a CSV; MIND training files keep ``negatives_per_positive`` negatives per click."""
        return preprocess.read_examples(path, self.task_cfg, data_cfg, with_labels, self.parse_label), 0

    def parse_label(self, raw: Any, row: Row) -> str:
        return preprocess.parse_click(raw, row, self.label_column)

    def fit(self, train: list[Example]) -> None:
        super().fit(train)
        if self.labels != ["0", "1"]:
            raise DataError(train[0].path, f"ranking needs clicked (1) and non-clicked (0) rows; got {self.labels}")

    # -- reporting
    def report(self, examples, predictions, out_dir: Path | None, plots: bool = True) -> dict:
        out = super().report(examples, predictions, out_dir, plots)
        scores = [p.scores[POSITIVE] for p in predictions]
        out["ranking"] = mind_metrics([preprocess.impression_of(e) for e in examples],
                                      [int(e.label) for e in examples], scores)
        return out
