"""Out-of-scope threshold selection on a validation set that contains out-of-scope questions.

Every row whose label is not one of the intent run's in-scope intents (or is the run's own
out-of-scope class) counts as out of scope. The scope threshold is the detector's score threshold for an
intent run with a detector (graftkit/inference/scope.py), else the intent confidence. For each pair
(scope threshold, FAQ-similarity threshold or none) on a grid, the assistant's decision gives:

- in-scope accuracy: in-scope questions answered with the right intent (a handoff counts as wrong);
- out-of-scope recall / precision: out-of-scope questions handed off, and handoffs that were out of scope;
- handoff rate: all questions handed off.

The chosen pair maximises out-of-scope recall among those reaching the target in-scope accuracy; ties go
to the lower handoff rate, then to no similarity threshold (it is added only where it helps), then to the
run's own detector threshold, then to the middle of the tied range (see ``_among_ties``). If none reaches
the target, the most accurate pair is returned, flagged.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from graftkit.apps.assistant.pipeline import Assistant
from graftkit.data.readers import read_rows
from graftkit.errors import DataError
from graftkit.inference.scope import DEFAULT_CONFIDENCE
from graftkit.tasks.capabilities import ScoresLabels

METRICS = ("in_scope_accuracy", "oos_recall", "oos_precision", "handoff_rate")


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


@dataclass
class Signals:
    """Per validation row: gold out of scope, the scope signal (detector score, or confidence), the best FAQ
    similarity (NaN: none), handoffs no threshold changes (out-of-scope class, handoff intents), correct intent."""

    gold_oos: np.ndarray
    scope: np.ndarray
    similarity: np.ndarray
    forced: np.ndarray
    correct: np.ndarray


def _signals(assistant: Assistant, texts: list[str], labels: list[str]) -> Signals:
    an = assistant.analyze(texts)
    in_scope_labels = {str(x) for x in assistant.intent.task.capability(ScoresLabels, "calibrate").labels} \
        - {assistant.cfg.oos_label}
    pred = np.array([a.intent for a in an])
    detector = assistant.rule.detector is not None
    scope = np.array([a.out_of_scope_score if detector else a.confidence for a in an], dtype=float)
    sim = np.array([np.nan if a.similarity is None else a.similarity for a in an], dtype=float)
    forced = pred == assistant.cfg.oos_label if assistant.cfg.oos_label else np.zeros(len(an), bool)
    forced |= np.isin(pred, assistant.cfg.handoff_intents)
    return Signals(np.array([lab not in in_scope_labels for lab in labels]), scope, sim, forced,
                   pred == np.array(labels))


def _off_scope(scope: np.ndarray, threshold: float, detector: bool) -> np.ndarray:
    """Rows the scope rule hands off (the rule of graftkit/inference/scope.py, vectorised)."""
    return scope > threshold if detector else scope < threshold


def _low_similarity(sim: np.ndarray, threshold: float | None) -> np.ndarray:
    if threshold is None:
        return np.zeros(sim.shape, bool)
    return np.nan_to_num(sim, nan=np.inf) < threshold  # no FAQ hit: similarity is not a signal


def _scores(flagged: np.ndarray, gold_oos: np.ndarray, correct: np.ndarray) -> dict:
    """Metrics of a (thresholds × rows) matrix of handoff decisions."""
    ins = ~gold_oos
    acc = (~flagged[:, ins] & correct[ins]).mean(axis=1) if ins.any() else np.full(len(flagged), np.nan)
    rec = flagged[:, gold_oos].mean(axis=1) if gold_oos.any() else np.full(len(flagged), np.nan)
    n_flag = flagged.sum(axis=1)
    prec = np.where(n_flag > 0, (flagged & gold_oos).sum(axis=1) / np.maximum(n_flag, 1), np.nan)
    return {"in_scope_accuracy": acc, "oos_recall": rec, "oos_precision": prec, "handoff_rate": flagged.mean(axis=1)}


def _at(s: Signals, scope_threshold: float, sim_threshold: float | None, detector: bool) -> dict:
    flagged = s.forced | _off_scope(s.scope, scope_threshold, detector) | _low_similarity(s.similarity, sim_threshold)
    return {k: _num(v[0]) for k, v in _scores(flagged[None, :], s.gold_oos, s.correct).items()}


def evaluate(assistant: Assistant, texts: list[str], labels: list[str]) -> dict:
    """The metrics at the assistant's configured thresholds."""
    s = _signals(assistant, texts, labels)
    rule = assistant.rule
    m = _at(s, rule.threshold, assistant.cfg.thresholds.retrieval_similarity, rule.detector is not None)
    return {**m, "decided_by": rule.signal, "rows": len(texts), "out_of_scope_rows": int(s.gold_oos.sum())}


