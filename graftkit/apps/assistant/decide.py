"""The out-of-scope decision: a trained out-of-scope class, the intent run's detector (or, for a run without one,
the intent confidence), and the FAQ similarity, combined.

The detector is the main signal (graftkit/inference/scope.py). The similarity of the nearest FAQ entry is an
extra, independent one that `graftkit assistant calibrate` adds only where it helps on validation. The
question is answered only if no signal says "out of scope"; ``decided_by`` names the signal that decided.
"""
from __future__ import annotations

from dataclasses import dataclass

from graftkit.inference.scope import ScopeRule


@dataclass(frozen=True)
class Decision:
    """Whether to answer, and if not, why (the handoff reason); ``decided_by`` is the signal that handed the
    question off, or (answered) the scope signal that let it through: "detector" or "confidence"."""

    answer: bool
    reason: str | None
    intent: str | None
    confidence: float
    similarity: float | None
    out_of_scope_score: float | None = None
    decided_by: str | None = None


def decide(intent: str, confidence: float, score: float | None, similarity: float | None, rule: ScopeRule,
           retrieval_similarity: float | None = None, oos_label: str | None = None,
           handoff_intents: tuple[str, ...] | list[str] = ()) -> Decision:
    """Answer or hand off, with the first reason that applies (checked in a fixed order)."""
    def off(reason: str, by: str, kept: str | None = None) -> Decision:
        return Decision(False, reason, kept, confidence, similarity, score, by)

    if oos_label is not None and intent == oos_label:
        return off("the intent model classed the question as out of scope", "out_of_scope_class")
    why = rule.out_of_scope(confidence, score)
    if why:
        return off(why, rule.signal)
    if retrieval_similarity is not None and similarity is not None and similarity < retrieval_similarity:
        return off(f"no FAQ entry is similar enough ({similarity:.2f} < {retrieval_similarity:.2f})", "similarity")
    if intent in handoff_intents:
        return off(f"intent '{intent}' is always handed to a person", "handoff_intent", intent)
    return Decision(True, None, intent, confidence, similarity, score, rule.signal)
