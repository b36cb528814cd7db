"""MIND's ranking metrics, computed per impression and averaged: AUC, MRR, nDCG@5, nDCG@10."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence

import numpy as np
from sklearn.metrics import roc_auc_score


def dcg_at_k(labels: np.ndarray, k: int) -> float:
    labels = labels[:k]
    return float(((2 ** labels - 1) / np.log2(np.arange(2, labels.size + 2))).sum())


def impression_metrics(labels: Sequence[int], scores: Sequence[float]) -> dict[str, float]:
    """The four metrics of one impression (MIND's evaluate.py definitions); AUC is NaN without both classes."""
    y, s = np.asarray(labels, dtype=float), np.asarray(scores, dtype=float)
    order = np.argsort(-s, kind="stable")
    ranked = y[order]
    mrr = float((ranked / (np.arange(ranked.size) + 1)).sum() / max(ranked.sum(), 1))
    out = {"auc": float(roc_auc_score(y, s)) if 0 < y.sum() < y.size else float("nan"), "mrr": mrr}
    for k in (5, 10):
        ideal = dcg_at_k(np.sort(y)[::-1], k)
        out[f"ndcg@{k}"] = dcg_at_k(ranked, k) / ideal if ideal > 0 else float("nan")
    return out


def mind_metrics(groups: Sequence[Hashable], labels: Sequence[int], scores: Sequence[float]) -> dict[str, float]:
    """Mean of each metric over impressions (``groups`` = impression id per row); impressions without a
    click or without a non-click are left out of AUC / nDCG, as in MIND's scorer."""
    by: dict[Hashable, list[tuple[int, float]]] = defaultdict(list)
    for g, y, s in zip(groups, labels, scores):
        by[g].append((int(y), float(s)))
    per = [impression_metrics([y for y, _ in rows], [s for _, s in rows]) for rows in by.values()]
    out = {k: float(np.nanmean([p[k] for p in per])) if per else float("nan") for k in ("auc", "mrr", "ndcg@5", "ndcg@10")}
    out["impressions"] = len(per)
    return out
