"""Classification metrics (scikit-learn) and the error-analysis report."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, f1_score

from graftkit.data.dataset import Example
from graftkit.io import write_csv
from graftkit.report.plots import confusion_matrix_png


def scores(y_true, y_pred, multi_label: bool) -> dict[str, float]:
    """accuracy (exact match for multi-label), macro/micro/weighted F1."""
    out = {"accuracy": float(accuracy_score(y_true, y_pred))}
    for avg in ("macro", "micro", "weighted"):
        out[f"{avg}_f1"] = float(f1_score(y_true, y_pred, average=avg, zero_division=0))
    return out


def per_class(y_true, y_pred, labels: list[str]) -> dict[str, dict[str, float]]:
    rep = classification_report(y_true, y_pred, labels=list(range(len(labels))), target_names=labels,
                                output_dict=True, zero_division=0)
    return {lab: {k: float(v) for k, v in rep[lab].items()} for lab in labels}


def shown(label: str | Sequence[str]) -> str:
    """A label, or a label set joined with '|', as the error files show it."""
    return label if isinstance(label, str) else "|".join(label)


def report(examples: Sequence[Example], preds: Sequence, labels: list[str], multi_label: bool,
           out_dir: Path | None, plots: bool) -> dict:
    """Metrics on labelled examples; writes misclassified.csv and confusion_matrix.png to ``out_dir``."""
    l2i = {lab: i for i, lab in enumerate(labels)}
    if multi_label:
        y_true = np.zeros((len(examples), len(labels)), dtype=int)
        y_pred = np.zeros_like(y_true)
        for r, (e, p) in enumerate(zip(examples, preds)):
            y_true[r, [l2i[x] for x in e.label]] = 1
            y_pred[r, [l2i[x] for x in p.labels]] = 1
        wrong = [i for i in range(len(examples)) if (y_true[i] != y_pred[i]).any()]
    else:
        y_true = np.array([l2i[e.label] for e in examples])
        y_pred = np.array([l2i[p.label] for p in preds])
        wrong = [i for i in range(len(examples)) if y_true[i] != y_pred[i]]
    result = scores(y_true, y_pred, multi_label)
    result["n"] = len(examples)
    result["per_class"] = per_class(y_true, y_pred, labels)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        rows = []
        for i in wrong:
            e, p = examples[i], preds[i]
            conf, predicted = (max(p.scores.values()), p.labels) if multi_label else (p.score, p.label)
            rows.append([e.path, e.line, e.text, e.text_pair or "", shown(e.label), shown(predicted), f"{conf:.4f}"])
        rows.sort(key=lambda r: -float(r[-1]))  # most confident mistakes first: likeliest label noise
        write_csv(out_dir / "misclassified.csv", ["file", "line", "text", "text_pair", "true", "predicted",
                                                  "confidence"], rows)
        if plots and not multi_label:
            cm = confusion_matrix(y_true, y_pred, labels=list(range(len(labels))))
            confusion_matrix_png(cm, labels, out_dir / "confusion_matrix.png")
            result["confusion_matrix"] = cm.tolist()
    return result
