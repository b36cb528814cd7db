"""Class labels of sequence classification (single- and multi-label): parsing, order, checks, targets, weights.

Shared by the task folders whose labels are classes (classification, ranking, embedding in label mode)."""
from __future__ import annotations

from collections import Counter
from typing import Any, Sequence

import numpy as np

from graftkit.data.dataset import Example
from graftkit.data.readers import Row
from graftkit.errors import ConfigError, DataError


def parse_label(raw: Any, row: Row, column: str, separator: str | None) -> str | tuple[str, ...]:
    """One label string, or a tuple of labels for multi-label data (list value or separated string)."""
    if raw is None or (isinstance(raw, float) and raw != raw):
        raw = ""
    if separator is not None or isinstance(raw, (list, tuple)):
        parts = raw if isinstance(raw, (list, tuple)) else str(raw).split(separator or "|")
        labels = tuple(sorted({str(p).strip() for p in parts if str(p).strip()}))
        return labels  # an empty set is a valid multi-label target ("none of them")
    label = str(raw).strip()
    if not label:
        raise DataError(row.path, "empty label", line=row.line, field=column)
    return label


def sort_labels(labels: set[str]) -> list[str]:
    """Numeric labels sort numerically ('2' before '10'), others alphabetically."""
    try:
        return sorted(labels, key=float)
    except ValueError:
        return sorted(labels)


def label_set(examples: Sequence[Example], multi_label: bool) -> set[str]:
    return {lab for e in examples for lab in e.label} if multi_label else {e.label for e in examples}


def check_known(examples: Sequence[Example], label2id: dict[str, int], multi_label: bool, column: str) -> None:
    """Error on the first label that the training data never showed."""
    for e in examples:
        for lab in (e.label if multi_label else (e.label,)):
            if lab not in label2id:
                raise DataError(e.path, f"label {lab!r} does not occur in the training data "
                                f"(known: {', '.join(label2id)}); add training examples for it or fix the value",
                                line=e.line, field=column)


def targets(examples: Sequence[Example], label2id: dict[str, int], multi_label: bool) -> list:
    if not multi_label:
        return [label2id[e.label] for e in examples]
    out = []
    for e in examples:
        vec = [0.0] * len(label2id)
        for lab in e.label:
            vec[label2id[lab]] = 1.0
        out.append(vec)
    return out


def class_weights(examples: Sequence[Example], labels: list[str], multi_label: bool, spec) -> np.ndarray | None:
    """Per-class loss weights: 'balanced' (n / (k * count)) or an explicit mapping label → weight."""
    if spec is None:
        return None
    if isinstance(spec, dict):
        unknown = set(spec) - set(labels)
        if unknown:
            raise ConfigError(f"task.class_weights: unknown labels {sorted(unknown)} (labels: {labels})")
        return np.array([float(spec.get(lab, 1.0)) for lab in labels], dtype=np.float32)
    counts = Counter(lab for e in examples for lab in (e.label if multi_label else (e.label,)))
    n, k = len(examples), len(labels)
    if multi_label:  # BCE pos_weight: negatives / positives per label
        return np.array([(n - counts[lab]) / max(counts[lab], 1) for lab in labels], dtype=np.float32)
    return np.array([n / (k * max(counts[lab], 1)) for lab in labels], dtype=np.float32)


def check_teacher_labels(teacher: Sequence[str], student: Sequence[str], where: str) -> None:
    """A distillation teacher must score the student's labels in the student's order (``train.distill``)."""
    if list(teacher) != list(student):
        raise ConfigError(f"train.distill.teacher: {where} has labels {list(teacher)[:10]}, the student "
                          f"{list(student)[:10]}; train both on the same label set")
