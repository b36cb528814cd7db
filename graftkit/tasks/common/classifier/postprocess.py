"""Logits → labels and scores."""
from __future__ import annotations

import numpy as np
from scipy import special

from graftkit.tasks.predictions import LabelPrediction, LabelSetPrediction


def softmax(x: np.ndarray) -> np.ndarray:
    return special.softmax(x, axis=-1)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return special.expit(x)  # no overflow for large negative logits


def decode(logits: np.ndarray, labels: list[str], multi_label: bool,
           thresholds: list[float]) -> list[LabelPrediction] | list[LabelSetPrediction]:
    """Single-label: argmax label + its probability + all scores. Multi-label: labels over threshold."""
    if multi_label:
        return [LabelSetPrediction([labels[i] for i in range(len(labels)) if p[i] >= thresholds[i]],
                                   {lab: float(s) for lab, s in zip(labels, p)}) for p in sigmoid(logits)]
    out = []
    for p in softmax(logits):
        i = int(p.argmax())
        out.append(LabelPrediction(labels[i], float(p[i]), {lab: float(s) for lab, s in zip(labels, p)}))
    return out


def tune_thresholds(scores: np.ndarray, gold: np.ndarray, default: float) -> list[float]:
    """Per label, the threshold in a fixed grid that maximises F1 on validation (ties → closest to default)."""
    grid = np.round(np.arange(0.05, 0.96, 0.05), 2)
    best = []
    for j in range(scores.shape[1]):
        y = gold[:, j].astype(bool)
        if not y.any():
            best.append(default)
            continue
        f1s = []
        for t in grid:
            pred = scores[:, j] >= t
            tp = (pred & y).sum()
            f1s.append(2 * tp / max(pred.sum() + y.sum(), 1))
        f1s = np.array(f1s)
        cands = grid[f1s == f1s.max()]
        best.append(float(cands[np.argmin(np.abs(cands - default))]))
    return best
