"""Customer-service answering: intent + confidence from a classifier, best FAQ entries from an index.

Below the confidence threshold (or, with ``min_score``, when no FAQ entry is similar enough) the
answer is "out of scope" with no FAQ entries, so the assistant says it does not know instead of
guessing. A softmax intent classifier trained without out-of-scope examples can be confident on
off-topic questions; the retrieval score is a second, independent check.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from graftkit.errors import GraftkitError
from graftkit.tasks.capabilities import ScoresLabels
from graftkit.tasks.predictions import LabelPrediction

DONT_KNOW = "Sorry, I am not sure I understood. Could you rephrase, or shall I connect you to a person?"


@dataclass
class Answerer:
    """Answer questions with an intent run and an FAQ index.

    Args:
        intent: ``Predictor`` over a single-label classification run (the intents).
        index: ``graftkit.inference.retrieval.Index`` over the FAQ.
        threshold: minimum intent probability to answer; below it the question is out of scope.
        k: number of FAQ entries returned.
        reranker: optional ``CrossEncoderReranker`` applied to the retrieved entries.
        min_score: optional minimum cosine similarity of the best FAQ entry; below it: out of scope.
    """

    intent: object
    index: object
    threshold: float = 0.5
    k: int = 3
    reranker: object | None = None
    min_score: float | None = None
    candidates: int = field(default=20, repr=False)

    def __post_init__(self):
        labels = self.intent.task.optional(ScoresLabels)
        if labels is None or labels.multi_label:
            raise GraftkitError(f"the intent run must be a single-label classification run, not a "
                                f"{self.intent.task.label()} run")

    def __call__(self, question: str) -> dict:
        pred = self.intent.predict([question])[0]
        out = {"question": question, "intent": pred.label, "confidence": pred.score,
               "threshold": self.threshold}
        if pred.score < self.threshold:
            return self._dont_know(out, pred, "intent confidence below the threshold")
        hits = self.index.search([question], max(self.k, self.candidates))[0]
        if self.min_score is not None and max(h["score"] for h in hits) < self.min_score:
            return self._dont_know(out, pred, "no FAQ entry is similar enough (min_score)")
        if self.reranker is not None:
            hits = self.reranker.rerank(question, hits)
        # FAQ entries tagged with the predicted intent come first (stable: retrieval order within each group)
        if any("intent" in h for h in hits):
            hits = sorted(hits, key=lambda h: h.get("intent") != pred.label)
        answers = [{**h, "rank": r + 1} for r, h in enumerate(hits[:self.k])]
        return {**out, "out_of_scope": False, "message": answers[0].get("answer", answers[0]["text"]),
                "answers": answers}

    @staticmethod
    def _dont_know(out: dict, pred: LabelPrediction, reason: str) -> dict:
        return {**out, "intent": None, "closest_intent": pred.label, "out_of_scope": True, "reason": reason,
                "message": DONT_KNOW, "answers": []}
