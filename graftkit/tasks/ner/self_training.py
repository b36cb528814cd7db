"""NER's part of self-training: a pool sentence takes its predicted entities as spans; its confidence is that of
its least sure entity (an entity's score is the mean probability of its tags), so a row joins only when every
entity in it is confident. A sentence with no predicted entity is no training row: its tags carry no score."""
from __future__ import annotations

import dataclasses

from graftkit.data.dataset import Example
from graftkit.errors import ConfigError
from graftkit.tasks.capabilities import PseudoLabel, SelfTrains
from graftkit.tasks.ner.readers import split_words
from graftkit.tasks.predictions import EntitiesPrediction, Prediction


class NerSelfTraining(SelfTrains):
    """Whole-entity confidence; rows are balanced by the type of their least sure entity."""

    def pool_example(self, example: Example) -> Example:
        if "words" in example.extra:
            return example
        return dataclasses.replace(example, extra={**example.extra, "words": split_words(example.text)})

    def pseudo_label(self, example: Example, prediction: Prediction) -> PseudoLabel | None:
        assert isinstance(prediction, EntitiesPrediction)
        if not prediction.entities:
            return None
        spans = [[e.start, e.end, e.label] for e in prediction.entities]
        words = split_words(example.text, {c for s, e, _ in spans for c in (s, e)})  # entity edges are word edges
        least = min(prediction.entities, key=lambda e: e.score)
        labelled = dataclasses.replace(example, label=spans, extra={**example.extra, "words": words})
        return PseudoLabel(labelled, float(least.score), least.label)

    def is_right(self, example: Example, prediction: Prediction) -> bool:
        assert isinstance(prediction, EntitiesPrediction)
        return {(e.start, e.end, e.label) for e in prediction.entities} == {tuple(s) for s in example.label}

    def check_consistency(self) -> None:
        raise ConfigError("train.self_training.consistency: an augmented copy moves words, so its tags no longer "
                          "line up with the original's; NER self-trains without the consistency term (set it to 0)")
