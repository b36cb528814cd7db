"""The reward task's capabilities: Bradley–Terry training on graftkit's Trainer, scoring pairs, ONNX export."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from trl.trainer.reward_trainer import DataCollatorForPreference

from graftkit.modeling.divergence import squared_difference
from graftkit.tasks.capabilities import DecodesLogits, ScoresResponses, TrainsWithTrainer
from graftkit.tasks.common.card import StandardCard
from graftkit.tasks.predictions import RewardPrediction
from graftkit.tasks.reward import metrics, preprocess


def bradley_terry(center: float | None):
    """trl's reward loss, -log σ(r_chosen − r_rejected), over a batch of chosen rows then rejected rows; with
    ``center``, plus center · mean((r_chosen + r_rejected)²)."""

    def loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        chosen, rejected = torch.chunk(logits.float().squeeze(-1), 2)
        out = -torch.nn.functional.logsigmoid(chosen - rejected).mean()
        return out + center * torch.mean((chosen + rejected) ** 2) if center else out

    return loss


class PairCollator:
    """trl's ``DataCollatorForPreference``: chosen rows, then rejected rows, right-padded; ``labels`` (the pair
    ids) make the Trainer evaluate with ``compute_metrics`` (the loss itself reads no labels)."""

    def __init__(self, pad_token_id: int):
        self.inner = DataCollatorForPreference(pad_token_id=pad_token_id)

    def __call__(self, features: list[dict]) -> dict:
        batch = self.inner([{"chosen_ids": f["chosen_ids"], "rejected_ids": f["rejected_ids"]} for f in features])
        batch["labels"] = torch.tensor([f["pair"] for f in features])
        return batch


def paired_rewards(logits, labels):
    """(batch, 2) rewards [chosen, rejected] from a batch's (2·batch, 1) logits: the Trainer gathers one row per
    pair (it cuts its gathered arrays to the dataset's length)."""
    logits = logits[0] if isinstance(logits, tuple) else logits
    return logits.reshape(2, -1).T


class RewardTraining(TrainsWithTrainer):
    smooths_labels = False  # a pairwise loss: no classes to smooth

    def model_kwargs(self) -> dict:
        return {"num_labels": 1}

    def prepare_model(self, model, tokenizer):
        model.config.pad_token_id = tokenizer.pad_token_id  # decoders read the reward at the last non-pad token
        return model

    def build_dataset(self, examples, tokenizer, max_length: int):
        import datasets

        chosen = preprocess.encode([(e.text, e.text_pair) for e in examples], tokenizer, max_length)
        rejected = preprocess.encode([(e.text, e.extra["rejected"]) for e in examples], tokenizer, max_length)
        # ``length``: what train.group_by_length batches by (transformers reads that column when present)
        return datasets.Dataset.from_dict({"chosen_ids": chosen, "rejected_ids": rejected,
                                           "pair": list(range(len(examples))),
                                           "length": [max(len(c), len(r)) for c, r in zip(chosen, rejected)]})

    def collator(self, tokenizer):
        return PairCollator(tokenizer.pad_token_id)

    def training_arguments(self) -> dict:
        return {"remove_unused_columns": False}  # the collator reads chosen_ids / rejected_ids / pair

    def loss_fn(self, train):
        return bradley_terry(self.task.task_cfg.center_rewards_coefficient)

    def output_divergence(self, first, second, labels=None):
        return squared_difference(first, second)

    def logits_reducer(self):
        return paired_rewards

    def compute_metrics(self, eval_pred) -> dict[str, float]:
        rewards = np.asarray(eval_pred.predictions)
        return metrics.pairwise(rewards[:, 0], rewards[:, 1])


class RewardDecoding(DecodesLogits):
    """(prompt, response) → its reward; a (prompt, chosen, rejected) pair → both rewards (evaluation)."""

    def encode(self, inputs: Sequence[Any], tokenizer, max_length: int):
        pairs, sizes = preprocess.flatten(inputs)
        ids = preprocess.encode(pairs, tokenizer, max_length)
        enc = tokenizer.pad({"input_ids": ids}, padding=True, padding_side="right", return_tensors="np")  # as trained
        features = {k: enc[k] for k in ("input_ids", "attention_mask")}
        if "token_type_ids" in tokenizer.model_input_names:  # as in training (trl's collator): segment ids all 0
            features["token_type_ids"] = np.zeros_like(features["input_ids"])
        return features, sizes

    def decode(self, logits: np.ndarray, context: Any) -> list[RewardPrediction]:
        rewards, out, i = np.asarray(logits, dtype=np.float64).reshape(-1), [], 0
        for size in context:
            out.append(RewardPrediction(float(rewards[i]), float(rewards[i + 1]) if size == 2 else None))
            i += size
        return out


class RewardScores(ScoresResponses):
    """The reward of each (prompt, response): what ``graftkit predict`` gives for a ``--pair``."""

    def response_scores(self, runner, prompt: str, responses: Sequence[str], batch_size: int) -> np.ndarray:
        return np.array([p.reward for p in runner.predict([(prompt, r) for r in responses], batch_size)])


class RewardCard(StandardCard):
    hub_pipeline = "text-classification"

    def usage(self, run_path) -> list[str]:
        return ["```bash", f"graftkit predict {run_path} \"your prompt\" --pair \"a response to score\"", "```", "",
                "The folder is a plain transformers model folder as well (one output: the reward):", "", "```python",
                "from transformers import AutoModelForSequenceClassification",
                f"model = AutoModelForSequenceClassification.from_pretrained('{run_path}')", "```", ""]
