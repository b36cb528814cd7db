"""The one function that turns a run folder into its inference object, chosen by the run's capabilities."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from graftkit.inference.base import RunInference, task_class_of
from graftkit.inference.embedder import Embedder
from graftkit.inference.generator import Generator
from graftkit.inference.predictor import Predictor
from graftkit.modeling.run_folder import RunFolder
from graftkit.tasks.capabilities import Embeds, Generates
from graftkit.tasks.matrix import require


def open_run(run_dir: str | Path, backend: str = "torch", command: str = "predict",
             **backend_kwargs: Any) -> RunInference:
    """The inference object of any finished run: a Generator for tasks that generate, an Embedder for tasks
    that embed, else a Predictor over ``backend`` (torch, or onnx after export).

    Raises:
        UnsupportedError: ``command`` (a name of graftkit/tasks/matrix.py) does not apply to the run's task.
        RunFolderError: not a finished run folder, or a backend the run kind lacks.
    """
    run = RunFolder(run_dir).require_model()
    task_cls = task_class_of(run)
    require(task_cls, command)
    if task_cls.has(Generates):
        return Generator(run.path, backend)
    if task_cls.has(Embeds):
        return Embedder(run.path, backend)
    return Predictor(run.path, backend, **backend_kwargs)
