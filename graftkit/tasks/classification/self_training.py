"""Classification's part of self-training: a pool row takes the predicted label (or label set), with the
probability of that whole answer as its confidence."""
from __future__ import annotations

import dataclasses

from graftkit.data.dataset import Example
from graftkit.errors import ConfigError
from graftkit.tasks.capabilities import PseudoLabel, SelfTrains
from graftkit.tasks.predictions import LabelPrediction, LabelSetPrediction, Prediction

#: the balancing key of a multi-label row predicted to carry no label
NO_LABEL = "(none)"


class ClassificationSelfTraining(SelfTrains):
    """Single-label: the top label and its probability; an out-of-scope input is no training row. Multi-label:
    the labels over their thresholds, with the least sure of the per-label decisions as the confidence."""

    def pseudo_label(self, example: Example, prediction: Prediction) -> PseudoLabel | None:
        if isinstance(prediction, LabelPrediction):
            if prediction.out_of_scope:
                return None
            return PseudoLabel(dataclasses.replace(example, label=prediction.label), prediction.score,
                               prediction.label)
        assert isinstance(prediction, LabelSetPrediction)
        labels = list(prediction.labels)
        chosen = set(labels)
        sure = min(p if lab in chosen else 1 - p for lab, p in prediction.scores.items())
        return PseudoLabel(dataclasses.replace(example, label=labels), sure, labels[0] if labels else NO_LABEL)

    def is_right(self, example: Example, prediction: Prediction) -> bool:
        if isinstance(prediction, LabelPrediction):
            return not prediction.out_of_scope and prediction.label == example.label
        return set(prediction.labels) == set(example.label)

    def check_consistency(self) -> None:
        data = self.task.data_cfg
        if data is not None and data.text_pair_column:
            raise ConfigError("train.self_training.consistency: the augmented copy is made from one text; "
                              "data.text_pair_column is set (set consistency to 0 for text pairs)")