def _midpoints(values: np.ndarray) -> set[float]:
    """Thresholds between consecutive distinct values (rounded, so the threshold written to the config decides
    exactly as evaluated); quantiles of them on a large validation file, to keep the grid small."""
    seen = np.unique(values[np.isfinite(values)])
    if len(seen) > 400:
        seen = np.unique(np.quantile(seen, np.linspace(0, 1, 401)))
    return {round(float(x), 4) for x in (seen[:-1] + seen[1:]) / 2}


def _scope_grid(s: Signals, detector: bool, own: float | None) -> list[float]:
    """Candidate scope thresholds: confidences 0.00..0.99, or midpoints between the detector scores seen, the run's
    own threshold, and one above every score (nothing handed off)."""
    if not detector:
        return [float(x) for x in np.round(np.arange(0.0, 1.0, 0.01), 2)]
    top = float(np.nanmax(s.scope)) + 1.0 if np.isfinite(s.scope).any() else 1.0
    return sorted(_midpoints(s.scope) | {round(top, 4)} | ({own} if own is not None else set()))


def calibrate(assistant: Assistant, texts: list[str], labels: list[str], target_accuracy: float = 0.9,
              use_similarity: bool = True) -> dict:
    """Choose the thresholds (see the module docstring); returns them in the config's form with their metrics,
    and the metrics before (at the config's thresholds) and with the scope rule alone at the run's default."""
    s = _signals(assistant, texts, labels)
    rule = assistant.rule
    detector = rule.detector is not None
    own = assistant.intent.detector.chosen[1] if detector else None
    has_sim = use_similarity and not np.isnan(s.similarity).all()
    sim_grid = [None] + (sorted(_midpoints(s.similarity)) if has_sim else [])
    combos, rows = [], []
    for ts in sim_grid:
        low_sim = _low_similarity(s.similarity, ts)
        for tc in _scope_grid(s, detector, own):
            combos.append((tc, ts))
            rows.append(s.forced | _off_scope(s.scope, tc, detector) | low_sim)
    m = _scores(np.array(rows), s.gold_oos, s.correct)
    feasible = m["in_scope_accuracy"] >= target_accuracy
    key = np.where(feasible, m["oos_recall"], -np.inf) if feasible.any() else m["in_scope_accuracy"]
    key = np.nan_to_num(key, nan=-1.0) - 1e-6 * m["handoff_rate"]  # ties: the lower handoff rate
    tc, ts = _among_ties(combos, np.flatnonzero(key >= key.max() - 1e-12), own)
    best = _at(s, tc, ts, detector)
    first = _at(s, *combos[int(np.argmax(key))], detector)
    if best != first:  # the middle of the tied range decides some row otherwise: keep a tied grid point
        tc, ts = combos[int(np.argmax(key))]
        best = first
    th = assistant.cfg.thresholds
    return {"thresholds": _thresholds(detector, tc, own, ts), "decided_by": rule.signal, "detector": rule.detector,
            "target_in_scope_accuracy": target_accuracy, "target_reached": bool(feasible.any()), **best,
            "rows": len(texts), "out_of_scope_rows": int(s.gold_oos.sum()),
            "before": {"thresholds": th.model_dump(), **_at(s, rule.threshold, th.retrieval_similarity, detector)},
            "run_default": _at(s, own if detector else DEFAULT_CONFIDENCE, None, detector)}


def _among_ties(combos: list[tuple[float, float | None]], tied: np.ndarray, own: float | None):
    """The pick among equally good (scope, similarity) thresholds: no similarity threshold if one of them has
    none (it is added only where it helps), the run's own detector threshold if one has it, then the middle of
    the tied range: the widest margin to the validation questions on either side, so a new question near an
    edge is less likely to flip than at the edge itself."""
    cands = [combos[i] for i in tied]
    if any(ts is None for _, ts in cands):
        cands = [c for c in cands if c[1] is None]
    if own is not None and any(tc == own for tc, _ in cands):
        cands = [c for c in cands if c[0] == own]
    tcs = [tc for tc, _ in cands]
    tss = [ts for _, ts in cands if ts is not None]
    return (round((min(tcs) + max(tcs)) / 2, 4) if len(set(tcs)) > 1 else tcs[0],
            round((min(tss) + max(tss)) / 2, 4) if tss else None)


def _thresholds(detector: bool, scope: float, own: float | None, similarity: float | None) -> dict:
    """The chosen thresholds as the config's ``thresholds`` (the run's own detector threshold stays null)."""
    if detector:
        return {"out_of_scope_score": None if scope == own else scope, "intent_confidence": None,
                "retrieval_similarity": similarity}
    return {"out_of_scope_score": None, "intent_confidence": scope, "retrieval_similarity": similarity}


def _num(x) -> float | None:
    return None if x is None or np.isnan(x) else round(float(x), 4)
