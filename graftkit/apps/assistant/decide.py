"""The out-of-scope decision: intent confidence, FAQ similarity and a trained out-of-scope class, combined.

A softmax intent model is often confident on questions it was never trained for; the similarity of
the nearest FAQ entry is a second, independent signal; a trained out-of-scope class (where the data
has one) is a third. The question is answered only if no signal says "out of scope".
"""
from __future__ import annotations

from dataclasses import dataclass

from graftkit.apps.assistant.config import Thresholds


@dataclass(frozen=True)
class Decision:
    """Whether to answer, and if not, why (the handoff reason)."""

    answer: bool
    reason: str | None
    intent: str | None
    confidence: float
    similarity: float | None


def decide(intent: str, confidence: float, similarity: float | None, th: Thresholds,
           oos_label: str | None = None, handoff_intents: tuple[str, ...] | list[str] = ()) -> Decision:
    """Answer or hand off, with the first reason that applies (checked in a fixed order)."""
    def off(reason: str) -> Decision:
        return Decision(False, reason, None, confidence, similarity)

    if oos_label is not None and intent == oos_label:
        return off("the intent model classed the question as out of scope")
    if confidence < th.intent_confidence:
        return off(f"intent confidence {confidence:.2f} is below {th.intent_confidence:.2f}")
    if th.retrieval_similarity is not None and similarity is not None and similarity < th.retrieval_similarity:
        return off(f"no FAQ entry is similar enough ({similarity:.2f} < {th.retrieval_similarity:.2f})")
    if intent in handoff_intents:
        return Decision(False, f"intent '{intent}' is always handed to a person", intent, confidence, similarity)
    return Decision(True, None, intent, confidence, similarity)
