"""Customer-service answering: intent from a classifier, best FAQ entries from an index, or "I don't know".

An intent run with an out-of-scope detector (``task.out_of_scope``) decides whether a question is in scope
by the detector's score (graftkit/inference/scope.py); an older run without one by the intent confidence.
Out of scope, the answer has no FAQ entries, so the assistant says it does not know instead of guessing.
With ``min_score``, a best FAQ entry less similar than that is out of scope too: the retrieval score is an
extra, independent check (`graftkit assistant calibrate` measures whether it helps).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from graftkit.errors import GraftkitError
from graftkit.inference.scope import ScopeRule
from graftkit.tasks.capabilities import ScoresLabels
from graftkit.tasks.predictions import LabelPrediction

DONT_KNOW = "Sorry, I am not sure I understood. Could you rephrase, or shall I connect you to a person?"


@dataclass
class Answerer:
    """Answer questions with an intent run and an FAQ index.

    Args:
        intent: ``Predictor`` over a single-label classification run (the intents).
        index: ``graftkit.inference.retrieval.Index`` over the FAQ.
        threshold: a run without a detector: minimum intent probability to answer (None: 0.5).
        k: number of FAQ entries returned.
        reranker: optional ``CrossEncoderReranker`` applied to the retrieved entries.
        min_score: optional minimum cosine similarity of the best FAQ entry; below it: out of scope.
        oos_threshold: a run with a detector: its score threshold (None: the run's own).

    Raises:
        ConfigError: a threshold that does not apply to the run (``threshold`` with a detector, ``oos_threshold``
            without one).
    """

    intent: object
    index: object
    threshold: float | None = None
    k: int = 3
    reranker: object | None = None
    min_score: float | None = None
    oos_threshold: float | None = None
    candidates: int = field(default=20, repr=False)

    def __post_init__(self):
        labels = self.intent.task.optional(ScoresLabels)
        if labels is None or labels.multi_label:
            raise GraftkitError(f"the intent run must be a single-label classification run, not a "
                                f"{self.intent.task.label()} run")
        self.rule = ScopeRule.for_run(self.intent, str(self.intent.run.path), self.oos_threshold, self.threshold,
                                      names=("--oos-threshold", "--threshold"))

    def __call__(self, question: str) -> dict:
        pred = self.intent.predict([question])[0]
        out = {"question": question, "intent": pred.label, "confidence": pred.score,
               "out_of_scope_score": pred.out_of_scope_score, "decided_by": self.rule.signal,
               "threshold": self.rule.threshold}
        why = self.rule.check(pred)
        if why:
            return self._dont_know(out, pred, why)
        hits = self.index.search([question], max(self.k, self.candidates))[0]
        if self.min_score is not None and max(h["score"] for h in hits) < self.min_score:
            best = max(h["score"] for h in hits)
            return self._dont_know({**out, "decided_by": "similarity"}, pred,
                                   f"no FAQ entry is similar enough ({best:.2f} < min_score {self.min_score:.2f})")
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
