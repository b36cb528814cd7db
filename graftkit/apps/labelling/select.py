"""Which rows to label next (``graftkit label select``): uncertainty, diversity, both, or a cleanlab re-check.

* ``entropy`` / ``margin``: the pool rows the run is least sure of. Single-label runs use small-text's
  ``PredictionEntropy`` and ``BreakingTies`` (smallest gap between the two best classes) over the run's calibrated
  probabilities; multi-label runs the mean binary entropy of the labels, or the smallest mean |2p - 1|.
* ``diversity``: small-text's ``greedy_coreset`` (k-center greedy, Sener & Savarese 2018) on the run's features
  (the input of its output layer): each pick is the pool row farthest (cosine) from the labelled rows and the
  picks before it.
* ``hybrid``: the ``hybrid_factor``·k most uncertain rows (entropy), then k-center greedy among them, so a batch is
  uncertain without being k near-copies of one confusing row.
* ``random``: a seeded uniform sample of the pool (the baseline the others are measured against).
* ``recheck``: labelled rows whose label is likely wrong, ranked by cleanlab on out-of-fold probabilities
  (graftkit/train/label_errors.py, which trains ``folds`` small models with the run's config).
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from typing import Callable

import numpy as np
from small_text.query_strategies import BreakingTies, PredictionEntropy
from small_text.query_strategies.coresets import greedy_coreset

from graftkit.apps.labelling.pool import Labelled, Pool, labelled_data, read_pool
from graftkit.data.dataset import Example
from graftkit.errors import GraftkitError, UnsupportedError
from graftkit.inference.base import task_class_of
from graftkit.inference.predictor import Predictor
from graftkit.modeling.run_folder import RunFolder
from graftkit.tasks.capabilities import FindsLabelErrors, ScoresLabels
from graftkit.tasks.matrix import refusal
from graftkit.tasks.predictions import LabelPrediction, LabelSetPrediction
from graftkit.train.label_errors import find_label_errors

STRATEGIES = ("entropy", "margin", "diversity", "hybrid", "random", "recheck")
#: ``features(pool positions)`` → (those pool rows' features, the labelled rows' features)
FeaturesOf = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
#: what each strategy needs of the run's task
NEEDS = {"entropy": ScoresLabels, "margin": ScoresLabels, "diversity": ScoresLabels, "hybrid": ScoresLabels,
         "random": ScoresLabels, "recheck": FindsLabelErrors}


@dataclass
class Candidate:
    """A row to label: the model's suggestion, the strategy's score, and (re-checks) the label it has now."""

    example: Example
    suggested: str
    score: float
    given: str = ""


@dataclass
class Selection:
    strategy: str
    candidates: list[Candidate]
    note: str


class FixedProbabilities:
    """A small-text classifier over probabilities already computed: ``dataset`` is an array of row indices."""

    def __init__(self, probabilities: np.ndarray):
        self.probabilities = probabilities

    def predict_proba(self, dataset: np.ndarray) -> np.ndarray:
        return self.probabilities[dataset]


def uncertainty(probs: np.ndarray, multi_label: bool, kind: str) -> np.ndarray:
    """Per row, how unsure the run is (higher: more unsure)."""
    if multi_label:
        p = probs.clip(1e-12, 1 - 1e-12)
        per_label = -(p * np.log(p) + (1 - p) * np.log(1 - p)) if kind == "entropy" else 1 - np.abs(2 * p - 1)
        return per_label.mean(1)
    strategy = PredictionEntropy() if kind == "entropy" else BreakingTies()
    strategy.score(FixedProbabilities(probs), np.arange(len(probs)), np.arange(len(probs)), np.array([], int), None)
    return strategy.scores_ if kind == "entropy" else 1 - strategy.scores_


def most_uncertain(probs: np.ndarray, multi_label: bool, kind: str, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most uncertain rows, most uncertain first, and every row's uncertainty."""
    scores = uncertainty(probs, multi_label, kind)
    return np.argsort(-scores, kind="stable")[:k], scores


def k_center(pool_features: np.ndarray, labelled_features: np.ndarray, k: int) -> np.ndarray:
    """small-text's greedy coreset: pool positions, in the order picked (pool rows come first in its matrix)."""
    x = np.concatenate([pool_features, labelled_features])
    n = len(pool_features)
    return greedy_coreset(x, np.arange(n), np.arange(n, len(x)), k, distance_metric="cosine")


