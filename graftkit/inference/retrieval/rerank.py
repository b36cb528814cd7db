"""Re-rank retrieved entries with a cross-encoder: a pair-classification (or pair-regression) run."""
from __future__ import annotations

from graftkit.errors import GraftkitError
from graftkit.tasks.capabilities import ScoresLabels
from graftkit.tasks.predictions import ValuePrediction


class CrossEncoderReranker:
    """Scores (query, entry text) pairs with a run trained on ``text_column`` + ``text_pair_column``.

    Args:
        predictor: a ``graftkit.inference.predictor.Predictor`` over a pair run.
        positive_label: the class meaning "matches" (classification runs); defaults to "1", "yes",
            "true", "match" or "duplicate" when one of them is a label.
    """

    DEFAULT_POSITIVES = ("1", "yes", "true", "match", "duplicate", "relevant")

    def __init__(self, predictor, positive_label: str | None = None):
        if not predictor.cfg.data.text_pair_column:
            raise GraftkitError(f"{predictor.run.path} was not trained on text pairs (data.text_pair_column); "
                                "re-ranking needs a cross-encoder run")
        self.predictor = predictor
        scores = predictor.task.optional(ScoresLabels)
        labels = [str(x) for x in scores.labels] if scores else []
        if not labels and not isinstance(predictor.predict_batch([("query", "text")])[0], ValuePrediction):
            raise GraftkitError(f"{predictor.run.path} is a {predictor.task.label()} run; re-ranking needs a pair "
                                "classification or pair regression run")
        if labels and positive_label is None:
            positive_label = next((p for p in labels if p.lower() in self.DEFAULT_POSITIVES), None)
            if positive_label is None:
                raise GraftkitError(f"cannot tell which label of {labels} means 'matches'; pass --positive-label")
        if labels and positive_label not in labels:
            raise GraftkitError(f"--positive-label {positive_label!r} is not a label of the run ({labels})")
        self.positive = positive_label

    def score(self, query: str, texts: list[str]) -> list[float]:
        preds = self.predictor.predict([(query, t) for t in texts])
        if self.positive is None:  # a regression run: its (first) predicted value is the score
            return [p.value for p in preds]
        return [p.scores[self.positive] for p in preds]

    def rerank(self, query: str, hits: list[dict]) -> list[dict]:
        """``hits`` re-ordered by the cross-encoder score (kept as ``rerank_score``), ranks renumbered."""
        scored = [{**h, "rerank_score": s} for h, s in zip(hits, self.score(query, [h["text"] for h in hits]))]
        scored.sort(key=lambda h: -h["rerank_score"])
        return [{**h, "rank": r + 1} for r, h in enumerate(scored)]
