"""Regression's capabilities: training on scaled targets, decoding to the original scale, ensembles
(mean of values), explanations of a target's value and robustness as the mean absolute change."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from transformers import DataCollatorWithPadding

from graftkit.data.dataset import Example
from graftkit.modeling.divergence import squared_difference
from graftkit.tasks.capabilities import AveragesMembers, DecodesLogits, GoldLabels, TrainsWithTrainer
from graftkit.tasks.common.card import StandardCard
from graftkit.tasks.common.explain import SequenceExplains, pick
from graftkit.tasks.common.perturb import TextPerturbs
from graftkit.tasks.common.text import encode_texts
from graftkit.tasks.regression import head, metrics, postprocess, preprocess


class RegressionTraining(TrainsWithTrainer):
    smooths_labels = False  # real-valued targets: no classes to smooth

    def output_divergence(self, first, second, labels=None):
        return squared_difference(first, second)

    def model_kwargs(self) -> dict:
        cols = self.task.columns
        return {"num_labels": len(cols), "problem_type": "regression", "id2label": dict(enumerate(cols)),
                "label2id": {c: i for i, c in enumerate(cols)}}

    def scaled(self, examples: Sequence[Example]) -> np.ndarray:
        t = self.task
        return ((preprocess.target_matrix(examples) - np.array(t.mean)) / np.array(t.std)).astype(np.float32)

    def build_dataset(self, examples: list[Example], tokenizer, max_length: int):
        import datasets

        cols = dict(encode_texts([self.task.input_of(e) for e in examples], tokenizer, max_length,
                                 padding=False, return_tensors=None))
        ds = datasets.Dataset.from_dict(cols)
        # float32 targets: the head's MSE needs the logits' dtype
        return ds.add_column("labels", self.scaled(examples).tolist(),
                             feature=datasets.List(datasets.Value("float32")))

    def collator(self, tokenizer):
        return DataCollatorWithPadding(tokenizer)

    def loss_fn(self, train: list[Example]):
        return head.make_loss(self.task.task_cfg.loss, self.task.task_cfg.huber_delta)

    def compute_metrics(self, eval_pred) -> dict[str, float]:
        t = self.task
        out, gold = eval_pred.predictions, eval_pred.label_ids
        out = out[0] if isinstance(out, tuple) else out
        pred = postprocess.unscale(out, t.mean, t.std)
        gold = postprocess.unscale(gold, t.mean, t.std)
        return metrics.scores(gold, pred, t.columns, t.binary)


class RegressionDecoding(DecodesLogits):
    def encode(self, inputs: Sequence[Any], tokenizer, max_length: int):
        return dict(encode_texts(inputs, tokenizer, max_length)), None

    def decode(self, logits: np.ndarray, context: Any):
        t = self.task
        return postprocess.decode(logits, t.columns, t.mean, t.std)


class RegressionMean(AveragesMembers):
    """The members' predicted values averaged."""

    def combine_mean(self, logits: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack([x.float() for x in logits]).mean(0)


class RegressionGold(GoldLabels):
    def gold_key(self, example: Example):
        return example.label


class RegressionCard(StandardCard):
    hub_pipeline = "text-classification"


class RegressionExplains(SequenceExplains):
    """The predicted value of a target column, on the original scale (default: the first column)."""

    def target(self, engine, inputs: Any, target: str | int | None):
        t = self.task
        j = pick(t.columns, target if target is not None else t.columns[0], "target column")
        mean, std = t.mean[j], t.std[j]
        return t.columns[j], lambda z: z.reshape(len(z), -1)[:, j] * std + mean


class RegressionPerturbs(TextPerturbs):
    """The absolute change of the predicted (first) value."""

    change_metric = "mean_abs_change"

    def changed(self, clean, noisy, example: Example, perturbed) -> float:
        return abs(float(noisy.value) - float(clean.value))
