"""Which pool rows a self-training round adds: per-class confidence thresholds set on validation, then the same
number of the most confident rows from every class (graftkit/train/self_training.py runs the rounds)."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from graftkit.data.dataset import TEXT_SUFFIXES, Example, read_documents
from graftkit.data.quality import input_key
from graftkit.errors import GraftkitError
from graftkit.tasks.capabilities import PseudoLabel, SelfTrains
from graftkit.tasks.predictions import Prediction


def class_thresholds(learner: SelfTrains, validation: list[Example], predictions: list[Prediction],
                     precision: float, floor: float) -> dict[str, float]:
    """Per class (the key a validation prediction is balanced by): the lowest confidence at which the predictions
    of that class, from the most confident down, are still at least ``precision`` right; never below ``floor``.
    A class whose most confident prediction is already wrong more often than that gets 1.0 (nothing passes)
    and a class validation never predicts gets ``floor``."""
    by_key: dict[str, list[tuple[float, bool]]] = defaultdict(list)
    for example, prediction in zip(validation, predictions):
        pseudo = learner.pseudo_label(example, prediction)
        if pseudo is not None:
            by_key[pseudo.key].append((pseudo.confidence, learner.is_right(example, prediction)))
    thresholds = {}
    for key, scored in by_key.items():
        scored.sort(key=lambda s: -s[0])
        right, best = 0, 1.0
        for n, (confidence, is_right) in enumerate(scored, 1):
            right += is_right
            if right / n >= precision:
                best = confidence
        thresholds[key] = max(best, floor)
    return thresholds


@dataclass
class Added:
    """The rows one round adds and what the training record says of them."""

    rows: list[PseudoLabel]
    per_class: dict[str, int] = field(default_factory=dict)
    passing: dict[str, int] = field(default_factory=dict)

    def record(self) -> dict:
        mean = sum(p.confidence for p in self.rows) / len(self.rows) if self.rows else None
        return {"added": len(self.rows), "added_per_class": self.per_class, "above_threshold": self.passing,
                "mean_confidence": mean}


def balanced_selection(candidates: list[PseudoLabel], thresholds: dict[str, float], floor: float,
                       cap: int) -> Added:
    """The most confident candidates above their class's threshold (``floor`` for a class validation never
    predicted), the same number from every class that has any: the fewest any such class has, at most ``cap``."""
    passing: dict[str, list[PseudoLabel]] = defaultdict(list)
    for c in candidates:
        if c.confidence >= thresholds.get(c.key, floor):
            passing[c.key].append(c)
    if not passing:
        return Added([])
    quota = min(cap, *(len(rows) for rows in passing.values()))
    chosen = [row for key in sorted(passing)
              for row in sorted(passing[key], key=lambda p: -p.confidence)[:quota]]
    return Added(chosen, {key: quota for key in sorted(passing)}, {k: len(v) for k, v in sorted(passing.items())})


def read_pool(path: str, task, data_cfg, learner: SelfTrains, held: list[Example],
              log) -> list[Example]:
    """The unlabelled rows, less those whose input is labelled, held out for validation or test, or repeated (a
    pool row that is also a test row would leak); the count dropped is logged.

    Raises:
        DataError: the file cannot be read. GraftkitError: no row is left.
    """
    if Path(path).suffix.lower() in TEXT_SUFFIXES:
        rows = read_documents(path, data_cfg.encoding)
    else:
        rows, _ = task.read(path, data_cfg, with_labels=False)
    seen = {input_key(e) for e in held}
    pool = []
    for e in rows:
        key = input_key(e)
        if key not in seen:
            seen.add(key)
            pool.append(learner.pool_example(e))
    if len(pool) < len(rows):
        log(f"train.self_training.unlabelled: dropped {len(rows) - len(pool)} of {len(rows)} rows of {path} that "
            "are labelled, held out, or repeated")
    if not pool:
        raise GraftkitError(f"train.self_training.unlabelled: {path} has no row left to label (all {len(rows)} are "
                            "labelled, held out, or repeated)")
    return pool
