"""Out-of-scope threshold selection on a validation set that contains out-of-scope questions.

Every row whose label is not one of the intent run's in-scope intents (or is the run's own
out-of-scope class) counts as out of scope. For each pair (intent-confidence threshold,
FAQ-similarity threshold) on a grid, the assistant's decision gives:

- in-scope accuracy: in-scope questions answered with the right intent (a handoff counts as wrong);
- out-of-scope recall / precision: out-of-scope questions handed off, and handoffs that were out of scope;
- handoff rate: all questions handed off.

The chosen pair maximises out-of-scope recall among those reaching the target in-scope accuracy
(ties: the lower handoff rate); if none reaches it, the most accurate pair is returned, flagged.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from graftkit.apps.assistant.pipeline import Assistant
from graftkit.data.readers import read_rows
from graftkit.errors import DataError
from graftkit.tasks.capabilities import ScoresLabels


def read_labelled(path: str | Path, text_column: str = "text", label_column: str = "label") -> tuple[list[str], list[str]]:
    """(texts, labels) of a CSV/TSV/JSONL file; errors name the file, line and field."""
    texts, labels = [], []
    for row in read_rows(path):
        for col in (text_column, label_column):
            if col not in row.values:
                raise DataError(row.path, f"missing column '{col}'", line=row.line, field=col)
        text = str(row.values[text_column] or "").strip()
        if not text:
            raise DataError(row.path, "empty text", line=row.line, field=text_column)
        texts.append(text)
        labels.append(str(row.values[label_column]).strip())
    if not texts:
        raise DataError(str(path), "no rows")
    return texts, labels


def _signals(assistant: Assistant, texts: list[str], labels: list[str]):
    an = assistant.analyze(texts)
    in_scope_labels = {str(x) for x in assistant.intent.task.capability(ScoresLabels, "calibrate").labels} \
        - {assistant.cfg.oos_label}
    gold_oos = np.array([lab not in in_scope_labels for lab in labels])
    pred = np.array([a.intent for a in an])
    conf = np.array([a.confidence for a in an])
    sim = np.array([np.nan if a.similarity is None else a.similarity for a in an])
    forced = pred == assistant.cfg.oos_label if assistant.cfg.oos_label else np.zeros(len(an), bool)
    forced |= np.isin(pred, assistant.cfg.handoff_intents)
    correct = pred == np.array(labels)
    return gold_oos, conf, sim, forced, correct


def _scores(flagged: np.ndarray, gold_oos: np.ndarray, correct: np.ndarray) -> dict:
    """Metrics of a (thresholds × rows) matrix of handoff decisions."""
    ins = ~gold_oos
    acc = (~flagged[:, ins] & correct[ins]).mean(axis=1) if ins.any() else np.full(len(flagged), np.nan)
    rec = flagged[:, gold_oos].mean(axis=1) if gold_oos.any() else np.full(len(flagged), np.nan)
    n_flag = flagged.sum(axis=1)
    prec = np.where(n_flag > 0, (flagged & gold_oos).sum(axis=1) / np.maximum(n_flag, 1), np.nan)
    return {"in_scope_accuracy": acc, "oos_recall": rec, "oos_precision": prec, "handoff_rate": flagged.mean(axis=1)}


def evaluate(assistant: Assistant, texts: list[str], labels: list[str]) -> dict:
    """The metrics at the assistant's configured thresholds."""
    gold_oos, conf, sim, forced, correct = _signals(assistant, texts, labels)
    th = assistant.cfg.thresholds
    flagged = forced | (conf < th.intent_confidence)
    if th.retrieval_similarity is not None:
        flagged |= np.nan_to_num(sim, nan=np.inf) < th.retrieval_similarity
    m = _scores(flagged[None, :], gold_oos, correct)
    return {**{k: _num(v[0]) for k, v in m.items()}, "rows": len(texts), "out_of_scope_rows": int(gold_oos.sum())}


def calibrate(assistant: Assistant, texts: list[str], labels: list[str], target_accuracy: float = 0.9,
              use_similarity: bool = True) -> dict:
    """Choose the thresholds (see the module docstring); returns them with their metrics and the grid."""
    gold_oos, conf, sim, forced, correct = _signals(assistant, texts, labels)
    conf_grid = np.round(np.arange(0.0, 1.0, 0.01), 2)
    has_sim = use_similarity and not np.isnan(sim).all()
    sim_grid = [None] + (sorted({round(float(q), 3) for q in np.nanquantile(sim, np.linspace(0, 0.9, 46))})
                         if has_sim else [])
    combos, rows = [], []
    for ts in sim_grid:
        low_sim = np.zeros_like(forced) if ts is None else np.nan_to_num(sim, nan=np.inf) < ts
        for tc in conf_grid:
            combos.append((float(tc), ts))
            rows.append(forced | (conf < tc) | low_sim)
    m = _scores(np.array(rows), gold_oos, correct)
    feasible = m["in_scope_accuracy"] >= target_accuracy
    if feasible.any():
        key = np.where(feasible, m["oos_recall"] - 1e-6 * m["handoff_rate"], -np.inf)
    else:
        key = m["in_scope_accuracy"] - 1e-6 * m["handoff_rate"]
    best = int(np.nanargmax(key))
    tc, ts = combos[best]
    return {"thresholds": {"intent_confidence": tc, "retrieval_similarity": ts},
            "target_in_scope_accuracy": target_accuracy, "target_reached": bool(feasible.any()),
            **{k: _num(v[best]) for k, v in m.items()},
            "rows": len(texts), "out_of_scope_rows": int(gold_oos.sum()),
            "no_threshold": {k: _num(v[0]) for k, v in m.items()}}


def _num(x) -> float | None:
    return None if x is None or np.isnan(x) else round(float(x), 4)
