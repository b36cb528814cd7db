"""Classification's part of learning from few labels: SetFit's targets and head, turned into the linear output
layer of the ordinary sequence classifier (graftkit/train/few_shot.py runs the stages).

The logistic-regression head is fitted on the features the classifier's output layer reads, so copying its
coefficients into that layer reproduces its probabilities exactly: softmax over the multinomial model's
logits (a binary model is the logit pair [0, w·x + b]), or one sigmoid per label for one-vs-rest.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier

from graftkit.data.dataset import Example
from graftkit.errors import ConfigError
from graftkit.tasks.capabilities import LearnsFromFewLabels, TrainsWithTrainer
from graftkit.tasks.common import class_labels

#: zero-shot logits are this times the cosine similarity (sentence-transformers' in-batch-negatives scale); a
#: temperature fitted on validation (eval.calibrate) then rescales it where the run has a validation split
ZERO_SHOT_SCALE = 20.0
#: the logit a constant one-vs-rest estimator (a label on every training row, or none) stands for
CONSTANT_LOGIT = 30.0


class ClassificationFewShot(LearnsFromFewLabels):
    """Single-label: a multinomial logistic regression; multi-label: one logistic regression per label."""

    def check_few_shot(self) -> None:
        t = self.task
        if t.data_cfg is not None and t.data_cfg.text_pair_column:
            raise ConfigError("train.strategy few_shot: SetFit embeds one text per row; data.text_pair_column is "
                              "set (use train.strategy: standard for text pairs)")
        if t.multi_label and isinstance(t.task_cfg.class_weights, dict):
            raise ConfigError("task.class_weights: few_shot multi-label heads take 'balanced' or nothing, not "
                              "per-label weights")
        oos = t.task_cfg.out_of_scope
        if oos is not None and (oos.objective or oos.outlier_exposure):
            raise ConfigError("task.out_of_scope: objective and outlier_exposure train with the standard strategy; "
                              "remove them for few_shot (the detectors themselves are fitted as usual)")

    def rows_per_label(self, train: list[Example]) -> float:
        t = self.task
        counts = Counter(lab for e in train for lab in (e.label if t.multi_label else (e.label,)))
        return sum(counts.values()) / max(len(counts), 1)

    def model_kwargs(self) -> dict:
        return self.task.capability(TrainsWithTrainer, "train").model_kwargs()

    def targets(self, examples: list[Example]) -> list:
        t = self.task
        found = class_labels.targets(examples, t.label2id, t.multi_label)
        return [[int(v) for v in row] for row in found] if t.multi_label else found

    @property
    def multi_target_strategy(self) -> str | None:
        return "one-vs-rest" if self.task.multi_label else None

    def new_head(self):
        t = self.task
        spec = t.task_cfg.class_weights
        if t.multi_label:
            return OneVsRestClassifier(LogisticRegression(class_weight=spec))
        weights = {t.label2id[k]: float(v) for k, v in spec.items()} if isinstance(spec, dict) else spec
        return LogisticRegression(class_weight=weights)

    def head_weights(self, head) -> tuple[np.ndarray, np.ndarray]:
        if self.task.multi_label:
            rows = [_binary_row(est) for est in head.estimators_]
            return np.stack([w for w, _ in rows]), np.array([b for _, b in rows])
        weight, bias = np.asarray(head.coef_), np.asarray(head.intercept_)
        order = [int(c) for c in head.classes_]
        if len(order) != len(self.task.labels):
            raise ConfigError(f"few_shot: the training rows hold {len(order)} of the {len(self.task.labels)} labels")
        if weight.shape[0] == 1:  # binary: P(class 1) = sigmoid(w·x + b) = softmax([0, w·x + b])[1]
            weight, bias = np.concatenate([np.zeros_like(weight), weight]), np.concatenate([[0.0], bias])
        return weight[np.argsort(order)], bias[np.argsort(order)]


    def zero_shot_head(self, features: np.ndarray, descriptions: list[Example]) -> tuple[np.ndarray, np.ndarray]:
        t = self.task
        if t.multi_label:
            raise ConfigError("train.strategy zero_shot: multi-label needs a decision threshold per label that no "
                              "labelled row can set; use single-label classification (or few_shot)")
        unit = features / np.linalg.norm(features, axis=1, keepdims=True).clip(min=1e-12)
        rows = np.stack([unit[[i for i, e in enumerate(descriptions) if e.label == lab]].mean(0) for lab in t.labels])
        rows /= np.linalg.norm(rows, axis=1, keepdims=True).clip(min=1e-12)
        # logits = scale · cos(x, label) needs |x| = 1; the layer sees raw features, so divide by their typical norm
        # (a per-input norm only tempers the softmax; the label chosen is the most similar description's)
        scale = ZERO_SHOT_SCALE / float(np.linalg.norm(features, axis=1).mean())
        return rows * scale, np.zeros(len(t.labels))


def _binary_row(estimator) -> tuple[np.ndarray, float]:
    """(weight, bias) of one one-vs-rest estimator; a label constant in training becomes a constant logit."""
    if isinstance(estimator, LogisticRegression):
        return np.asarray(estimator.coef_[0]), float(estimator.intercept_[0])
    dim = estimator.n_features_in_
    constant = float(np.ravel(estimator.predict(np.zeros((1, dim))))[0])
    return np.zeros(dim), CONSTANT_LOGIT if constant >= 0.5 else -CONSTANT_LOGIT
