"""Ensembles of runs trained with the same labels: one servable run folder combining their outputs.

Layout of an ensemble run folder: the usual ``config.yaml``, ``labels.json``, tokenizer and
``config.json`` (copied from the first member), ``members/<i>/`` (each member's model files),
``ensemble.json`` (member list, ``combine`` and its settings) and ``metrics.json``.

Combining (``combine`` in ensemble.json) is the task's capability:

* ``mean`` (``AveragesMembers``): single-label and token classification average the members'
  probabilities (the ensemble's logits are their log-mean); multi-label averages sigmoid
  probabilities; regression averages predictions.
* ``vote`` (``Votes``): the task's own rule, the default for a task that has one. NER votes on
  entity spans (``graftkit/tasks/ner/ensemble.py``): its logits are the members' side by side and
  its decoding keeps the spans more than ``vote`` × members predict.
"""
from __future__ import annotations

import inspect
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import torch

from graftkit.errors import UnsupportedError
from graftkit.modeling.outputs import output_logits
from graftkit.modeling.run_folder import RunFolder
from graftkit.tasks.capabilities import AveragesMembers, Votes

COMBINE_MODES = ("mean", "vote")


def combiner(task, combine: str) -> Callable[[list[torch.Tensor]], torch.Tensor]:
    """The task's rule that turns the members' logits into the ensemble's (``mean`` or ``vote``).

    Raises:
        UnsupportedError: the task has no such rule.
    """
    if combine == "vote":
        if not task.has(Votes):
            raise UnsupportedError(f"ensemble: {task.label()} runs have no vote rule; use combine 'mean'")
        return task.capability(Votes, "ensemble").combine_vote
    return task.capability(AveragesMembers, "ensemble").combine_mean


class EnsembleModel(torch.nn.Module):
    """Runs every member on the same features and combines their logits with the task's rule."""

    def __init__(self, members: list[torch.nn.Module], combine: Callable[[list[torch.Tensor]], torch.Tensor]):
        super().__init__()
        self.members = torch.nn.ModuleList(members)
        self.combine = combine
        self._accepts = [set(inspect.signature(m.forward).parameters) for m in members]

    @classmethod
    def from_run(cls, run_dir: Path, task, load_member: Callable[[Path, object], torch.nn.Module]) -> "EnsembleModel":
        """The ensemble of ``run_dir``; ``load_member(folder, task)`` loads each member (any run kind)."""
        spec = RunFolder(run_dir).ensemble_spec()  # an older folder's is migrated (its combine is a mode)
        members = [load_member(run_dir / m, task) for m in spec["members"]]
        return cls(members, combiner(task, spec["combine"]))

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        feats = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        outs = [output_logits(model(**{k: v for k, v in feats.items() if v is not None and k in accepts}))
                for model, accepts in zip(self.members, self._accepts)]
        return SimpleNamespace(logits=self.combine(outs))
