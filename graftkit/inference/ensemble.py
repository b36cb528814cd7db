"""Ensembles of runs trained with the same labels: one servable run folder combining their outputs.

Layout of an ensemble run folder: the usual ``config.yaml``, ``labels.json``, tokenizer and
``config.json`` (copied from the first member), ``members/<i>/`` (each member's model files),
``ensemble.json`` (member list, ``combine`` and its settings) and ``metrics.json``.

Combining (``combine`` in ensemble.json):

* ``mean``: single-label and token classification average the members' probabilities (the
  ensemble's logits are their log-mean); multi-label averages sigmoid probabilities;
  regression averages predictions.
* ``vote``: the task's own rule, for a task with an optional method
  ``ensemble_logits(list[torch.Tensor]) -> torch.Tensor`` (the default for such a task). NER
  votes on entity spans (``graftkit/tasks/ner/ensemble.py``): its logits are the members'
  side by side and its decoding keeps the spans more than ``vote`` × members predict.
"""
from __future__ import annotations

import inspect
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import torch

from graftkit.io import read_json

COMBINE_MODES = ("mean", "vote")


def average_logits(logits: list[torch.Tensor], problem_type: str | None) -> torch.Tensor:
    """Combine member logits so that the task's usual decoding sees averaged probabilities."""
    stacked = torch.stack([x.float() for x in logits])
    if problem_type == "regression":
        return stacked.mean(0)
    if problem_type == "multi_label_classification":
        return torch.logit(torch.sigmoid(stacked).mean(0), eps=1e-7)
    return torch.log(torch.softmax(stacked, dim=-1).mean(0).clamp_min(1e-12))


class EnsembleModel(torch.nn.Module):
    """Runs every member on the same features and combines their logits."""

    def __init__(self, members: list[torch.nn.Module], task, problem_type: str | None, combine: str = "mean"):
        super().__init__()
        self.members = torch.nn.ModuleList(members)
        self.task, self.problem_type, self.combine = task, problem_type, combine
        self._accepts = [set(inspect.signature(m.forward).parameters) for m in members]

    @classmethod
    def from_run(cls, run_dir: Path, task, load_member: Callable[[Path, object], torch.nn.Module]) -> "EnsembleModel":
        """The ensemble of ``run_dir``; ``load_member(folder, task)`` loads each member (any run kind)."""
        spec = read_json(run_dir / "ensemble.json")
        members = [load_member(run_dir / m, task) for m in spec["members"]]
        # folders written before "combine" was a choice hold a description there: they averaged
        return cls(members, task, spec.get("problem_type"), "vote" if spec.get("combine") == "vote" else "mean")

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        feats = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        outs = []
        for model, accepts in zip(self.members, self._accepts):
            out = model(**{k: v for k, v in feats.items() if v is not None and k in accepts})
            outs.append(out.logits if hasattr(out, "logits") else out[0])
        if self.combine == "vote":
            return SimpleNamespace(logits=self.task.ensemble_logits(outs))
        return SimpleNamespace(logits=average_logits(outs, self.problem_type))
