"""Training pairs and retrieval evaluation sets for the bi-encoder.

Two ways to describe what is similar:

* **pairs** (``data.text_pair_column`` set): each row is a (query, positive) pair, e.g. a user
  question and the FAQ question it should find;
* **labels** (no pair column): rows sharing a ``label_column`` value (an intent) are similar; a
  training pair is a row and another row of the same label, and at evaluation a query is
  relevant to every corpus row of its label.
"""
from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass

from graftkit.data.dataset import Example


@dataclass
class RetrievalSet:
    """Queries, a corpus and, per query id, the relevant corpus ids (sentence-transformers' IR format)."""

    queries: dict[str, str]
    corpus: dict[str, str]
    relevant: dict[str, set[str]]


def training_pairs(train: list[Example], label_mode: bool, seed: int) -> tuple[list[str], list[str], int]:
    """(anchors, positives, skipped): in label mode each row is paired with another row of its label.

    Rows whose label occurs once cannot be paired and are counted in ``skipped``.
    """
    if not label_mode:
        return [e.text for e in train], [e.text_pair for e in train], 0
    by_label: dict[str, list[str]] = defaultdict(list)
    for e in train:
        by_label[e.label].append(e.text)
    rng = random.Random(seed)
    anchors, positives, skipped = [], [], 0
    for e in train:
        others = [t for t in by_label[e.label] if t != e.text]
        if not others:
            skipped += 1
            continue
        anchors.append(e.text)
        positives.append(rng.choice(others))
    return anchors, positives, skipped


def retrieval_set(queries: list[Example], corpus_rows: list[Example], label_mode: bool) -> RetrievalSet:
    """Label mode: the corpus is ``corpus_rows``' texts, relevant = same label.
    Pair mode: the corpus is every distinct positive of ``corpus_rows`` and ``queries``; relevant = own positive.
    """
    if label_mode:
        corpus = {f"c{i}": e.text for i, e in enumerate(corpus_rows)}
        by_label: dict[str, set[str]] = defaultdict(set)
        for i, e in enumerate(corpus_rows):
            by_label[e.label].add(f"c{i}")
        return RetrievalSet({f"q{i}": e.text for i, e in enumerate(queries)}, corpus,
                            {f"q{i}": set(by_label.get(e.label, ())) for i, e in enumerate(queries)})
    ids: dict[str, str] = {}
    for e in list(corpus_rows) + list(queries):
        ids.setdefault(e.text_pair, f"c{len(ids)}")
    return RetrievalSet({f"q{i}": e.text for i, e in enumerate(queries)}, {cid: t for t, cid in ids.items()},
                        {f"q{i}": {ids[e.text_pair]} for i, e in enumerate(queries)})
