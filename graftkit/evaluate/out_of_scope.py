"""Out-of-scope detection after training: fit the detectors on the training rows, choose one and its threshold
on validation, and report every detector on validation and test.

Per detector and split: AUROC and the false-positive rate at 95% in-scope recall (FPR95) where the split has
out-of-scope rows, and at the detector's own validation threshold the in-scope accuracy (a correct answer not
handed off), out-of-scope recall and precision, and the handoff rate. The chosen detector is
``task.out_of_scope.detector``, or with ``auto`` the one with the most out-of-scope recall at the target
in-scope accuracy on validation (ties: AUROC); without out-of-scope validation rows, Mahalanobis (energy when
no feature score was fitted), whose threshold keeps ``keep_in_scope`` of the in-scope validation rows.
Scores come from the raw logits: temperature scaling changes no decision.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from graftkit.data.dataset import Example, Splits
from graftkit.report.trust_plots import score_distribution_png
from graftkit.tasks.capabilities import DetectsOutOfScope, ScoresLabels
from graftkit.modeling.ood import FEATURE_DETECTORS, at_threshold, auroc, choose_threshold, fpr_at_95

SPLITS = ("validation", "test")


def set_aside(task, splits: Splits) -> Splits:
    """Move each split's out-of-scope rows (the task's out-of-scope label) to ``splits.out_of_scope``: the task
    learns and is scored on in-scope rows; its detector is chosen and reported on both."""
    detector = task.optional(DetectsOutOfScope)
    if detector is None or not detector.enabled:
        return splits
    for name in ("train", "validation", "test"):
        kept, out = detector.split_off(getattr(splits, name))
        setattr(splits, name, kept)
        splits.out_of_scope[name] = out
    if any(splits.out_of_scope.values()):
        counts = ", ".join(f"{name} {len(rows)}" for name, rows in splits.out_of_scope.items())
        splits.notes.append(f"out-of-scope rows (task.out_of_scope.label '{detector.settings.label}') set aside, "
                            f"not learnt as a class: {counts}")
    return splits


def _round(d: dict) -> dict:
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in d.items()}


def _split_scores(predictor, detector, in_scope: list[Example], out: list[Example]) -> dict:
    """Every detector's scores on one split, which rows are out of scope, and which in-scope rows the model
    labels right."""
    rows = in_scope + out
    logits, feats = predictor.outputs([predictor.task.input_of(e) for e in rows], predictor.cfg.eval.batch_size,
                                      detector.needs_features)
    ids = {label: i for i, label in enumerate(predictor.task.capability(ScoresLabels, "train").labels)}
    gold = np.array([ids.get(e.label, -1) for e in rows])
    return {"scores": detector.scores(logits, feats), "correct": logits.argmax(axis=-1) == gold,
            "out_of_scope": np.array([False] * len(in_scope) + [True] * len(out))}


def _detector_report(split: dict, name: str, threshold: float) -> dict:
    scores = split["scores"][name]
    return _round({"auroc": auroc(scores, split["out_of_scope"]), "fpr95": fpr_at_95(scores, split["out_of_scope"]),
                   **at_threshold(scores, threshold, split["out_of_scope"], split["correct"])})


def _pick(settings, report: dict, val: dict, fitted: list[str]) -> str:
    if settings.detector != "auto":
        return settings.detector
    if not val["out_of_scope"].any():
        return next((d for d in ("mahalanobis", "energy") if d in fitted), fitted[0])
    return max(fitted, key=lambda d: (report[d]["target_reached"], report[d]["validation"]["oos_recall"] or 0,
                                      report[d]["validation"]["auroc"] or 0))


def fit_out_of_scope(predictor, detector, splits: Splits, out_of_scope: dict[str, list[Example]],
                     plots_dir: Path | None, log: Callable[[str], None] = print) -> dict:
    """Fit, choose and report (see the module docstring); ``detector`` is the task's ``DetectsOutOfScope``
    and keeps the choice (the caller saves it with the run). Returns the report for metrics.json."""
    settings = detector.settings
    logits, feats = predictor.outputs([predictor.task.input_of(e) for e in splits.train],
                                      predictor.cfg.eval.batch_size, detector.needs_features)
    detector.fit(logits, feats, splits.train)
    parts = {name: _split_scores(predictor, detector, getattr(splits, name), out_of_scope.get(name, []))
             for name in SPLITS if getattr(splits, name) or out_of_scope.get(name)}
    val = parts.get("validation") or parts["test"]  # no validation split: the test split chooses, and says so
    chosen_on = "validation" if "validation" in parts else "test"
    fitted = list(val["scores"])
    report = {}
    for name in fitted:
        threshold, reached = choose_threshold(val["scores"][name], val["out_of_scope"], val["correct"],
                                              settings.target_in_scope_accuracy, settings.keep_in_scope)
        report[name] = {"threshold": round(threshold, 6), "target_reached": reached,
                        **{split: _detector_report(parts[split], name, threshold) for split in parts}}
    best = _pick(settings, report, val, fitted)
    detector.choose(best, report[best]["threshold"])
    shown = parts.get("test") or val
    if plots_dir is not None:
        scores, out = shown["scores"][best], shown["out_of_scope"]
        score_distribution_png(scores[~out], scores[out], report[best]["threshold"], plots_dir / "out_of_scope.png",
                               f"Out-of-scope score: {best}")
    summary = report[best].get("test") or report[best][chosen_on]
    log(f"out of scope: {best} (threshold {report[best]['threshold']:.4g}, chosen on {chosen_on}): "
        + ", ".join(f"{k}={v:.4f}" for k, v in summary.items() if isinstance(v, float)))
    return {"detector": best, "threshold": report[best]["threshold"], "chosen_on": chosen_on,
            "target_in_scope_accuracy": settings.target_in_scope_accuracy,
            "out_of_scope_rows": {split: len(out_of_scope.get(split, [])) for split in SPLITS},
            "feature_detectors": [d for d in fitted if d in FEATURE_DETECTORS], "detectors": report}


def report_fitted(predictor, detector, in_scope: list[Example], out: list[Example]) -> dict:
    """The fitted detector on labelled rows (``graftkit evaluate``): AUROC, FPR95 and the operating point."""
    name, threshold = detector.chosen
    part = _split_scores(predictor, detector, in_scope, out)
    return {"detector": name, "threshold": threshold, "out_of_scope_rows": len(out),
            **_detector_report(part, name, threshold)}
