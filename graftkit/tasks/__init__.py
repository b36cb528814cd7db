"""Task registry: one folder per task, one line here per task (its class names its config model)."""
from __future__ import annotations

from graftkit.config import DataConfig, TaskConfigBase
from graftkit.registry import Registry
from graftkit.tasks.base import Task, TaskBase
from graftkit.tasks.causal_lm import CausalLmTask
from graftkit.tasks.classification import ClassificationTask
from graftkit.tasks.embedding import EmbeddingTask
from graftkit.tasks.mlm import MlmTask
from graftkit.tasks.ner import NerTask
from graftkit.tasks.ranking import RankingTask
from graftkit.tasks.regression import RegressionTask
from graftkit.tasks.seq2seq import Seq2SeqTask


class TaskRegistry(Registry):
    """Task type → task class; each class carries ``config_class``, its `task:` section model."""

    def config_class(self, name: str) -> type[TaskConfigBase]:
        return self.get(name).config_class

    def config_classes(self) -> list[type[TaskConfigBase]]:
        return [self.get(n).config_class for n in self.names()]


TASKS = TaskRegistry("task type")
TASKS.register("classification")(ClassificationTask)
TASKS.register("ner")(NerTask)
TASKS.register("regression")(RegressionTask)
TASKS.register("embedding")(EmbeddingTask)
TASKS.register("mlm")(MlmTask)
TASKS.register("causal_lm")(CausalLmTask)
TASKS.register("seq2seq")(Seq2SeqTask)
TASKS.register("ranking")(RankingTask)


def build_task(task_cfg: TaskConfigBase, data_cfg: DataConfig | None = None) -> Task:
    """Instantiate the task named by ``task_cfg.type``."""
    return TASKS.get(task_cfg.type)(task_cfg, data_cfg)


__all__ = ["TASKS", "Task", "TaskBase", "build_task"]
