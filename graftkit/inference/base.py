"""The one inference interface every run kind presents: predict over inputs or a file, typed results, and
the run's capabilities. :class:`~graftkit.inference.predictor.Predictor` (logits through a torch or ONNX
backend), :class:`~graftkit.inference.generator.Generator` (text generation) and
:class:`~graftkit.inference.embedder.Embedder` (vectors) implement it; ``graftkit.inference.open_run``
picks the right one from a run folder.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Callable, Sequence

from transformers import AutoTokenizer

from graftkit.inference.predict_file import predict_file
from graftkit.modeling.run_folder import RunFolder
from graftkit.tasks import TASKS, build_task
from graftkit.tasks.base import Task
from graftkit.tasks.matrix import supported
from graftkit.tasks.predictions import Prediction
from graftkit.tasks.run_config import RunConfig, config_from_dict


def load_run_config(run: RunFolder) -> RunConfig:
    """The resolved config a run folder was trained with (an older folder's migrated to today's keys)."""
    return config_from_dict(run.config_tree(), str(run.config))


def _task_config(run: RunFolder, cfg: RunConfig, state: dict):
    """The `task:` section of the run's task (labels.json names it; the config's own section when it matches)."""
    kind = state.get("task", cfg.task.type)
    return cfg.task if kind == cfg.task.type else TASKS.config_class(kind)()


def task_class_of(run: RunFolder, cfg: RunConfig | None = None) -> type[Task]:
    """The task class (or variant) of a run folder, without loading its state."""
    cfg = cfg or load_run_config(run)
    return TASKS.task_class(_task_config(run, cfg, run.task_state()))


def load_task(run: RunFolder, cfg: RunConfig | None = None) -> Task:
    """The task of a run folder with its fitted state restored."""
    cfg = cfg or load_run_config(run)
    state = run.task_state()
    task = build_task(_task_config(run, cfg, state), cfg.data)
    task.load_state(state)
    task.bind_run(run.path, lambda member: load_task(RunFolder(member)))
    return task


def _length(x: Any) -> int:
    return sum(len(s) if isinstance(s, str) else len(str(s)) for s in x) if isinstance(x, (tuple, list)) else len(x)


class RunInference(ABC):
    """A finished run folder loaded once, predicting on any number of inputs.

    Inputs are what the task's ``input_of`` gives: a text, a (text, pair) tuple, or a list of chat
    messages; predictions are typed (graftkit/tasks/predictions.py).
    """

    #: identifies how predictions are made (part of ``predict --input``'s resume fingerprint)
    backend_name: str = "torch"

    def __init__(self, run_dir: str | Path):
        self.run = RunFolder(run_dir).require_model()
        self.cfg = load_run_config(self.run)
        self.task = load_task(self.run, self.cfg)
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.run.path))
        self.max_length = self.cfg.data.max_length

    @property
    def supports(self) -> list[str]:
        """The commands and service routes this run's task supports (graftkit/tasks/matrix.py)."""
        return supported(type(self.task))

    @abstractmethod
    def predict_batch(self, inputs: Sequence[Any]) -> list[Prediction]:
        """Predictions for one batch, in input order."""

    def predict(self, inputs: Sequence[Any], batch_size: int = 64,
                progress: Callable[[int], None] | None = None) -> list[Prediction]:
        """Predictions in input order; batches are formed from inputs of similar length (less padding)."""
        order = sorted(range(len(inputs)), key=lambda i: _length(inputs[i]))
        results: list[Prediction | None] = [None] * len(inputs)
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            for i, r in zip(idx, self.predict_batch([inputs[i] for i in idx])):
                results[i] = r
            if progress:
                progress(len(idx))
        return results  # type: ignore[return-value]

    def input_columns(self) -> tuple[str, str | None]:
        """The columns a file's inputs are read from: the text column and, for pair runs, the pair column."""
        return self.cfg.data.text_column, self.cfg.data.text_pair_column

    def predict_file(self, input_path: str | Path, output: str | Path | None, batch_size: int = 64, **kwargs) -> int:
        """Predict every input of a file into JSON Lines (streamed, resumable; see ``predict_file``)."""
        return predict_file(self, Path(input_path), Path(output) if output else None, batch_size, **kwargs)
