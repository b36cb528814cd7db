"""Rank candidates for a user: a model's interest score, optionally blended with numeric features.

The interest score comes from a ranking run, cross-encoder (P(click | history, candidate)) or two-tower
(``task.architecture: two_tower``: cosine of the history's and the candidate's embeddings, the history
embedded once per call), or from an embedding run (cosine, the same way). The blend is

    score = w_model * norm(model score) + sum_f w_f * norm(feature f)

where ``norm`` is min-max scaling over the candidate list (so weights are comparable whatever a
feature's unit), e.g. ``{"model": 1.0, "popularity": 0.3, "recency": 0.2}``. With weights for the
model only, the ranking is the model's.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from graftkit.errors import ConfigError, DataError
from graftkit.inference.retrieval.index import read_corpus
from graftkit.inference.runs import open_run
from graftkit.tasks.capabilities import Ranks


class Recommender:
    """Interest scores of candidates given a user's history texts.

    Args:
        run_dir: a run whose task ranks (ranking, cross-encoder or two-tower; embedding).
        max_history, separator: how many of the most recent history texts are used and what joins them,
            for runs without settings of their own (a ranking run keeps the ones it was trained with).

    Raises:
        UnsupportedError: the run's task does not rank (one line naming what it supports).
    """

    def __init__(self, run_dir: str | Path, max_history: int = 10, separator: str = " ; "):
        self.runner = open_run(run_dir, command="recommend")
        self.ranks = self.runner.task.capability(Ranks, "recommend")
        # the run's own settings win (a ranking run reads the history it was trained with), so callers that
        # cut the history first (apps/recommend/evaluate.py: score_encoder) keep as many items as the run reads
        self.max_history, self.separator = self.ranks.history_settings(max_history, separator)

    @property
    def label(self) -> str:
        """What the run is, for tables: 'ranking', 'ranking (two_tower)' or 'embedding'."""
        return self.runner.task.label()

    def history_text(self, history: Sequence[str]) -> str:
        return self.ranks.history_text(history, self.max_history, self.separator)

    def scores(self, history: Sequence[str], candidates: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """One interest score per candidate (higher = more likely to be clicked)."""
        return self.ranks.pair_scores(self.runner, self.history_text(history), candidates, batch_size)


def _norm(x: np.ndarray) -> np.ndarray:
    span = x.max() - x.min()
    return np.zeros_like(x, dtype=float) if span == 0 else (x - x.min()) / span


def blend(model_scores: np.ndarray, features: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """The weighted blend of the module docstring; ``weights`` names 'model' and feature columns.

    Raises:
        ConfigError: a weight names a feature that is not there.
    """
    missing = [k for k in weights if k != "model" and k not in features]
    if missing:
        raise ConfigError(f"weights name features {missing} that the candidates file lacks "
                          f"(numeric columns: {sorted(features) or 'none'})")
    total = weights.get("model", 1.0) * _norm(np.asarray(model_scores, dtype=float))
    for name, w in weights.items():
        if name != "model":
            total = total + w * _norm(np.asarray(features[name], dtype=float))
    return total


def read_candidates(path: str | Path, id_column: str = "id", text_column: str = "text",
                    feature_columns: Sequence[str] = ()) -> tuple[list[dict], dict[str, np.ndarray]]:
    """Candidate rows and their numeric feature columns; bad values name the file, line and field."""
    rows = read_corpus(path, id_column, text_column)
    feats: dict[str, np.ndarray] = {}
    for col in feature_columns:
        values = []
        for n, r in enumerate(rows, 2):
            try:
                values.append(float(r[col]))
            except (KeyError, TypeError, ValueError):
                raise DataError(str(path), f"feature '{col}' must be a number (got {r.get(col)!r})", line=n,
                                field=col) from None
        feats[col] = np.array(values)
    return rows, feats


def parse_weights(text: str | None) -> dict[str, float]:
    """'model=1,popularity=0.3' → {'model': 1.0, 'popularity': 0.3}."""
    if not text:
        return {"model": 1.0}
    out = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise ConfigError(f"--weights {text!r}: write name=number pairs, e.g. model=1,popularity=0.3") from None
        if not sep or not name.strip():
            raise ConfigError(f"--weights {text!r}: write name=number pairs, e.g. model=1,popularity=0.3")
    return out
