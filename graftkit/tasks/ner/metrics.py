"""Entity metrics with seqeval (strict mode, the internal scheme), token accuracy, type confusion,
and the file of sentences with errors."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from seqeval.metrics import accuracy_score, classification_report, f1_score, precision_score, recall_score
from seqeval.scheme import IOB2, IOBES

from graftkit.data.dataset import Example
from graftkit.io import write_jsonl
from graftkit.report.plots import confusion_matrix_png
from graftkit.tasks.predictions import EntitiesPrediction, Entity
from graftkit.tasks.ner.preprocess import word_spans
from graftkit.tasks.ner.schemes import spans_to_tags

SEQEVAL_SCHEME = {"IOB2": IOB2, "BIOES": IOBES}


def scores(gold: list[list[str]], pred: list[list[str]], scheme: str) -> dict[str, float]:
    """Entity precision/recall/F1 (micro, strict) and token accuracy."""
    kw = {"mode": "strict", "scheme": SEQEVAL_SCHEME[scheme], "zero_division": 0}
    return {"f1": float(f1_score(gold, pred, **kw)), "precision": float(precision_score(gold, pred, **kw)),
            "recall": float(recall_score(gold, pred, **kw)), "token_accuracy": float(accuracy_score(gold, pred))}


def _pred_spans(entities: Sequence[Entity], words: Sequence[tuple[int, int]]) -> list[tuple[int, int, str]]:
    return word_spans([(e.start, e.end, e.label) for e in entities], words)


def type_confusion(gold: Sequence[set], pred: Sequence[set], types: list[str]) -> tuple[np.ndarray, list[str]]:
    """Counts of (gold type, predicted type) over entity boundaries; 'O' stands for no entity there."""
    names = list(types) + ["O"]
    at = {t: i for i, t in enumerate(names)}
    cm = np.zeros((len(names), len(names)), dtype=int)
    for g, p in zip(gold, pred):
        g_by = {(s, e): t for s, e, t in g}
        p_by = {(s, e): t for s, e, t in p}
        for key in set(g_by) | set(p_by):
            cm[at.get(g_by.get(key, "O"), at["O"]), at.get(p_by.get(key, "O"), at["O"])] += 1
    return cm, names


def report(examples: Sequence[Example], preds: Sequence[EntitiesPrediction], types: list[str], scheme: str,
           out_dir: Path | None, plots: bool) -> dict:
    """Metrics over the examples' words; writes sentences_with_errors.jsonl and the type confusion plot.

    Gold types the model was not trained on (``types`` lacks them) get their own per-class row and
    confusion row, so that their missed entities are visible rather than folded into "O".
    """
    types = list(types) + sorted({s[2] for e in examples for s in e.label} - set(types))
    gold_tags, pred_tags, gold_sets, pred_sets = [], [], [], []
    for e, p in zip(examples, preds):
        words = e.extra["words"]
        g, q = word_spans(e.label, words), _pred_spans(p.entities, words)
        gold_tags.append(spans_to_tags(len(words), g, scheme))
        pred_tags.append(spans_to_tags(len(words), q, scheme))
        gold_sets.append(set(g))
        pred_sets.append(set(q))
    result = scores(gold_tags, pred_tags, scheme)
    result["n"] = len(examples)
    rep = classification_report(gold_tags, pred_tags, mode="strict", scheme=SEQEVAL_SCHEME[scheme],
                                output_dict=True, zero_division=0)
    result["per_class"] = {t: {k: float(v) for k, v in rep[t].items()} for t in types if t in rep}
    cm, names = type_confusion(gold_sets, pred_sets, types)
    result["type_confusion"] = {"labels": names, "matrix": cm.tolist()}
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        rows = []
        for e, p, g, q in zip(examples, preds, gold_sets, pred_sets):
            if g != q:
                rows.append({"file": e.path, "line": e.line, "text": e.text,
                             "gold": [{"start": s, "end": t, "label": y, "text": e.text[s:t]} for s, t, y in e.label],
                             "predicted": p.to_dict()["entities"],
                             "missed": sorted(_chars(g - q, e)), "spurious": sorted(_chars(q - g, e))})
        write_jsonl(out_dir / "sentences_with_errors.jsonl", rows)
        if plots:
            confusion_matrix_png(cm, names, out_dir / "confusion_matrix.png")
    return result


def _chars(spans: set, e: Example) -> list[list]:
    words = e.extra["words"]
    return [[words[a][0], words[b - 1][1], t, e.text[words[a][0]:words[b - 1][1]]] for a, b, t in spans]
