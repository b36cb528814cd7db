"""Which commands and service routes each task supports, derived from its capabilities.

This table is the one source for three things: the one-line refusal a command gives a task that
lacks what it needs, the README's task × command table (``graftkit/tasks/matrix_doc.py``), and
the test that walks every registered task through every command and route.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graftkit.errors import UnsupportedError
from graftkit.tasks.capabilities import (
    AveragesMembers,
    Capability,
    DecodesLogits,
    Distills,
    Embeds,
    Explains,
    Exports,
    FindsLabelErrors,
    Generates,
    LearnsFromFewLabels,
    Perturbs,
    Ranks,
    ScoresLabels,
    SelfTrains,
    TrainsWithTrainer,
    Votes,
)


@dataclass(frozen=True)
class Entry:
    """A command or route and the capabilities it needs (any one of ``needs``; none: every task)."""

    name: str
    needs: tuple[type[Capability], ...] = ()
    route: bool = False

    def supported_by(self, task_cls: Any) -> bool:
        return not self.needs or any(task_cls.has(cap) for cap in self.needs)


#: every command and route whose support depends on the task, in the README table's order
MATRIX: tuple[Entry, ...] = (
    Entry("train"),
    Entry("evaluate", (DecodesLogits, Generates)),
    Entry("predict", (DecodesLogits, Generates, Embeds)),
    Entry("generate", (Generates,)),
    Entry("explain", (Explains,)),
    Entry("robustness", (Perturbs,)),
    Entry("inspect --find-label-errors", (FindsLabelErrors,)),
    Entry("export", (Exports,)),
    Entry("ensemble", (AveragesMembers, Votes)),
    Entry("train.distill", (Distills,)),
    Entry("train.strategy", (LearnsFromFewLabels,)),
    Entry("train.self_training", (SelfTrains,)),
    Entry("label select", (ScoresLabels,)),
    Entry("merge", (TrainsWithTrainer,)),
    Entry("index", (Embeds,)),
    Entry("recommend", (Ranks,)),
    Entry("push", ()),
    Entry("info", ()),
    Entry("POST /v1/predict", (DecodesLogits, Generates), route=True),
    Entry("POST /v1/explain", (Explains,), route=True),
    Entry("POST /v1/generate", (Generates,), route=True),
    Entry("POST /v1/embed", (Embeds,), route=True),
)
ENTRIES = {e.name: e for e in MATRIX}


def supported(task_cls: Any) -> list[str]:
    """The commands and routes ``task_cls`` supports, in table order."""
    return [e.name for e in MATRIX if e.supported_by(task_cls)]


def refusal(task_cls: Any, command: str) -> str:
    """One line: ``command`` does not apply to this task, and what the task does support."""
    label = task_cls.label()
    return (f"{command}: {label} runs do not support this; {label} runs support: "
            f"{', '.join(supported(task_cls))}")


def require(task: Any, command: str) -> None:
    """Raise the refusal of ``command`` unless ``task`` (a task object or class) supports it.

    Raises:
        UnsupportedError: one line naming the task and what it supports.
    """
    task_cls = task if isinstance(task, type) else type(task)
    if not ENTRIES[command].supported_by(task_cls):
        raise UnsupportedError(refusal(task_cls, command))
