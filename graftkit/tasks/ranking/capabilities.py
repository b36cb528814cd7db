"""Ranking's capabilities: the cross-encoder is the shared classifier over (history, candidate) pairs
plus ranking itself; the two-tower variant trains with sentence-transformers and scores by cosine."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from graftkit.data.dataset import load_splits
from graftkit.tasks.capabilities import DecodesLogits, Ranks
from graftkit.tasks.common import bi_encoder
from graftkit.tasks.common.card import StandardCard
from graftkit.tasks.common.classifier import CAPABILITIES, ClassifierCard, ClassifierDistills, ClassifierLabelErrors
from graftkit.tasks.predictions import ScorePrediction
from graftkit.tasks.ranking.preprocess import POSITIVE, contrastive_rows


class RankingHistory:
    """The history text as ranking runs were trained on it: the run's own ``max_history`` and separator."""

    def history_settings(self, max_history: int, separator: str) -> tuple[int, str]:
        return self.task.task_cfg.max_history, self.task.task_cfg.history_separator


class CrossEncoderRanks(RankingHistory, Ranks):
    """P(click) of each (history, candidate) pair."""

    def pair_scores(self, runner, history: str, candidates: Sequence[str], batch_size: int) -> np.ndarray:
        return np.array([p.scores[POSITIVE] for p in runner.predict([(history, c) for c in candidates],
                                                                    batch_size)])


class TwoTowerRanks(RankingHistory, Ranks):
    """Cosine of the history's and each candidate's embeddings (each distinct text encoded once per batch)."""

    def pair_scores(self, runner, history: str, candidates: Sequence[str], batch_size: int) -> np.ndarray:
        return np.array([p.score for p in runner.predict([(history, c) for c in candidates], batch_size)])


class RankingLabelErrors(ClassifierLabelErrors):
    """Folds are not stratified: a click's neighbours in its impression are what decide its label."""

    def fold_strata(self, rows):
        return None


class RankingCard(ClassifierCard):
    hub_pipeline = None


#: the classifier's capabilities over pairs (no distillation), ranking's label-error folds and card, ranking
CROSS_ENCODER_CAPABILITIES = tuple(c for c in CAPABILITIES if c not in (ClassifierDistills, ClassifierCard,
                                                                         ClassifierLabelErrors)) \
    + (RankingLabelErrors, RankingCard, CrossEncoderRanks)


class TwoTowerTraining(bi_encoder.BiEncoderTraining):
    """The bi-encoder on contrastive rows (each click against its impression's non-clicks), then graftkit's
    evaluation and card (``TrainSession.finish``)."""

    def train_run(self, cfg, session):
        t = self.task
        splits = load_splits(cfg.data, t.parse_label, t.strat_key, reader=t.read)
        t.fit(splits.train)
        run, checkpoint = session.prepare_run_dir()
        for note in splits.notes:
            session.log(note)
        rows = contrastive_rows(splits.train, t.task_cfg.negatives_per_positive, cfg.train.seed)
        session.log(f"examples: train clicks={len(rows['anchor'])} (each with {len(rows) - 2} impression "
                    f"negatives) validation={len(splits.validation)} test={len(splits.test)}")
        _, result = bi_encoder.fit_bi_encoder(session, run, checkpoint, splits, rows)
        run.write_task_state(t.name, t.state())
        session.finish(t, run, splits, dict(result.metrics))
        return run


class TwoTowerDecoding(DecodesLogits):
    """Each distinct text of a batch is tokenized once (a history repeats for every candidate)."""

    def encode(self, inputs: Sequence[Any], tokenizer, max_length: int) -> tuple[dict[str, np.ndarray], None]:
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

    def decode(self, logits: np.ndarray, context: Any) -> list[ScorePrediction]:
        """The cosine of each pair (in [-1, 1]; a ranking score, not a click probability)."""
        return [ScorePrediction(float(s)) for s in np.asarray(logits).reshape(-1)]


class TwoTowerCard(StandardCard):
    def usage(self, run_path: Path) -> list[str]:
        return ["```bash", f"graftkit recommend {run_path} --history-file history.txt --candidates items.csv",
                "```", "",
                "The folder's root is the shared encoder, a sentence-transformers model:", "", "```python",
                "from sentence_transformers import SentenceTransformer",
                f"model = SentenceTransformer('{run_path}')", "```", ""]
