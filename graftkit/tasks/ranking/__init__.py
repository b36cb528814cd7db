"""Ranking (a recommender's interest model): a cross-encoder over (user history, candidate item) → P(click).

Training data is a MIND folder (news.tsv + behaviors.tsv; each impression's candidates become
(history, candidate, clicked) pairs) or a CSV of history text, candidate text, label 0/1 and an
optional ``impression`` column. The model is the classification head on text pairs; the report adds
MIND's per-impression metrics (AUC, MRR, nDCG@5, nDCG@10). Give validation/test as their own folders
or files: a row split of one folder would cut impressions apart.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from graftkit.data.dataset import Example
from graftkit.data.readers import Row, read_rows
from graftkit.errors import DataError
from graftkit.tasks.classification import ClassificationTask
from graftkit.tasks.ranking import mind
from graftkit.tasks.ranking.config import RankingConfig
from graftkit.tasks.ranking.metrics import mind_metrics

POSITIVE = "1"


class RankingTask(ClassificationTask):
    """P(click | history, candidate) from a pair classifier; MIND metrics per impression."""

    name = "ranking"
    config_class = RankingConfig

    def __init__(self, task_cfg=None, data_cfg=None):
        super().__init__(task_cfg, data_cfg)
        self.multi_label = False

    # -- data
    def read(self, path: str, data_cfg, with_labels: bool = True) -> tuple[list[Example], int]:
        """Pairs from a MIND folder or a CSV; MIND training files keep ``negatives_per_positive`` negatives per click."""
        if Path(path).is_dir():
            subsample = data_cfg.train is not None and Path(path) == Path(data_cfg.train)
            return self._read_mind(path, subsample), 0
        return self._read_pairs(path, data_cfg, with_labels), 0

    def _read_mind(self, folder: str, subsample: bool) -> list[Example]:
        cfg = self.task_cfg
        news, impressions = mind.read_mind(folder)
        rng = random.Random(0)
        out = []
        for imp in impressions:
            hist = mind.history_text(imp.history, news, cfg.max_history, cfg.history_separator)
            cands = list(imp.candidates)
            if subsample and cfg.negatives_per_positive:
                pos = [c for c in cands if c[1] == 1]
                neg = [c for c in cands if c[1] == 0]
                cands = pos + rng.sample(neg, min(len(neg), cfg.negatives_per_positive * max(len(pos), 1)))
            for item, label in cands:
                out.append(Example(text=hist, text_pair=news[item], label=str(label),
                                   path=str(Path(folder) / "behaviors.tsv"), line=imp.line,
                                   extra={"impression": imp.id, "item": item}))
        return out

    def _read_pairs(self, path: str, data_cfg, with_labels: bool) -> list[Example]:
        if not data_cfg.text_pair_column:
            raise DataError(path, "a ranking CSV needs data.text_pair_column (the candidate text column); "
                                  "data.text_column is the user's history text")
        out = []
        for row in read_rows(path, data_cfg.format, data_cfg.encoding):
            texts = []
            for col in (data_cfg.text_column, data_cfg.text_pair_column):
                value = row.values.get(col)
                if value is None or not str(value).strip():
                    raise DataError(row.path, "missing or empty text", line=row.line, field=col)
                texts.append(str(value))
            label = self.parse_label(row.values.get(data_cfg.label_column), row) if with_labels else None
            out.append(Example(text=texts[0], text_pair=texts[1], label=label, path=row.path, line=row.line,
                               extra={"impression": str(row.values.get("impression", f"line{row.line}"))}))
        if not out:
            raise DataError(path, "no rows")
        return out

    def parse_label(self, raw: Any, row: Row) -> str:
        text = str(raw).strip() if raw is not None else ""
        if text in ("1", "1.0", "true", "True"):
            return "1"
        if text in ("0", "0.0", "false", "False"):
            return "0"
        raise DataError(row.path, f"label {raw!r} is not 0 or 1 (clicked)", line=row.line,
                        field=str(self.data_cfg.label_column) if self.data_cfg else "label")

    def fit(self, train: list[Example]) -> None:
        super().fit(train)
        if self.labels != ["0", "1"]:
            raise DataError(train[0].path, f"ranking needs clicked (1) and non-clicked (0) rows; got {self.labels}")

    # -- reporting
    def report(self, examples, predictions, out_dir: Path | None, plots: bool = True) -> dict:
        out = super().report(examples, predictions, out_dir, plots)
        groups = [e.extra.get("impression", f"{e.path}:{e.line}") if e.extra else f"{e.path}:{e.line}"
                  for e in examples]
        scores = [p["scores"][POSITIVE] for p in predictions]
        out["ranking"] = mind_metrics(groups, [int(e.label) for e in examples], scores)
        return out
