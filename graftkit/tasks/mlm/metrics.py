"""Perplexity and masked-token accuracy: over the masked tokens only, pooled over all texts."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from graftkit.io import write_json
from graftkit.tasks.predictions import MaskScorePrediction


def pooled(masked: int, correct: int, nll: float) -> dict[str, float]:
    """``perplexity`` = exp(mean NLL of the masked tokens); ``masked_accuracy`` = share predicted exactly."""
    if masked == 0:
        return {"perplexity": float("nan"), "masked_accuracy": float("nan"), "masked_tokens": 0}
    return {"perplexity": float(math.exp(min(nll / masked, 700.0))), "masked_accuracy": correct / masked,
            "masked_tokens": masked}


def from_eval_pred(eval_pred) -> dict[str, float]:
    """Trainer metrics from ``preprocess_logits`` output: (argmax id, token NLL) per position."""
    preds, labels = eval_pred.predictions, eval_pred.label_ids
    preds = preds[0] if isinstance(preds, tuple) else preds
    keep = labels != -100
    hits = int((preds[..., 0][keep] == labels[keep]).sum())
    return pooled(int(keep.sum()), hits, float(np.asarray(preds[..., 1][keep], dtype=np.float64).sum()))


def report(predictions: list, out_dir: Path | None) -> dict:
    """Pooled metrics of ``score_mask`` predictions; ``metrics.json`` in ``out_dir`` when given."""
    scored = [p for p in predictions if isinstance(p, MaskScorePrediction)]
    result = pooled(sum(p.masked for p in scored), sum(p.correct for p in scored), sum(p.nll for p in scored))
    result["n"] = len(scored)
    if out_dir is not None:
        write_json(Path(out_dir) / "metrics.json", result)
    return result
