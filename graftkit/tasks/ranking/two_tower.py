"""Ranking with a two-tower bi-encoder (``task.architecture: two_tower``): one shared encoder embeds the user's
history text and each candidate's text apart; the interest score is their cosine similarity.

Training is the embedding task's sentence-transformers path (:func:`graftkit.tasks.embedding.train.fit_bi_encoder`)
with MultipleNegativesRankingLoss, the standard sentence-transformers recipe for retrieval: each click is a
(history, clicked item, the impression's non-clicked items) row, so the loss is a softmax that must rank
the click above the items shown beside it (MIND's hard negatives, as in NRMS's negative sampling) and above
every other item of the batch (in-batch negatives, free extra contrast). Cosine similarity (scale 20) keeps
scores comparable across users, which candidate retrieval needs. Evaluation, prediction and the model card
then follow graftkit's one path (``TrainSession.finish``): the Predictor runs :class:`TwoTowerScorer` and
the report gives MIND's per-impression metrics, as for the cross-encoder.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from graftkit.data.dataset import Example, load_splits
from graftkit.data.readers import Row
from graftkit.errors import DataError
from graftkit.modeling.run_folder import RunFolder
from graftkit.tasks.base import TaskBase
from graftkit.tasks.embedding.train import fit_bi_encoder, reject_classifier_switches
from graftkit.tasks.ranking import preprocess
from graftkit.tasks.ranking.config import RankingConfig
from graftkit.tasks.ranking.head import TwoTowerScorer
from graftkit.tasks.ranking.metrics import mind_metrics

METRICS = ("auc", "mrr", "ndcg@5", "ndcg@10")


class TwoTowerRankingTask(TaskBase):
    """score(history, candidate) = cos(encoder(history), encoder(candidate)); built by ``RankingTask`` when
    ``task.architecture`` is ``two_tower``."""

    name = "ranking"
    config_class = RankingConfig
    model_class = TwoTowerScorer
    owns_training = True  # sentence-transformers' trainer (a transformers.Trainer subclass), see the module doc
    default_metric = "loss"  # trained without validation passes, like the embedding task

    # -- data (the same examples as the cross-encoder)
    def read(self, path: str, data_cfg, with_labels: bool = True) -> tuple[list[Example], int]:
        return preprocess.read_examples(path, self.task_cfg, data_cfg, with_labels, self.parse_label), 0

    def parse_label(self, raw: Any, row: Row) -> str:
        return preprocess.parse_click(raw, row, str(self.data_cfg.label_column) if self.data_cfg else "label")

    def fit(self, train: list[Example]) -> None:
        if {e.label for e in train} != {"0", "1"}:
            raise DataError(train[0].path, "ranking needs clicked (1) and non-clicked (0) rows")

    def model_kwargs(self) -> dict:
        return {}

    def train_run(self, cfg, session) -> RunFolder:
        """Fit the bi-encoder on contrastive rows, then evaluate and finish the run on graftkit's path."""
        reject_classifier_switches(cfg, "task.architecture two_tower")
        splits = load_splits(cfg.data, self.parse_label, self.strat_key, reader=self.read)
        self.fit(splits.train)
        run, checkpoint = session.prepare_run_dir()
        for note in splits.notes:
            session.log(note)
        rows = preprocess.contrastive_rows(splits.train, self.task_cfg.negatives_per_positive, cfg.train.seed)
        session.log(f"examples: train clicks={len(rows['anchor'])} (each with {len(rows) - 2} impression "
                    f"negatives) validation={len(splits.validation)} test={len(splits.test)}")
        _, result = fit_bi_encoder(session, run, checkpoint, rows)
        run.write_task_state(self.name, self.state())
        session.finish(self, run, splits, dict(result.metrics))
        return run

    # -- inference: the Predictor's features for TwoTowerScorer
    def encode(self, inputs: Sequence[Any], tokenizer, max_length: int) -> tuple[dict[str, np.ndarray], None]:
        """Each distinct text of the batch tokenized once (a history repeats for every candidate)."""
        index: dict[str, int] = {}
        for hist, cand in inputs:
            index.setdefault(hist, len(index))
            index.setdefault(cand, len(index))
        enc = tokenizer(list(index), padding=True, truncation="longest_first", max_length=max_length,
                        return_tensors="np")
        features = {k: np.asarray(v) for k, v in enc.items()}
        features["history_index"] = np.array([index[h] for h, _ in inputs], dtype=np.int64)
        features["candidate_index"] = np.array([index[c] for _, c in inputs], dtype=np.int64)
        return features, None

    def decode(self, logits: np.ndarray, context: Any) -> list[dict]:
        """``{"score": cosine}`` per pair (in [-1, 1]; a ranking score, not a click probability)."""
        return [{"score": float(s)} for s in np.asarray(logits).reshape(-1)]

    # -- reporting and state
    def report(self, examples, predictions, out_dir, plots: bool = True) -> dict:
        """MIND's per-impression metrics under ``ranking`` (as for the cross-encoder) and at the top level,
        where the training log line and the model card's index read a split's numbers."""
        ranking = mind_metrics([preprocess.impression_of(e) for e in examples], [int(e.label) for e in examples],
                               [p["score"] for p in predictions])
        return {**{k: ranking[k] for k in METRICS}, "n": len(examples), "ranking": ranking}

    def state(self) -> dict:
        return {"architecture": "two_tower", "similarity": "cosine"}

    def load_state(self, state: dict) -> None:
        return None
