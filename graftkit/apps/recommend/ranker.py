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

from graftkit.errors import ConfigError, DataError, RunFolderError
from graftkit.inference.predictor import Predictor, load_run_config
from graftkit.inference.retrieval.index import load_encoder, read_corpus
from graftkit.modeling.run_folder import RunFolder
from graftkit.tasks.embedding.postprocess import embed

POSITIVE = "1"


class Recommender:
    """Interest scores of candidates given a user's history texts.

    Args:
        run_dir: a ranking run (cross-encoder or two-tower) or an embedding run.
        max_history: most recent history texts used.
        separator: joins history texts (ranking runs use their own training setting).
    """

    def __init__(self, run_dir: str | Path, max_history: int = 10, separator: str = " ; "):
        run = RunFolder(run_dir).require_model()
        state = run.task_state()
        self.kind = state.get("task")
        #: cross_encoder scores each pair with the Predictor; two_tower and embedding runs embed texts
        self.architecture = state.get("architecture", "cross_encoder") if self.kind == "ranking" else "two_tower"
        self.max_history, self.separator = max_history, separator
        if self.kind == "ranking":
            task_cfg = load_run_config(run).task
            self.max_history, self.separator = task_cfg.max_history, task_cfg.history_separator
        if self.kind == "ranking" and self.architecture == "cross_encoder":
            self.predictor = Predictor(run.path)
        elif self.kind in ("ranking", "embedding"):
            self.encoder = load_encoder(run)
        else:
            raise RunFolderError(f"{run.path} is a '{self.kind}' run; recommend needs a ranking run (task.type: "
                                 "ranking) or an embedding run")

    @property
    def label(self) -> str:
        """What the run is, for tables: 'ranking', 'ranking two_tower' or 'embedding'."""
        return f"{self.kind} two_tower" if self.kind == "ranking" and self.architecture == "two_tower" else self.kind

    def history_text(self, history: Sequence[str]) -> str:
        items = [h for h in history if h.strip()][-self.max_history:]
        return self.separator.join(items) if items else "(no history)"

    def scores(self, history: Sequence[str], candidates: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """One interest score per candidate (higher = more likely to be clicked)."""
        hist = self.history_text(history)
        if self.architecture == "cross_encoder":
            preds = self.predictor.predict([(hist, c) for c in candidates], batch_size)
            return np.array([p["scores"][POSITIVE] for p in preds])

        vecs = embed(self.encoder, [hist] + list(candidates), batch_size)
        return vecs[1:] @ vecs[0]


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
