"""Regression metrics (scikit-learn, scipy) and the largest-errors report."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import mean_absolute_error, mean_squared_error, roc_auc_score

from graftkit.data.dataset import Example
from graftkit.io import write_csv


def _corr(fn, a: np.ndarray, b: np.ndarray) -> float:
    if np.std(a) == 0 or np.std(b) == 0:  # undefined for a constant series; report 0 rather than NaN
        return 0.0
    return float(fn(a, b)[0])


def target_scores(gold: np.ndarray, pred: np.ndarray, binary: bool) -> dict[str, float]:
    """RMSE, MAE, Pearson and Spearman for one target; ROC-AUC (predictions as scores) when binary."""
    out = {"rmse": float(np.sqrt(mean_squared_error(gold, pred))), "mae": float(mean_absolute_error(gold, pred)),
           "pearson": _corr(pearsonr, gold, pred), "spearman": _corr(spearmanr, gold, pred)}
    if binary and len(np.unique(gold)) == 2:
        out["roc_auc"] = float(roc_auc_score(gold, pred))
    return out


def scores(gold: np.ndarray, pred: np.ndarray, columns: list[str], binary: list[bool]) -> dict[str, float]:
    """Per-target metrics; with several targets the headline metrics are their means, plus ``<column>_<metric>``."""
    per = [target_scores(gold[:, j], pred[:, j], binary[j]) for j in range(len(columns))]
    if len(columns) == 1:
        return per[0]
    out: dict[str, float] = {}
    for key in ("rmse", "mae", "pearson", "spearman", "roc_auc"):
        vals = [p[key] for p in per if key in p]
        if vals:
            out[key] = float(np.mean(vals))
    for col, p in zip(columns, per):
        out.update({f"{col}_{k}": v for k, v in p.items()})
    return out


def report(examples: Sequence[Example], preds: Sequence, columns: list[str], binary: list[bool],
           out_dir: Path | None) -> dict:
    """Metrics on labelled examples; writes largest_errors.csv (worst absolute error first) to ``out_dir``."""
    gold = np.array([e.label for e in examples], dtype=np.float64).reshape(len(examples), -1)
    pred = np.array([[p.values[c] for c in columns] for p in preds], dtype=np.float64)
    result: dict = scores(gold, pred, columns, binary)
    result["n"] = len(examples)
    if out_dir is not None:
        err = np.abs(gold - pred).max(axis=1)
        rows = [[examples[i].path, examples[i].line, examples[i].text, examples[i].text_pair or "",
                 "|".join(f"{g:.6g}" for g in gold[i]), "|".join(f"{p:.6g}" for p in pred[i]), f"{err[i]:.6g}"]
                for i in np.argsort(-err, kind="stable")[:1000]]
        write_csv(out_dir / "largest_errors.csv", ["file", "line", "text", "text_pair", "true", "predicted",
                                                   "abs_error"], rows)
    return result
