"""Tiny intent + FAQ retrieval runs for the assistant tests (trained once per session, cached on disk)."""
from __future__ import annotations

import csv
from pathlib import Path

from conftest import REPO, run_config, write_csv

FAQ = REPO / "examples" / "customer_service_faq.csv"
INTENTS = {
    "change_pin": ["how do i change my pin", "reset my card pin", "i forgot my pin", "new pin please"],
    "lost_card": ["my card was stolen", "i lost my card", "card missing help", "someone took my card"],
    "transfer_pending": ["transfer still pending", "my transfer is stuck", "money sent not received",
                         "payment not arrived yet"],
    "card_delivery": ["when will my card arrive", "card not delivered", "where is my new card",
                      "track my card delivery"],
}
OUT_OF_SCOPE = ["what is the weather in paris", "tell me a joke about cats", "who won the football match",
                "recommend a good pizza recipe"]


def intent_run(base: Path, model_dir: str, detector: bool = False) -> Path:
    """The tiny intent run; with ``detector``, one with an out-of-scope detector (``task.out_of_scope``) chosen on a
    validation file holding OUT_OF_SCOPE questions labelled ``oos``."""
    from graftkit.train.trainer import train

    tmp = base / ("intent-oos" if detector else "intent")
    if (tmp / "runs" / "t" / "COMPLETE").is_file():
        return tmp / "runs" / "t"
    rows = [[t, lab] for lab, texts in INTENTS.items() for t in texts]
    oos = [[t, "oos"] for t in OUT_OF_SCOPE] if detector else []
    data = write_csv(tmp / "train.csv", rows * 6 + oos, header=("text", "intent"))
    val = write_csv(tmp / "val.csv", rows + oos, header=("text", "intent"))
    task = {"type": "classification", **({"out_of_scope": {"label": "oos"}} if detector else {})}
    cfg = run_config(tmp, model_dir, data, task=task,
                     data={"label_column": "intent", "validation": str(val if detector else data),
                           "test": str(write_csv(tmp / "t.csv", rows + oos, ("text", "intent")))},
                     train={"epochs": 15, "learning_rate": 1e-2, "batch_size": 8})
    return train(cfg, log=lambda m: None).path


def retrieval_run(base: Path, model_dir: str) -> Path:
    """An embedding run trained on (query, FAQ question) pairs, with the FAQ indexed as 'faq'."""
    from graftkit.inference.retrieval.index import build_index
    from graftkit.train.trainer import train

    tmp = base / "faq"
    if (tmp / "runs" / "t" / "COMPLETE").is_file():
        return tmp / "runs" / "t"
    with open(FAQ, encoding="utf-8") as fh:
        question = {r["intent"]: r["question"] for r in csv.DictReader(fh)}
    pairs = [[t, question[lab]] for lab, texts in INTENTS.items() for t in texts]
    path = write_csv(tmp / "pairs.csv", pairs * 3, header=("query", "question"))
    cfg = run_config(tmp, model_dir, path, task={"type": "embedding"},
                     data={"text_column": "query", "text_pair_column": "question",
                           "split": {"validation": 0.0, "test": 0.0}},
                     train={"epochs": 4, "batch_size": 8, "learning_rate": 2e-3})
    cfg.train.early_stopping = type(cfg.train)().early_stopping  # the bi-encoder trainer refuses any other value
    run = train(cfg, log=lambda m: None).path
    build_index(run, FAQ, text_column="question", name="faq")
    return run


def assistant_tree(intent: Path, retrieval: Path | None, store: str, **extra) -> dict:
    """A config tree; a run without a detector answers from intent confidence 0.3 (the tiny run is unsure)."""
    tree = {"intent_run": str(intent), "store": store, "thresholds": {"intent_confidence": 0.3}}
    if retrieval:
        tree.update(retrieval_run=str(retrieval), index="faq")
    tree.update(extra)
    return tree


def known_texts(intent: Path, n: int = 2) -> list[tuple[str, str]]:
    """Training texts the tiny intent run classifies correctly, most confident first, one per intent.

    Tests about the assistant's behaviour use these, so they do not depend on how well a 2-layer
    random model learned every example; at least ``n`` intents must be learned.
    """
    from graftkit.inference.predictor import Predictor

    pred = Predictor(intent)
    rows = [(t, lab) for lab, texts in INTENTS.items() for t in texts]
    scored = [(p.score, t, lab) for (t, lab), p in zip(rows, pred.predict([t for t, _ in rows]))
              if p.label == lab]
    best: dict[str, tuple[str, str]] = {}
    for _, t, lab in sorted(scored, reverse=True):
        best.setdefault(lab, (t, lab))
    assert len(best) >= n, f"the tiny intent run learned only {sorted(best)}"
    return list(best.values())[:n]


def faq_answers(intent: str) -> set[str]:
    """The FAQ answers tagged with ``intent`` (an intent may have several entries)."""
    with open(FAQ, encoding="utf-8") as fh:
        return {r["answer"] for r in csv.DictReader(fh) if r["intent"] == intent}
