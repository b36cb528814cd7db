"""Ranking with a two-tower bi-encoder (``task.architecture: two_tower``): one shared encoder embeds the user's
history text and each candidate's text apart; the interest score is their cosine similarity.

Training is the bi-encoder's sentence-transformers path (graftkit/tasks/common/bi_encoder.py) with
MultipleNegativesRankingLoss, the standard sentence-transformers recipe for retrieval: each click is a
(history, clicked item, the impression's non-clicked items) row, so the loss is a softmax that must rank
the click above the items shown beside it (MIND's hard negatives, as in NRMS's negative sampling) and above
every other item of the batch (in-batch negatives, free extra contrast). Cosine similarity (scale 20) keeps
scores comparable across users, which candidate retrieval needs. Evaluation, prediction and the model card
then follow graftkit's one path (``TrainSession.finish``): the Predictor runs :class:`TwoTowerScorer` and
the report gives MIND's per-impression metrics, as for the cross-encoder.
"""
from __future__ import annotations

from typing import Any

from graftkit.data.dataset import Example
from graftkit.data.readers import Row
from graftkit.errors import DataError
from graftkit.report.ranking import mind_metrics
from graftkit.tasks.base import Task
from graftkit.tasks.ranking import preprocess
from graftkit.tasks.ranking.capabilities import TwoTowerCard, TwoTowerDecoding, TwoTowerRanks, TwoTowerTraining
from graftkit.tasks.ranking.config import RankingConfig
from graftkit.tasks.ranking.head import TwoTowerScorer

METRICS = ("auc", "mrr", "ndcg@5", "ndcg@10")


class TwoTowerRankingTask(Task):
    """score(history, candidate) = cos(encoder(history), encoder(candidate)); the ranking task type's
    variant for ``task.architecture: two_tower``."""

    name = "ranking"
    variant = "two_tower"
    config_class = RankingConfig
    model_class = TwoTowerScorer
    default_metric = "loss"  # trained without validation passes, like the embedding task
    capabilities = (TwoTowerTraining, TwoTowerDecoding, TwoTowerRanks, TwoTowerCard)

    # -- data (the same examples as the cross-encoder)
    def read(self, path: str, data_cfg, with_labels: bool = True) -> tuple[list[Example], int]:
        return preprocess.read_examples(path, self.task_cfg, data_cfg, with_labels, self.parse_label), 0

    def parse_label(self, raw: Any, row: Row) -> str:
        return preprocess.parse_click(raw, row, str(self.data_cfg.label_column) if self.data_cfg else "label")

    def fit(self, train: list[Example]) -> None:
        if {e.label for e in train} != {"0", "1"}:
            raise DataError(train[0].path, "ranking needs clicked (1) and non-clicked (0) rows")

    # -- reporting and state
    def report(self, examples, predictions, out_dir, plots: bool = True) -> dict:
        """MIND's per-impression metrics under ``ranking`` (as for the cross-encoder) and at the top level,
        where the training log line and the model card's index read a split's numbers."""
        ranking = mind_metrics([preprocess.impression_of(e) for e in examples], [int(e.label) for e in examples],
                               [p.score for p in predictions])
        return {**{k: ranking[k] for k in METRICS}, "n": len(examples), "ranking": ranking}

    def state(self) -> dict:
        return {"architecture": "two_tower", "similarity": "cosine"}

    def load_state(self, state: dict) -> None:
        return None
