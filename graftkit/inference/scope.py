"""Is a question in scope of an intent run? The one rule `graftkit answer` and the assistant share.

A run with an out-of-scope detector (``task.out_of_scope``) decides by the detector's score: above the
threshold the question fits none of the intents. The threshold is the run's own (chosen on its validation)
unless overridden. An older run without a detector falls back to the intent confidence: below the
threshold, out of scope. A softmax is often confident on questions it was never trained for, which is why
the detector wins where there is one; a setting for the other rule is an error, never silently ignored.
"""
from __future__ import annotations

from dataclasses import dataclass

from graftkit.errors import ConfigError
from graftkit.tasks.predictions import LabelPrediction

DEFAULT_CONFIDENCE = 0.5


@dataclass(frozen=True)
class ScopeRule:
    """The out-of-scope rule in force: ``detector`` (a name) with its score ``threshold``, or, when ``detector``
    is None, the minimum intent confidence ``threshold``."""

    detector: str | None
    threshold: float

    @property
    def signal(self) -> str:
        """Which signal decides: "detector" or "confidence"."""
        return "detector" if self.detector else "confidence"

    @classmethod
    def for_run(cls, predictor, run_name: str, out_of_scope_score: float | None = None,
                intent_confidence: float | None = None,
                names: tuple[str, str] = ("thresholds.out_of_scope_score", "thresholds.intent_confidence"),
                ) -> ScopeRule:
        """The rule of ``predictor``'s run; the overrides must fit it (``names``: theirs in errors).

        Raises:
            ConfigError: ``out_of_scope_score`` for a run without a detector, or ``intent_confidence`` for a run
                with one.
        """
        score_name, confidence_name = names
        chosen = predictor.detector.chosen if predictor.detector is not None else None
        if chosen is None:
            if out_of_scope_score is not None:
                raise ConfigError(f"{score_name}: intent run {run_name} has no out-of-scope detector (train it with "
                                  f"task.out_of_scope); use {confidence_name} instead")
            return cls(None, DEFAULT_CONFIDENCE if intent_confidence is None else float(intent_confidence))
        detector, own = chosen
        if intent_confidence is not None:
            raise ConfigError(f"{confidence_name}: intent run {run_name} decides by its out-of-scope detector "
                              f"({detector}, threshold {_num(own)}), not the confidence; set {score_name} to move "
                              "its threshold, or leave both unset")
        return cls(detector, own if out_of_scope_score is None else float(out_of_scope_score))

    def out_of_scope(self, confidence: float, score: float | None) -> str | None:
        """Why a prediction with this ``confidence`` and detector ``score`` is out of scope, or None when in scope."""
        if self.detector is None:
            if confidence < self.threshold:
                return f"intent confidence {confidence:.2f} is below {self.threshold:.2f}"
            return None
        if score is None:
            raise ConfigError(f"the {self.detector} detector gave no score: the intent run lost its detector files")
        if score > self.threshold:
            return (f"the question fits none of the intents ({self.detector} score {_num(score)} > threshold "
                    f"{_num(self.threshold)})")
        return None

    def check(self, pred: LabelPrediction) -> str | None:
        """``out_of_scope`` of one prediction."""
        return self.out_of_scope(float(pred.score), pred.out_of_scope_score)


def _num(x: float) -> str:
    """A score as a reason shows it: two decimals, none for the large distances (Mahalanobis) where they are noise."""
    return f"{x:.2f}" if abs(x) < 1000 else f"{x:.0f}"