def _check(runner_dir: str, strategy: str, pool: str | None) -> None:
    if strategy not in STRATEGIES:
        raise GraftkitError(f"label select --strategy {strategy}: unknown strategy (choose from {', '.join(STRATEGIES)})")
    task_cls = task_class_of(RunFolder(runner_dir).require_model())
    if not task_cls.has(NEEDS[strategy]):
        raise UnsupportedError(refusal(task_cls, f"label select --strategy {strategy}"))
    if (strategy == "recheck") != (pool is None):
        raise GraftkitError("label select --strategy recheck ranks the labelled rows and reads no --pool" if pool else
                            f"label select --strategy {strategy} needs --pool (the unlabelled rows to choose from)")


def select(run_dir: str, k: int, strategy: str = "entropy", pool: str | None = None, labelled: str | None = None,
           hybrid_factor: int = 5, folds: int = 3, train_overrides: dict | None = None,
           log: Callable[[str], None] = print, seed: int = 0) -> Selection:
    """The next ``k`` rows to label from ``pool`` (or, ``recheck``, labelled rows to look at again).

    Raises:
        UnsupportedError: the run's task cannot do ``strategy`` (one line naming what it supports).
        GraftkitError: an unknown strategy, a missing or empty pool, k < 1.
    """
    if k < 1:
        raise GraftkitError(f"label select: --k must be at least 1 (got {k})")
    _check(run_dir, strategy, pool)
    runner = Predictor(run_dir)
    data = labelled_data(runner, labelled)
    if strategy == "recheck":
        return _recheck(runner, data, k, folds, train_overrides or {}, log)
    candidates = read_pool(pool, runner, data)
    return _from_pool(runner, data, candidates, min(k, len(candidates.rows)), strategy, hybrid_factor, seed)


def choose(strategy: str, probs: np.ndarray, multi_label: bool, features: FeaturesOf, k: int,
           factor: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Pool positions to label, in the order picked, and every row's uncertainty.

    Args:
        probs: (pool rows, labels) probabilities; ``features(positions)``: the features of those pool rows and of
            the labelled rows (diversity and hybrid only).
    """
    kind = "margin" if strategy == "margin" else "entropy"
    if strategy == "random":
        return np.random.default_rng(seed).permutation(len(probs))[:k], uncertainty(probs, multi_label, kind)
    order, scores = most_uncertain(probs, multi_label, kind, k * factor if strategy == "hybrid" else k)
    if strategy in ("diversity", "hybrid"):
        subset = np.arange(len(probs)) if strategy == "diversity" else order
        pool_features, labelled_features = features(subset)
        order = subset[k_center(pool_features, labelled_features, min(k, len(subset)))]
    return order, scores


def _from_pool(runner: Predictor, data: Labelled, pool: Pool, k: int, strategy: str, factor: int,
               seed: int) -> Selection:
    labels = runner.task.capability(ScoresLabels, f"label select --strategy {strategy}")
    inputs = [runner.task.input_of(e) for e in pool.rows]
    predictions = runner.predict(inputs)
    probs = np.array([[p.scores[lab] for lab in labels.labels] for p in predictions])

    def features(positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        _, pool_features = runner.outputs([inputs[i] for i in positions], with_features=True)
        _, labelled_features = runner.outputs([runner.task.input_of(e) for e in data.rows], with_features=True)
        return pool_features, labelled_features

    order, scores = choose(strategy, probs, labels.multi_label, features, k, factor, seed)
    picked = [Candidate(pool.rows[i], _suggested(predictions[i]), float(scores[i])) for i in order]
    return Selection(strategy, picked, pool.note())


def _suggested(prediction: LabelPrediction | LabelSetPrediction) -> str:
    return "|".join(prediction.labels) if isinstance(prediction, LabelSetPrediction) else prediction.label


def _recheck(runner: Predictor, data: Labelled, k: int, folds: int, overrides: dict, log) -> Selection:
    cfg = runner.cfg.model_copy(update={"data": runner.cfg.data.model_copy(update={"train": data.path})})
    with tempfile.TemporaryDirectory(prefix="graftkit-recheck-") as out:  # the label-issue files are not kept
        found = find_label_errors(cfg, folds, out_dir=out, train_overrides=overrides, log=log)
    scoring = runner.task.capability(FindsLabelErrors, "label select --strategy recheck")
    rows = {(e.path, e.line): e for e in data.rows}
    picked = []
    for issue in found["issues"]:  # worst first
        e = rows.get((issue["file"], issue["line"]))
        if e is not None and len(picked) < k:
            picked.append(Candidate(e, issue["suggested"], float(issue["quality"]), scoring.given_text(e)))
    return Selection("recheck", picked, f"recheck: {found['flagged_count']} of {found['rows']} rows flagged by "
                     f"cleanlab; {len(picked)} from {data.path} listed")
