"""Task registry: one folder per task, one line here per task."""
from __future__ import annotations

from graftkit.config import DataConfig, TaskConfig
from graftkit.registry import Registry
from graftkit.tasks.base import Task, TaskBase

TASKS = Registry("task type")


def _register_builtin() -> None:
    from graftkit.tasks.classification import ClassificationTask

    TASKS.register("classification")(ClassificationTask)
    from graftkit.tasks.ner import NerTask

    TASKS.register("ner")(NerTask)
    from graftkit.tasks.regression import RegressionTask

    TASKS.register("regression")(RegressionTask)
    from graftkit.tasks.embedding import EmbeddingTask

    TASKS.register("embedding")(EmbeddingTask)


_register_builtin()


def build_task(task_cfg: TaskConfig, data_cfg: DataConfig | None = None) -> Task:
    """Instantiate the task named by ``task_cfg.type``."""
    return TASKS.get(task_cfg.type)(task_cfg, data_cfg)


__all__ = ["TASKS", "Task", "TaskBase", "build_task"]
