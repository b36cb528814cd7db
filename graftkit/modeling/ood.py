"""Out-of-scope scores of a classifier and how a detector and its threshold are chosen (numpy only, so the
torch and ONNX back-ends score alike).

Every score grows with "out of scope":

* ``msp``: 1 − the maximum softmax probability of the raw (uncalibrated) logits (Hendrycks & Gimpel 2017);
* ``max_logit``: − the maximum logit (Hendrycks et al. 2022);
* ``energy``: − logsumexp of the logits (Liu et al. 2020);
* ``mahalanobis``: the smallest Mahalanobis distance of the features to a class mean, with one shared
  covariance fitted on the training features (Lee et al. 2018; Podolskiy et al. 2021 for intents);
* ``knn``: 1 − the cosine similarity to the k-th nearest training feature (Sun et al. 2022).

A row is out of scope when the chosen detector's score exceeds its threshold. The threshold is chosen on
validation: with out-of-scope examples, the largest out-of-scope recall at a target in-scope accuracy
(a correct in-scope answer that is not handed off counts as accurate); without them, the score below which
a target share of in-scope questions stays.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp, softmax
from sklearn.covariance import LedoitWolf
from sklearn.metrics import roc_auc_score

DETECTORS = ("msp", "max_logit", "energy", "mahalanobis", "knn")
#: detectors that read the features (the rest read the logits only)
FEATURE_DETECTORS = ("mahalanobis", "knn")


def logit_scores(logits: np.ndarray) -> dict[str, np.ndarray]:
    """The logit detectors' scores, one per row."""
    z = np.asarray(logits, dtype=np.float64)
    return {"msp": 1.0 - softmax(z, axis=-1).max(axis=-1), "max_logit": -z.max(axis=-1),
            "energy": -logsumexp(z, axis=-1)}


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


@dataclass
class FeatureModel:
    """What the feature detectors keep of the training features: class means, the shared precision matrix
    and a bank of unit-length training features."""

    means: np.ndarray  # (classes, dim)
    precision: np.ndarray  # (dim, dim)
    bank: np.ndarray  # (rows, dim), unit length
    k: int = 1

    @classmethod
    def fit(cls, features: np.ndarray, label_ids: np.ndarray, classes: int, k: int = 1, max_bank: int = 20000,
            seed: int = 0) -> "FeatureModel":
        """Class means and a Ledoit-Wolf shrunk covariance of the class-centred features (stable with few rows
        per class), and up to ``max_bank`` training features (a seeded sample) for kNN."""
        x = np.asarray(features, dtype=np.float64)
        y = np.asarray(label_ids)
        means = np.stack([x[y == c].mean(axis=0) if (y == c).any() else np.zeros(x.shape[1]) for c in range(classes)])
        precision = LedoitWolf().fit(x - means[y]).precision_
        keep = np.random.default_rng(seed).permutation(len(x))[:max_bank] if len(x) > max_bank else np.arange(len(x))
        return cls(means.astype(np.float32), precision.astype(np.float32), _unit(x[keep]).astype(np.float32), k)

    def scores(self, features: np.ndarray) -> dict[str, np.ndarray]:
        x = np.asarray(features, dtype=np.float64)
        diff = x[:, None, :] - self.means[None].astype(np.float64)  # (rows, classes, dim)
        maha = np.einsum("ncd,de,nce->nc", diff, self.precision.astype(np.float64), diff).min(axis=1)
        sims = _unit(x) @ self.bank.astype(np.float64).T
        k = min(self.k, sims.shape[1])
        kth = -np.partition(-sims, k - 1, axis=1)[:, k - 1]
        return {"mahalanobis": maha, "knn": 1.0 - kth}

    def tensors(self) -> dict[str, np.ndarray]:
        return {"means": self.means, "precision": self.precision, "bank": self.bank,
                "k": np.array([self.k], dtype=np.int64)}

    @classmethod
    def from_tensors(cls, t: dict[str, np.ndarray]) -> "FeatureModel":
        return cls(t["means"], t["precision"], t["bank"], int(t["k"][0]))


def auroc(scores: np.ndarray, out_of_scope: np.ndarray) -> float | None:
    """Area under the ROC curve of ``scores`` separating out-of-scope rows (None without both kinds)."""
    out_of_scope = np.asarray(out_of_scope, dtype=bool)
    if out_of_scope.all() or not out_of_scope.any():
        return None
    return float(roc_auc_score(out_of_scope, scores))


def fpr_at_95(scores: np.ndarray, out_of_scope: np.ndarray) -> float | None:
    """The share of out-of-scope rows kept as in scope at the threshold that keeps 95% of in-scope rows."""
    out_of_scope = np.asarray(out_of_scope, dtype=bool)
    if out_of_scope.all() or not out_of_scope.any():
        return None
    threshold = np.quantile(scores[~out_of_scope], 0.95)
    return float((scores[out_of_scope] <= threshold).mean())


def at_threshold(scores: np.ndarray, threshold: float, out_of_scope: np.ndarray, correct: np.ndarray) -> dict:
    """In-scope accuracy, out-of-scope recall and precision, and the handoff rate when rows above
    ``threshold`` are flagged (``correct``: the in-scope label was predicted)."""
    flagged = np.asarray(scores) > threshold
    oos, ins = np.asarray(out_of_scope, bool), ~np.asarray(out_of_scope, bool)
    n_flag = int(flagged.sum())
    return {"in_scope_accuracy": float((~flagged[ins] & correct[ins]).mean()) if ins.any() else None,
            "oos_recall": float(flagged[oos].mean()) if oos.any() else None,
            "oos_precision": float((flagged & oos).sum() / n_flag) if n_flag and oos.any() else None,
            "handoff_rate": float(flagged.mean())}


def choose_threshold(scores: np.ndarray, out_of_scope: np.ndarray, correct: np.ndarray,
                     target_accuracy: float, keep_in_scope: float) -> tuple[float, bool]:
    """(threshold, target reached). With out-of-scope rows: the lowest threshold (most recall) whose in-scope
    accuracy reaches ``target_accuracy``, else the one with the best in-scope accuracy; without them: the
    ``keep_in_scope`` quantile of the in-scope scores."""
    scores, oos = np.asarray(scores, dtype=np.float64), np.asarray(out_of_scope, bool)
    if not oos.any():
        return float(np.quantile(scores, keep_in_scope)), True
    candidates = np.unique(np.concatenate([scores, [np.inf]]))
    ins = ~oos
    flagged = scores[None, ins] > candidates[:, None]
    accuracy = (~flagged & correct[ins][None, :]).mean(axis=1)
    feasible = accuracy >= target_accuracy
    if feasible.any():
        return float(candidates[np.argmax(feasible)]), True  # candidates ascend: the first feasible flags most
    return float(candidates[int(np.argmax(accuracy))]), False
