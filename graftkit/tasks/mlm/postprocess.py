"""Masked-LM logits → predictions: fill-in candidates for a user's [MASK]s, or scoring of a fixed mask."""
from __future__ import annotations

import numpy as np
from scipy.special import log_softmax

from graftkit.tasks.predictions import MaskFillPrediction, MaskScorePrediction


def fill_mask(logits: np.ndarray, input_ids: list[int], mask_id: int, tokenizer, top_k: int) -> MaskFillPrediction:
    """Top-k tokens (with probabilities) for every [MASK] of one input."""
    masks = []
    for pos in [i for i, t in enumerate(input_ids) if t == mask_id]:
        logp = log_softmax(logits[pos].astype(np.float64))
        best = np.argsort(-logp)[:top_k]
        masks.append({"position": pos, "candidates": [
            {"token": tokenizer.convert_ids_to_tokens(int(t)), "score": float(np.exp(logp[t]))} for t in best]})
    return MaskFillPrediction(masks)


def score_mask(logits: np.ndarray, labels: list[int]) -> MaskScorePrediction:
    """Negative log-likelihood and hits of the hidden tokens (labels != -100) of one input."""
    pos = [i for i, t in enumerate(labels) if t != -100]
    if not pos:
        return MaskScorePrediction(0, 0, 0.0)
    logp = log_softmax(logits[pos].astype(np.float64), axis=-1)
    gold = np.array([labels[i] for i in pos])
    return MaskScorePrediction(len(pos), int((logp.argmax(-1) == gold).sum()),
                               float(-logp[np.arange(len(pos)), gold].sum()))
